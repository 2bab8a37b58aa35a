"""`ssg org`, `ssg expert` and `ssg seed` against a real registration service (its own process,
`python -m ssg.registration`, on a free loopback port) on a real MongoDB."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from ssg.cli.main import app
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.testing.servers import free_port

runner = CliRunner()
SERVICE = "ssg.registration.v1.RegistrationService"


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
def registration(mongodb_server, tmp_path_factory) -> Iterator[str]:
    """host:port of a registration API process of this module's own (instance "global")."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("registration") / "registration.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    env |= {
        "SSG_ENV": "test",
        "SSG_INSTANCE": "global",
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(port),
        "SSG_METRICS_HOST": "127.0.0.1",
        "SSG_METRICS_PORT": str(free_port()),
        "SSG_MONGODB_URI": mongodb_server.uri(f"registration-cli-{uuid.uuid4().hex[:8]}"),
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_HEALTH_INTERVAL_SECONDS": "0.2",
        "SSG_EXPIRY_SWEEP_SECONDS": "0",
        "SSG_GRACE_SECONDS": "1",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ssg.registration"],
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
            assert time.monotonic() < deadline, (
                "registration never SERVING:\n" + log_path.read_text()
            )
            time.sleep(0.1)
        yield address
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


def register_org(target: str, name: str, *extra: str) -> dict:
    code, stdout, stderr = ssg(
        *("org", "register", "--target", target, "--as", "member", "--subject", "alice"),
        *("--name", name, "--type", "ngo", "--country", "KEN", "--sdg", "6", "--sdg", "13"),
        *("--region", "africa", "--language", "en", "--website", "https://water.example.org"),
        *extra,
        "--json",
    )
    assert code == 0, stderr
    return json.loads(stdout)


def test_register_show_verify_and_list(registration: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    registered = register_org(registration, f"Lakeside Water Alliance {suffix}")
    org = registered["organization"]
    assert org["status"] == "ORGANIZATION_STATUS_PENDING"
    assert org["instance"] == "global"
    org_id = org["id"]

    # Pending organizations are hidden from anonymous callers...
    code, _, stderr = ssg("org", "show", org_id, "--target", registration)
    assert code == 1
    assert "NOT_FOUND" in stderr

    code, stdout, stderr = ssg(
        *("org", "verify", org_id, "--target", registration, "--as", "reviewer"),
        *("--evidence", "registry checked"),
    )
    assert code == 0, stderr
    assert "status: VERIFIED" in " ".join(stdout.split())

    # ...and shown once verified, as key: value lines.
    code, stdout, stderr = ssg("org", "show", org_id, "--target", registration)
    assert code == 0, stderr
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in stdout.splitlines())
        if value
    )
    assert fields["status"] == "VERIFIED"
    assert fields["headquarters"] == "KEN"
    assert fields["sdgs"] == "6, 13"
    assert fields["type"] == "NGO"

    # Reviewers also see the audit trail.
    code, stdout, _ = ssg("org", "show", org_id, "--target", registration, "--as", "reviewer")
    assert code == 0
    assert "audit trail" in stdout and "verified" in stdout

    code, stdout, stderr = ssg(
        *("org", "list", "--target", registration, "--country", "KEN", "--all", "--json")
    )
    assert code == 0, stderr
    assert org_id in [o["id"] for o in json.loads(stdout)["organizations"]]
    code, stdout, _ = ssg("org", "list", "--target", registration, "--country", "KEN")
    assert code == 0
    assert "organization(s)" in stdout and "NGO" in stdout


def test_register_is_idempotent_on_request_id(registration: str) -> None:
    name = f"Baobab Community Water Trust {uuid.uuid4().hex[:6]}"
    request_id = uuid.uuid4().hex
    first = register_org(registration, name, "--request-id", request_id)
    again = register_org(registration, name, "--request-id", request_id)
    assert again["organization"]["id"] == first["organization"]["id"]


def test_duplicates_are_shown(registration: str) -> None:
    name = f"Savanna Irrigation Cooperative {uuid.uuid4().hex[:6]}"
    original = register_org(registration, name, "--website", f"https://{name[-6:]}.example.org")
    code, stdout, stderr = ssg(
        *("org", "register", "--target", registration, "--as", "member", "--json"),
        *("--name", f"{name} (copy)", "--type", "PRIVATE_SECTOR", "--country", "KEN"),
        *("--website", f"https://www.{name[-6:]}.example.org/about"),
    )
    assert code == 0, stderr
    copy = json.loads(stdout)
    [candidate] = copy["possible_duplicates"]
    assert candidate["organization_id"] == original["organization"]["id"]
    assert "same website domain" in candidate["reasons"]
    # A reviewer looking at the copy sees the same candidates as a table.
    code, stdout, stderr = ssg(
        "org", "show", copy["organization"]["id"], "--target", registration, "--as", "reviewer"
    )
    assert code == 0, stderr
    assert "possible duplicates" in stdout
    assert original["organization"]["id"] in stdout


def test_reject_and_suspend(registration: str) -> None:
    pending = register_org(registration, f"Red Earth Rangers {uuid.uuid4().hex[:6]}")
    code, stdout, stderr = ssg(
        *("org", "reject", pending["organization"]["id"], "--target", registration),
        *("--as", "reviewer", "--reason", "registry entry not found", "--json"),
    )
    assert code == 0, stderr
    rejected = json.loads(stdout)["organization"]
    assert rejected["status"] == "ORGANIZATION_STATUS_REJECTED"
    assert rejected["status_reason"] == "registry entry not found"

    other = register_org(registration, f"Highland Seed Bank {uuid.uuid4().hex[:6]}")
    org_id = other["organization"]["id"]
    # Only a verified organization can be suspended: the transition error is shown as such.
    code, _, stderr = ssg(
        *("org", "suspend", org_id, "--target", registration, "--as", "operator"),
        *("--reason", "contact bounced"),
    )
    assert code == 1
    assert "FAILED_PRECONDITION" in stderr
    assert ssg("org", "verify", org_id, "--target", registration, "--as", "operator")[0] == 0
    code, stdout, stderr = ssg(
        *("org", "suspend", org_id, "--target", registration, "--as", "operator"),
        *("--reason", "contact bounced"),
    )
    assert code == 0, stderr
    assert "status: SUSPENDED" in " ".join(stdout.split())


def test_bad_input_prints_each_field_violation(registration: str) -> None:
    code, stdout, stderr = ssg(
        *("org", "register", "--target", registration, "--as", "member"),
        *("--name", "X", "--type", "NGO", "--country", "XXX", "--sdg", "18"),
        *("--website", "ftp://nowhere", "--email", "not-an-email"),
    )
    assert code == 1
    assert stdout == ""
    assert "INVALID_ARGUMENT" in stderr
    for field in (
        "organization.name",
        "organization.headquarters_country",
        "organization.sdgs[0]",
        "organization.website",
        "organization.contact_email",
    ):
        assert re.search(rf"^\s+{re.escape(field)}: ", stderr, re.M), (field, stderr)


def test_unknown_enum_value_is_a_usage_error_before_any_call(registration: str) -> None:
    code, _, stderr = ssg(
        *("org", "register", "--target", registration, "--as", "member"),
        *("--name", "Some Body", "--type", "club", "--country", "KEN"),
    )
    assert code == 2
    assert "unknown value 'club'" in stderr and "SOUTH_SOUTH_NETWORK" in stderr


def test_anonymous_register_is_unauthenticated_with_a_hint(registration: str) -> None:
    code, _, stderr = ssg(
        *("org", "register", "--target", registration),
        *("--name", "Anonymous Body", "--type", "NGO", "--country", "KEN"),
    )
    assert code == 1
    assert "UNAUTHENTICATED" in stderr and "--as" in stderr


def test_dev_tokens_are_refused_outside_dev(
    registration: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSG_ENV", "production")
    code, _, stderr = ssg("org", "list", "--target", registration, "--as", "operator")
    assert code == 2
    assert "--token" in stderr


def test_an_unreachable_service_is_unavailable() -> None:
    code, _, stderr = ssg("org", "list", "--target", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert "UNAVAILABLE" in stderr and "make up" in stderr


def test_expert_register_list_show_erase(registration: str) -> None:
    name = f"Nadia Osei {uuid.uuid4().hex[:6]}"
    code, stdout, stderr = ssg(
        *("expert", "register", "--target", registration, "--as", "member", "--subject", "nadia"),
        *("--name", name, "--expertise", "solar mini-grids", "--expertise", "energy policy"),
        *("--visibility", "hidden", "--sdg", "7", "--country", "gha", "--language", "en"),
        "--json",
    )
    assert code == 0, stderr
    expert_id = json.loads(stdout)["expert"]["id"]

    # Hidden: anonymous callers neither see nor list it; its owner does.
    assert ssg("expert", "show", expert_id, "--target", registration)[0] == 1
    code, stdout, _ = ssg("expert", "list", "--target", registration, "--all", "--json")
    assert expert_id not in [e["id"] for e in json.loads(stdout)["experts"]]
    code, stdout, stderr = ssg(
        *("expert", "show", expert_id, "--target", registration),
        *("--as", "member", "--subject", "nadia"),
    )
    assert code == 0, stderr
    assert "visibility:" in stdout and "HIDDEN" in stdout and "GHA" in stdout

    # Someone else may not erase it; its owner may (after --yes), and then it is gone.
    code, _, stderr = ssg(
        *("expert", "erase", expert_id, "--yes", "--target", registration),
        *("--as", "member", "--subject", "mallory"),
    )
    assert code == 1
    code, stdout, stderr = ssg(
        *("expert", "erase", expert_id, "--yes", "--target", registration),
        *("--as", "member", "--subject", "nadia"),
    )
    assert code == 0, stderr
    assert f"erased expert {expert_id}" in stdout
    code, _, stderr = ssg("expert", "show", expert_id, "--target", registration, "--as", "operator")
    assert code == 1 and "NOT_FOUND" in stderr


def _summary(stdout: str) -> dict[str, int]:
    line = next(line for line in stdout.splitlines() if line.startswith("registration:"))
    numbers = {
        "organizations": r"(\d+) organizations",
        "new": r"\((\d+) new;",
        "verified": r"(\d+) verified",
        "pending": r"(\d+) pending",
        "rejected": r"(\d+) rejected",
        "suspended": r"(\d+) suspended",
        "flagged": r"(\d+) flagged",
        "experts": r"(\d+) experts",
        "experts_new": r"experts \((\d+) new\)",
    }
    return {k: int(m[1]) if (m := re.search(p, line)) else 0 for k, p in numbers.items()}


def test_seed_registers_the_demo_data_once(registration: str, tmp_path: Path) -> None:
    from ssg.registration import demo

    data = demo.generate(seed=11, organizations=90, experts=12)
    code, stdout, stderr = ssg(
        *("seed", "registration", "--target", registration, "--seed", "11"),
        *("--organizations", "90", "--experts", "12"),
    )
    assert code == 0, stderr
    first = _summary(stdout)
    wanted = {s.value.lower(): 0 for s in demo.OrganizationStatus}
    for org in data.organizations:
        wanted[org.target_status.value.lower()] += 1
    assert first["organizations"] == first["new"] == 90
    assert {k: first[k] for k in ("verified", "pending", "rejected", "suspended")} == {
        k: wanted[k] for k in ("verified", "pending", "rejected", "suspended")
    }
    assert first["flagged"] >= sum(1 for o in data.organizations if o.duplicate_of)
    assert first["experts"] == first["experts_new"] == 12

    # The operator sees every one of them; anonymous callers only the verified ones.
    code, stdout, _ = ssg(
        *("org", "list", "--target", registration, "--as", "operator", "--all", "--json"),
        "--page-size",
        "100",
    )
    listed = json.loads(stdout)["organizations"]
    seeded = {o.draft.name for o in data.organizations}
    assert len([o for o in listed if o["name"] in seeded]) == 90
    code, stdout, _ = ssg("org", "list", "--target", registration, "--all", "--json")
    public = [o for o in json.loads(stdout)["organizations"] if o["name"] in seeded]
    assert len(public) == wanted["verified"]

    # A second run (here through the generic `ssg seed` and a ports file) creates nothing.
    host, port = registration.rsplit(":", 1)
    ports = tmp_path / "ports.toml"
    ports.write_text(
        f'host = "{host}"\n[servers]\n'
        f"kafka = {free_port()}\nmongodb = {free_port()}\nopensearch = {free_port()}\n"
        "rabbitmq = 5672\n"
        f'[services.registration]\nmodule = "ssg.registration"\n'
        f"grpc = {port}\nmetrics = {free_port()}\n"
    )
    code, stdout, stderr = ssg(
        *("seed", "registration", "--ports", str(ports), "--seed", "11"),
        *("--organizations", "90", "--experts", "12"),
    )
    assert code == 0, stderr
    again = _summary(stdout)
    assert again["new"] == 0 and again["experts_new"] == 0
    assert {k: again[k] for k in wanted if k in again} == {
        k: first[k] for k in wanted if k in first
    }
    code, stdout, _ = ssg(
        *("org", "list", "--target", registration, "--as", "operator", "--all", "--json"),
        "--page-size",
        "100",
    )
    assert len([o for o in json.loads(stdout)["organizations"] if o["name"] in seeded]) == 90
