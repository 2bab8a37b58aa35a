"""services/Dockerfile: hadolint clean, and the image rules of the issue, read from the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "services" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def test_hadolint_finds_nothing(manifests: Any) -> None:
    assert manifests.check_dockerfiles() == []


def test_hadolint_does_complain_about_a_bad_dockerfile(manifests: Any, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install uv\n")
    status, output = manifests.run([manifests.hadolint_binary(), str(bad)])
    assert status != 0 and "DL3007" in output  # the :latest tag


def test_the_build_installs_only_the_services_member_with_uv() -> None:
    build = stages()[0]
    syncs = [args for name, args in build if name == "RUN" and "uv sync" in args]
    assert len(syncs) == 1
    for flag in ("--frozen", "--no-dev", '--package "ssg-$SERVICE"', "--no-editable"):
        assert flag in syncs[0]


def test_the_final_stage_is_non_root_without_build_tools_and_stops_on_sigterm() -> None:
    found = stages()
    assert len(found) >= 2
    final = found[-1]
    assert final[0][1].startswith("python:3.11-slim")
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("STOPSIGNAL", "SIGTERM") in final
    runs = " ".join(args for name, args in final if name == "RUN")
    assert not re.search(r"\b(pip|uv|apt-get|gcc)\b", runs), runs
    copies = [args for name, args in final if name == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_every_deployed_image_is_a_workspace_member(rendered: dict[str, list[Any]]) -> None:
    images = {
        doc["spec"]["template"]["spec"]["containers"][0]["image"]
        for docs in rendered.values()
        for doc in docs
        if doc["kind"] == "Deployment"
    }
    for image in images:
        service = image.removeprefix("ssg-")
        project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
        assert project["project"]["name"] == image


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".run", ".build"} <= ignored
