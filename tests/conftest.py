"""Fixtures of the deployment and monitoring tests: tools/manifests.py as a module and every
overlay rendered once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_manifests_tool() -> ModuleType:
    """tools/manifests.py (a script, not a package) as a module."""
    spec = importlib.util.spec_from_file_location("ssg_manifests_tool", ROOT / "tools/manifests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def manifests() -> ModuleType:
    return load_manifests_tool()


@pytest.fixture(scope="session")
def rendered(manifests: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """overlay name -> the objects `kubectl kustomize` renders for it."""
    return {name: manifests.render(manifests.OVERLAYS_DIR / name) for name in manifests.overlays()}
