"""Fixtures for the deployment files' tests: the linters from the tools virtualenv.

checkov and hadolint live in `.venv-tools/` (made by `make tools`, which `make test` runs):
checkov's dependencies conflict with the project's. Missing tools fail the run in CI (CI=true)
and skip, saying why, elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".venv-tools" / "bin"


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not os.access(path, os.X_OK):
        unavailable(f"{name} is not installed in {TOOLS_BIN.parent.name}/: run `make tools`")
    return path


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return _tool("hadolint")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return _tool("checkov")
