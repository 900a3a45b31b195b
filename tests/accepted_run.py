"""Accepted risk for the real readers' tests, on tests.triage_run's May 4th: an exception expiring
soon (with text that tries HTML and formula injection), an expired one, and an OpenVEX statement."""
from __future__ import annotations

import json
from pathlib import Path

import orjson

from job.accepted import read_exceptions
from job.vex import parse as parse_vex
from tests.triage_run import triage_context
from tests.vex_files import statement, write_vex

SCRIPT = "<script>document.title='pwned'</script> only in the FIPS build"
FORMULA = '=HYPERLINK("http://evil.example/x","click me")'
EXCEPTIONS = {"exceptions": [
    {"namespace": "shop", "vulnerability": "CVE-2024-0727", "package": "openssl", "reason": SCRIPT, "by": FORMULA,
     "until": "2026-05-12", "ticket": "https://tickets.example/SEC-7"},
    {"namespace": "shop", "workload": "Deployment/api", "vulnerability": "CVE-2023-4911",
     "reason": "glibc tunables are not reachable", "by": "alice@example.com", "until": "2026-05-01"},
]}


def accepted_context(tmp: Path):
    """The May 4th context with those entries, read as a run reads them (the file and the document)."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "exceptions.yaml"
    path.write_text(json.dumps(EXCEPTIONS))  # JSON is YAML
    vex = write_vex(tmp / "db.vex.json", statement(
        "CVE-2021-44228", "pkg:oci/db?repository_url=quay.io/payments/db",
        packages=("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",), justification="component_not_present",
        impact="the JNDI lookup class is removed from the jar"))
    rules = read_exceptions(str(path)) + parse_vex(orjson.loads(vex.read_bytes()), source=f"VEX {vex}")
    return triage_context(tmp, rules=tuple(rules))
