"""Accepted risk through the command line: a bad exceptions file stops the run before any work
(exit 1, the entry named); a bad VEX document or annotation is reported and the run goes on; the
ImageManifestVulns never change."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from job.cli import cli
from tests.vex_files import statement, write_vex

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan")]
GOOD = """exceptions:
  - vulnerability: CVE-2023-45853
    package: zlib
    reason: minizip is not built
    by: alice@example.com
    until: 2999-01-01
"""


def objects(out: Path) -> str:
    """The objects written offline, without the time of the run."""
    return re.sub(r"lastUpdate: .*", "lastUpdate: T", (out / "imagemanifestvulns.yaml").read_text())


def invoke(args, env=None):
    return CliRunner().invoke(cli, args, env=env or {}, catch_exceptions=False)


@pytest.mark.parametrize("text, words", [
    (GOOD.replace("    reason: minizip is not built\n", ""),
     "entry 1 (CVE-2023-45853 in zlib): reason is required"),
    (GOOD.replace("until: 2999-01-01", "until: soon"), "entry 1 (CVE-2023-45853 in zlib): until 'soon' is not a date"),
    (GOOD + "    owner: bob\n", "entry 1 (CVE-2023-45853 in zlib): unknown key 'owner'"),
    (GOOD.replace("package: zlib", "package: 'zl[ib'"), "package 'zl[ib' is not a valid glob"),
    ("exceptions:\n  - &a {package: zlib}\n  - *a\n", "anchors and aliases"),
])
def test_a_bad_exceptions_file_is_a_configuration_error_naming_the_entry(tmp_path, text, words):
    path = tmp_path / "exceptions.yaml"
    path.write_text(text)
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--exceptions", str(path)])
    assert result.exit_code == 1, result.output
    assert f"exceptions file {path}" in result.output and words in result.output
    assert not (tmp_path / "out").exists()  # found before any work


def test_an_exceptions_file_that_is_not_a_regular_file_or_too_large_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--exceptions", str(fifo)])
    assert result.exit_code == 1 and "is not a regular file" in result.output
    big = tmp_path / "big.yaml"
    big.write_text("exceptions: []\n" + "#" * (1 << 20))
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--exceptions", str(big)])
    assert result.exit_code == 1 and "too large" in result.output


def test_exceptions_and_vex_change_the_reports_never_the_objects(tmp_path):
    plain = invoke(["run", *DEMO, "--output", str(tmp_path / "plain")])
    (tmp_path / "e.yaml").write_text(GOOD)
    vex = write_vex(tmp_path / "vex.json", statement(
        "CVE-2024-3094", "pkg:oci/worker?repository_url=registry.example.com:5000/checkout/worker",
        packages=("pkg:deb/debian/xz-utils",)))
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--exceptions", str(tmp_path / "e.yaml"),
                     "--vex", str(vex)])
    assert plain.exit_code == 0 and result.exit_code == 0, result.output
    assert objects(tmp_path / "out") == objects(tmp_path / "plain")
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    before = json.loads((tmp_path / "plain" / "summary.json").read_text())
    origins = {f["entry"]["origin"] for f in doc["accepted"]["findings"]}
    assert origins == {"file", "vex"} and doc["accepted"]["vexDocuments"] == 1
    assert doc["totals"]["vulnerabilities"] == before["totals"]["vulnerabilities"]
    assert doc["totals"]["findings"] == before["totals"]["findings"] - doc["totals"]["accepted"]


def test_a_bad_vex_document_is_reported_and_not_applied_and_the_run_goes_on(tmp_path):
    folder = tmp_path / "vex"
    folder.mkdir()
    write_vex(folder / "good.json", statement("CVE-2024-3094", "registry.example.com:5000/checkout/worker"))
    (folder / "broken.json").write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [')
    write_vex(folder / "bad.json", statement("CVE-2024-3094", "registry.example.com:5000/checkout/worker",
                                             status="maybe"))
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--vex", str(folder)])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    details = [c["detail"] for c in doc["coverage"]]
    assert any(f"VEX {folder / 'broken.json'} is not JSON" in d for d in details)
    assert any(f"VEX {folder / 'bad.json'}, statement 1 (CVE-2024-3094): status must be one of" in d
               and "not applied" in d for d in details)
    assert doc["accepted"]["vexDocuments"] == 1 and doc["accepted"]["total"] > 0


def test_namespace_annotations_are_read_only_when_the_operator_names_the_annotation(tmp_path):
    pods = json.loads((REPO / "demo" / "pods.json").read_text())
    entry = '[{"vulnerability": "CVE-2023-45853", "reason": "owner says so", "by": "web-team", "until": "2999-01-01"}]'
    pods["items"].append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "web", "annotations": {"imvjob/exceptions": entry, "imvjob/notify": "web-team@example.com"}}})
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pods))
    args = ["run", "--pods", str(path), "--secscan-dir", str(REPO / "demo" / "secscan")]
    off = invoke([*args, "--output", str(tmp_path / "off")])
    on = invoke([*args, "--output", str(tmp_path / "on"), "--exceptions-annotation", "imvjob/exceptions"])
    assert off.exit_code == 0 and on.exit_code == 0, on.output
    assert json.loads((tmp_path / "off" / "summary.json").read_text())["accepted"]["total"] == 0
    acc = json.loads((tmp_path / "on" / "summary.json").read_text())["accepted"]
    assert acc["total"] > 0 and {f["namespace"] for f in acc["findings"]} == {"web"}
    assert {f["entry"]["source"] for f in acc["findings"]} == {
        "namespace web (annotation imvjob/exceptions), entry 1 (CVE-2023-45853)"}


def test_a_refused_vex_document_is_an_input_not_applied_under_coverage(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"@context": "https://openvex.dev/ns/v0.2.0"}')
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--vex", str(bad)])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    (item,) = [c for c in doc["coverage"] if c["kind"] == "input"]
    assert (item["subject"], item["state"]) == ("VEX", "not applied")
    assert item["detail"] == f"VEX {bad}: @id is required: this document's statements are not applied"
