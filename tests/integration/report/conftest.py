"""Real readers of the reports: headless Chromium and LibreOffice, and a report to give them.

A missing program skips its tests with the reason on a developer's machine, and fails them in CI
(CI=true), where tests/system-deps.sh must have installed it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from job.model import Problem, ScanState
from job.report import build_context, write_reports
from tests.factories import (make_feature, make_hostile_run, make_pod, make_ref, make_result, make_settings,
                             make_snapshot, make_vuln)


def need(program: str, package: str) -> str:
    path = shutil.which(program)
    if path:
        return path
    message = f"{program} is not installed (Debian package {package}; tests/system-deps.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> str:
    return need("chromium", "chromium")


@pytest.fixture(scope="session")
def libreoffice() -> str:
    return need("libreoffice", "libreoffice-calc")


def report_run():
    """A small cluster as a person would get it: owners, fixes, an unscanned image, hostile text."""
    web, api, db = make_ref("shop/web", tag="7"), make_ref("shop/api", tag="3"), make_ref("library/postgres",
                                                                                          host="docker.io")
    agent = make_ref("ops/agent", host="registry.local:5000")
    results = {
        web: make_result(web, make_feature("openssl", "3.0.1",
                                           make_vuln("CVE-2024-0727", "Critical", fixed_by="3.0.13", cvss=9.8),
                                           make_vuln("CVE-2023-5678", "Medium", fixed_by="3.0.13")),
                         make_feature("curl", "7.61.1", make_vuln("CVE-2023-38545", "High", fixed_by="7.61.1-34"))),
        api: make_result(api, make_feature("glibc", "2.28", make_vuln("CVE-2023-4911", "High", fixed_by="2.28-236"))),
        db: make_result(db, make_feature("zlib", "1.2.11", make_vuln("CVE-2022-37434", "Critical", fixed_by="1.2.13"))),
        agent: make_result(agent, state=ScanState.UNREACHABLE, detail="connection refused after 4 retries"),
    }
    pods = [make_pod("shop", f"web-5d8f-{i}", web) for i in range(3)] + [
        make_pod("shop", "api-7c9-x", api),
        make_pod("payments", "db-0", db, workload=("StatefulSet", "db")),
        make_pod("ops", "agent-q1", agent, workload=("DaemonSet", "agent")),
    ]
    hostile_snap, hostile_results = make_hostile_run()
    snap = make_snapshot(pods + hostile_snap.pods, cluster="prod-eu",
                         owners={"shop": "shop-team@example.com", "payments": "payments@example.com"},
                         problems=[Problem("ops/broken-1", "status has no containerStatuses")])
    return snap, results | hostile_results


@pytest.fixture()
def report_dir(tmp_path) -> Path:
    snap, results = report_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    write_reports(ctx, tmp_path / "out")
    return tmp_path / "out"
