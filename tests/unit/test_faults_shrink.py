"""Oversized reports: an object that must shrink keeps its most severe entries and says what it left out."""
from __future__ import annotations

import json

import pytest

from job.desired import SHRUNK_ANNOTATION, desired_state
from job.imv_spec import MAX_OBJECT_BYTES, left_out_counts
from job.model import Feature
from tests.factories import RUN_AT, WEB_REF, pod_of, report_of, scanned, snap_of, vuln_of

pytestmark = pytest.mark.fault


def _object(*features: Feature):
    state = desired_state(snap_of(pod_of("ns", "a", WEB_REF)), {WEB_REF: scanned(WEB_REF, report_of(*features))},
                          now=RUN_AT)
    return next(iter(state.objects.values()))


def _kept(obj) -> list[str]:
    return [v["severity"] for f in obj.spec.get("features", []) for v in f["vulnerabilities"]]


def test_a_ten_megabyte_report_keeps_every_critical_that_fits_before_any_low() -> None:
    # ~10 MB: 2,666 Critical and 1,334 Low entries of ~2.5 KB each (descriptions, metadata, links).
    vulns = [vuln_of(f"CVE-2026-{i}", "Critical" if i % 3 else "Low", fixed="2", description="d" * 1200,
                     link="https://example.test/" + "l" * 1000, metadata={"m": "x" * 300}) for i in range(4000)]
    features = [Feature(f"pkg-{i}", "1", vulnerabilities=tuple(vulns[i * 10:(i + 1) * 10])) for i in range(400)]
    obj = _object(*features)
    size = len(json.dumps(obj.spec, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= MAX_OBJECT_BYTES
    kept = _kept(obj)
    assert kept.count("Critical") > 0 and kept.count("Low") == 0  # Criticals fill it; no Low before them
    left_out = left_out_counts(obj.annotations[SHRUNK_ANNOTATION].split(","))
    assert left_out == {"Critical": 2666 - kept.count("Critical"), "Low": 1334}
    assert obj.status["criticalCount"] == 2666 and obj.status["lowCount"] == 1334  # counts: the full report
    # Nearly all of the room is used: no whole severity thrown away at once.
    assert size > MAX_OBJECT_BYTES * 0.95


def test_criticals_whose_package_names_pass_a_megabyte_keep_as_many_as_fit() -> None:
    features = [Feature("p" * 1500 + str(i), "1", vulnerabilities=(vuln_of(f"CVE-{i}", "Critical"),))
                for i in range(700)]
    obj = _object(*features)
    kept = _kept(obj)
    assert len(kept) > 600  # ~1.5 KB each: about 650 fit in a megabyte, not 0
    assert left_out_counts(obj.annotations[SHRUNK_ANNOTATION].split(",")) == {"Critical": 700 - len(kept)}


def test_a_critical_too_large_to_fit_does_not_stop_the_smaller_ones() -> None:
    huge = Feature("huge", "1", vulnerabilities=(vuln_of("CVE-HUGE", "Critical", metadata=None,
                                                         link="https://x.test/" + "z" * 1_100_000),))
    small = Feature("small", "1", vulnerabilities=(vuln_of("CVE-SMALL", "Critical"), vuln_of("CVE-LOW", "Low")))
    obj = _object(huge, small)
    assert [v["name"] for f in obj.spec["features"] for v in f["vulnerabilities"]] == ["CVE-SMALL", "CVE-LOW"]
    assert left_out_counts(obj.annotations[SHRUNK_ANNOTATION].split(",")) == {"Critical": 1}
