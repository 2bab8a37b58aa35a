"""`ssg catalog` against a real catalog service (its own process, `python -m ssg.catalog`, on a
free loopback port) on a real MongoDB. The organizations read model is filled through the
service's own store port, as its worker would (the worker is tested in services/catalog)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from ssg.catalog.bootstrap import bootstrap
from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus
from ssg.catalog.settings import CatalogSettings
from ssg.cli import catalog_import
from ssg.cli.main import app
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.platform.settings import load_settings
from ssg.testing.servers import free_port

runner = CliRunner()
SERVICE = "ssg.catalog.v1.CatalogService"
HEADER = [
    "external_id", "organization_id", "title", "summary", "sdgs", "sdg_targets",
    "implementing_countries", "beneficiary_countries", "regions", "modality", "partners",
    "start_date", "end_date", "budget_amount", "budget_currency", "indicators", "language", "tags",
]  # fmt: skip


@dataclass(frozen=True)
class Catalog:
    """A running catalog API and two organizations its read model knows."""

    address: str
    verified: str
    pending: str


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=0.5
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def catalog(mongodb_server, tmp_path_factory) -> Iterator[Catalog]:
    """A catalog API process of this module's own (instance "global") with two organizations."""
    uri = mongodb_server.uri(f"catalog-cli-{uuid.uuid4().hex[:8]}")
    settings = load_settings(
        CatalogSettings, instance="global", mongodb_uri=uri, jwt_secret=DEV_SECRET
    )
    seeded = bootstrap(settings)
    verified, pending = uuid.uuid4().hex, uuid.uuid4().hex
    seeded.store.ensure_indexes()
    seeded.store.apply_organization(
        OrganizationRef(
            verified, "Lakeside Water Alliance", OrganizationStatus.VERIFIED, "global", version=2
        )
    )
    seeded.store.apply_organization(
        OrganizationRef(
            pending, "Hillside Growers", OrganizationStatus.PENDING, "global", version=1
        )
    )
    seeded.close()
    port = free_port()
    log_path = tmp_path_factory.mktemp("catalog") / "catalog.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    env |= {
        "SSG_ENV": "test",
        "SSG_INSTANCE": "global",
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(port),
        "SSG_METRICS_HOST": "127.0.0.1",
        "SSG_METRICS_PORT": str(free_port()),
        "SSG_MONGODB_URI": uri,
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_HEALTH_INTERVAL_SECONDS": "0.2",
        "SSG_SWEEP_SECONDS": "0",
        "SSG_GRACE_SECONDS": "1",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ssg.catalog"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _serving(address):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "catalog never SERVING:\n" + log_path.read_text()
            time.sleep(0.1)
        yield Catalog(address, verified, pending)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(autouse=True)
def dev_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dev tokens may be minted (as on a developer's machine)."""
    monkeypatch.setenv("SSG_ENV", "test")
    monkeypatch.delenv("SSG_TOKEN", raising=False)


def ssg(*args: str) -> tuple[int, str, str]:
    """Run `ssg args...`; (exit code, stdout, stderr)."""
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def good_row(org: str, external_id: str, title: str, **extra: str) -> dict[str, str]:
    row = {
        "external_id": external_id,
        "organization_id": org,
        "title": title,
        "summary": "Farmers share solar pumps and a water rota across three districts.",
        "sdgs": "6;7",
        "sdg_targets": "6.4;7.2",
        "implementing_countries": "KEN",
        "beneficiary_countries": "UGA;TZA",
        "regions": "AFRICA",
        "modality": "SOUTH_SOUTH",
        "partners": f"{org}:PROVIDER",
        "start_date": "2019-03-01",
        "end_date": "2022-06-30",
        "budget_amount": "125000.50",
        "budget_currency": "USD",
        "indicators": "people with water|0|12000|people|2022",
        "language": "en",
        "tags": "water;solar pumps",
    }
    return row | extra


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def import_(catalog: Catalog, path: Path, *extra: str) -> tuple[int, dict, str]:
    code, stdout, stderr = ssg(
        "catalog",
        "import",
        str(path),
        "--target",
        catalog.address,
        "--as",
        "operator",
        "--json",
        *extra,
    )
    return code, json.loads(stdout) if stdout.strip() else {}, stderr


def list_titles(catalog: Catalog, *filters: str) -> list[str]:
    code, stdout, stderr = ssg(
        "catalog", "solutions", "list", "--target", catalog.address, "--as", "operator", "--all",
        "--page-size", "100", "--json", *filters,
    )  # fmt: skip
    assert code == 0, stderr
    return [s["title"] for s in json.loads(stdout)["solutions"]]


def test_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(
    catalog: Catalog, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    rows = [
        good_row(catalog.verified, f"gp-{tag}-1", f"Solar pumps for irrigation {tag}"),
        good_row(catalog.verified, f"gp-{tag}-2", f"Hermetic grain bags {tag}", sdg_targets="6.9"),
        good_row(catalog.verified, f"gp-{tag}-3", f"Seed banks {tag}", modality="NORTH_NORTH"),
        good_row(uuid.uuid4().hex, f"gp-{tag}-4", f"Unknown owner {tag}"),
        good_row(
            catalog.pending, f"gp-{tag}-5", f"Village water committees {tag}", end_date="2010-01-01"
        ),
        good_row(catalog.pending, f"gp-{tag}-6", f"Community radio lessons {tag}"),
    ]
    path = write_csv(tmp_path / "collection.csv", rows)
    report = tmp_path / "report.csv"
    code, summary, _ = import_(catalog, path, "--report", str(report))
    assert code == 1  # some rows were rejected
    assert (summary["rows"], summary["created"], summary["rejected"]) == (6, 2, 4)
    found = {(r["line"], r["field"]) for r in summary["rejections"]}
    # Lines count from the header (line 1): the rows are lines 2-7.
    assert (3, "sdg_targets[0]") in found  # the service's domain check ("6.9" is no target)
    assert (4, "modality") in found  # a local parse error: no such enum value
    assert (5, "organization_id") in found
    assert (6, "end_date") in found  # named by its column, not by the proto path
    written = list(csv.DictReader(report.open()))
    assert {(int(r["line"]), r["field"]) for r in written} == found
    assert all(r["reason"] for r in written)
    titles = list_titles(catalog, "--organization", catalog.verified)
    assert f"Solar pumps for irrigation {tag}" in titles

    # Re-importing the same file creates nothing.
    code, again, _ = import_(catalog, path)
    assert code == 1
    assert (again["created"], again["existing"], again["rejected"]) == (0, 2, 4)

    # The human-readable report names line, field and reason.
    code, stdout, _ = ssg(
        "catalog", "import", str(path), "--target", catalog.address, "--as", "operator", "--dry-run"
    )
    assert code == 1
    assert "rejected rows" in stdout and "sdg_targets[0]" in stdout and "dry run" in stdout


def test_all_or_nothing_and_dry_run_write_nothing(catalog: Catalog, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    rows = [
        good_row(catalog.verified, f"aon-{tag}-1", f"Mini-grid tariffs {tag}"),
        good_row(catalog.verified, f"aon-{tag}-2", f"Bad target {tag}", sdg_targets="6.9"),
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    code, summary, _ = import_(catalog, path, "--all-or-nothing")
    assert code == 1 and summary["created"] == 0 and summary["written"] is False
    good = write_csv(tmp_path / "good.csv", rows[:1])
    code, summary, _ = import_(catalog, good, "--dry-run")
    assert code == 0 and summary["created"] == 0 and summary["not_written"] == 1
    assert f"Mini-grid tariffs {tag}" not in list_titles(catalog)
    code, summary, _ = import_(catalog, good, "--all-or-nothing", "--batch-size", "1")
    assert code == 0 and summary["created"] == 1
    assert f"Mini-grid tariffs {tag}" in list_titles(catalog)


def test_json_lines_and_json_arrays_import_and_unreadable_rows_are_reported(
    catalog: Catalog, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    first = good_row(catalog.verified, f"js-{tag}-1", f"Telemedicine hubs {tag}")
    first["sdgs"] = [3, 9]  # type: ignore[assignment]
    first["sdg_targets"] = ["3.8", "9.c"]  # type: ignore[assignment]
    first["partners"] = [{"organization_id": catalog.verified, "role": "provider"}]  # type: ignore[assignment]
    lines = [
        json.dumps(first),
        "{not json",
        json.dumps({**first, "external_id": f"js-{tag}-2", "colour": "red"}),
    ]
    path = tmp_path / "collection.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, summary, _ = import_(catalog, path)
    assert code == 1 and summary["created"] == 1
    assert {(r["line"], r["field"]) for r in summary["rejections"]} == {(2, "row"), (3, "colour")}
    array = tmp_path / "collection.json"
    array.write_text(json.dumps({"solutions": [first]}))
    code, summary, _ = import_(catalog, array)
    assert code == 0 and summary["existing"] == 1


def test_operators_only_and_bad_files_are_usage_errors(catalog: Catalog, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", [good_row(catalog.verified, "x-1", "Anything at all")])
    code, _, stderr = ssg(
        "catalog", "import", str(path), "--target", catalog.address, "--as", "member"
    )
    assert code == 1 and "PERMISSION_DENIED" in stderr
    odd = tmp_path / "odd.csv"
    odd.write_text("external_id,organization_id,flavour\nx,y,z\n")
    code, _, stderr = ssg(
        "catalog", "import", str(odd), "--target", catalog.address, "--as", "operator"
    )
    assert code == 2 and "flavour" in stderr
    code, _, _ = ssg("catalog", "import", str(tmp_path / "one.xml"), "--target", catalog.address)
    assert code == 2


def test_review_flow_through_the_cli(catalog: Catalog, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    path = write_csv(
        tmp_path / "one.csv", [good_row(catalog.verified, f"rf-{tag}", f"Peer coaching {tag}")]
    )
    code, _, _ = import_(catalog, path)
    assert code == 0
    code, stdout, _ = ssg(
        "catalog", "solutions", "list", "--target", catalog.address, "--as", "operator",
        "--organization", catalog.verified, "--status", "draft", "--all", "--json",
    )  # fmt: skip
    solution_id = next(s["id"] for s in json.loads(stdout)["solutions"] if s["title"].endswith(tag))
    where = ("--target", catalog.address)
    member = (*where, "--as", "member", "--org", catalog.verified, "--subject", "amina")
    code, stdout, stderr = ssg("catalog", "solutions", "submit", solution_id, *member)
    assert code == 0, stderr
    assert "SUBMITTED" in stdout
    code, stdout, stderr = ssg(
        "catalog", "solutions", "review", solution_id, *where, "--as", "reviewer",
        "--outcome", "approve", "--all-scores", "4", "--score", "innovation=5",
    )  # fmt: skip
    assert code == 0, stderr
    assert "score 25" in stdout and "passes" in stdout
    code, stdout, stderr = ssg(
        "catalog", "solutions", "publish", solution_id, *where, "--as", "reviewer"
    )
    assert code == 0, stderr
    assert "PUBLISHED" in stdout
    # Anyone sees it now; its reviewers also see the review.
    code, stdout, _ = ssg("catalog", "solutions", "show", solution_id, *where)
    assert code == 0 and "PUBLISHED" in stdout and "6.4" in stdout
    code, stdout, _ = ssg("catalog", "solutions", "show", solution_id, *where, "--as", "reviewer")
    assert "reviews" in stdout and "APPROVE" in stdout
    code, stdout, _ = ssg(
        "catalog", "solutions", "list", *where, "--sdg", "6", "--region", "africa", "--json"
    )
    assert solution_id in {s["id"] for s in json.loads(stdout)["solutions"]}
    # A failed call exits 1 with the status code.
    code, _, stderr = ssg("catalog", "solutions", "submit", solution_id, *member)
    assert code == 1 and "FAILED_PRECONDITION" in stderr


def test_needs_post_and_list_and_funding_list(catalog: Catalog) -> None:
    where = ("--target", catalog.address)
    title = f"Seeking solar irrigation know-how {uuid.uuid4().hex[:6]}"
    code, stdout, stderr = ssg(
        "catalog", "needs", "post", *where, "--as", "member", "--org", catalog.verified,
        "--title", title, "--problem", "Our farmers lose crops every dry season without pumps.",
        "--country", "ken", "--sdg", "6", "--sdg", "2", "--support", "technical_assistance",
        "--support", "knowledge_exchange", "--deadline", "2099-01-31",
    )  # fmt: skip
    assert code == 0, stderr
    assert "OPEN" in stdout
    code, stdout, _ = ssg(
        "catalog", "needs", "list", *where, "--sdg", "6", "--country", "KEN", "--json"
    )
    assert title in {n["title"] for n in json.loads(stdout)["needs"]}
    code, stdout, _ = ssg("catalog", "needs", "list", *where)
    assert code == 0 and "need" in stdout
    code, _, stderr = ssg(
        "catalog", "needs", "post", *where, "--as", "member", "--org", catalog.pending,
        "--title", "Needs from a pending org", "--problem", "A problem statement long enough.",
        "--country", "KEN", "--sdg", "6", "--support", "financing",
    )  # fmt: skip
    assert code == 1 and "FAILED_PRECONDITION" in stderr
    code, stdout, stderr = ssg("catalog", "funding", "list", *where, "--status", "open", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["funding_opportunities"] == []


def test_parse_row_reads_csv_cells_and_json_values() -> None:
    row = catalog_import.parse_row(
        {
            "external_id": " a-1 ",
            "organization_id": "o1",
            "sdgs": "6; 7",
            "partners": "o2:funder;o3:BENEFICIARY",
            "indicators": [{"name": "n", "value": "3", "year": "2020"}],
            "resources": "Guide|https://x.example.org/g",
            "budget_amount": "10.25",
            "budget_currency": "usd",
            "contact_email": "a@example.org",
        }
    )
    assert row.external_id == "a-1"
    assert list(row.solution.sdgs) == [6, 7]
    assert [(p.organization_id, p.role) for p in row.solution.partners] == [("o2", 4), ("o3", 2)]
    assert row.solution.indicators[0].year == 2020
    assert row.solution.resources[0].url == "https://x.example.org/g"
    assert (row.solution.budget.units, row.solution.budget.nanos) == (10, 250_000_000)
    assert row.solution.budget.currency_code == "USD"
    with pytest.raises(catalog_import.RowError) as caught:
        catalog_import.parse_row({"sdgs": "six", "regions": "MOON", "budget_amount": "5"})
    assert {f for f, _ in caught.value.problems} == {
        "sdgs",
        "regions",
        "budget_amount",
        "external_id",
    }
