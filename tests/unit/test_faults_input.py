"""Hostile and mistaken input: never a traceback, never a wrong exit status.

A bad item (a pod, a namespace, an owner object) is a problem listed for that item; a bad whole
input (a file that cannot be decoded, a stage file of the wrong shape, a bad flag or config file)
is one clear line and exit 1. Each case runs the real CLI on files the test writes.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from job.cli import cli

pytestmark = pytest.mark.fault

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan")]
DIGEST = "sha256:" + hashlib.sha256(b"hostile").hexdigest()
IMAGE = f"quay.io/shop/web@{DIGEST}"
QUAY_SCANNED = {"status": "scanned", "data": {"Layer": {
    "Name": "sha256:top", "ParentName": "", "NamespaceName": "debian:12", "IndexedByVersion": 4,
    "Features": [{"Name": "bash", "Version": "5.2", "VersionFormat": "dpkg", "NamespaceName": "debian:12",
                  "AddedBy": "sha256:0", "Vulnerabilities": [
                      {"Name": "CVE-2024-1", "Severity": "High", "NamespaceName": "debian:12",
                       "Link": "https://nvd.nist.gov/vuln/detail/CVE-2024-1", "FixedBy": "5.3",
                       "Description": "d", "Metadata": {"UpdatedBy": "Debian"}}]}]}}}


def invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env or {})


def assert_clean(result, codes: tuple[int, ...]) -> None:
    """No exception escaped (a traceback), and the exit status is one of `codes`."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"{type(exc).__name__}: {exc}\n{result.output[-2000:]}")
    assert "Traceback" not in result.output
    assert result.exit_code in codes, result.output[-2000:]


def assert_one_error_line(result, *words: str) -> None:
    """Exit 1 with one clear error line naming what is wrong."""
    assert_clean(result, (1,))
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output[-2000:]
    for word in words:
        assert word in errors[0], result.output[-2000:]


class Deep:
    """A list nested `levels` deep, written as JSON text (too deep for json.dumps here)."""

    def __init__(self, levels: int) -> None:
        self.levels = levels


def deep_json(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def to_json(doc: Any) -> str:
    text = json.dumps(doc, default=lambda d: f"@deep{d.levels}@")
    return re.sub(r'"@deep(\d+)@"', lambda m: deep_json(int(m.group(1))), text)


# --- the pods file: a generator of wrong types at every field the job reads ----------------------


def pod_list() -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": [
        {"kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "web"},
                                           "annotations": {"imvjob/notify": "web@example.com"}}},
        {"kind": "ReplicaSet", "metadata": {"name": "web-7d4b9c", "namespace": "shop", "ownerReferences": [
            {"kind": "Deployment", "name": "web", "controller": True}]}},
        {"kind": "Pod",
         "metadata": {"name": "web-7d4b9c-x2", "namespace": "shop", "uid": "u1",
                      "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
                      "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9c", "controller": True}]},
         "spec": {"containers": [{"name": "app", "image": "quay.io/shop/web:1"}],
                  "imagePullSecrets": [{"name": "pull"}], "serviceAccountName": "web"},
         "status": {"phase": "Running", "containerStatuses": [
             {"name": "app", "image": "quay.io/shop/web:1", "imageID": IMAGE, "containerID": "cri-o://1"}]}},
    ]}


NS, RS, POD = ("items", 0), ("items", 1), ("items", 2)
#: Every field of the pods file the job reads, and the JSON type it must have.
FIELDS: dict[tuple, type] = {
    (*NS, "metadata"): dict, (*NS, "metadata", "name"): str, (*NS, "metadata", "labels"): dict,
    (*NS, "metadata", "labels", "team"): str, (*NS, "metadata", "annotations"): dict,
    (*NS, "metadata", "annotations", "imvjob/notify"): str,
    (*RS, "metadata"): dict, (*RS, "kind"): str, (*RS, "metadata", "name"): str, (*RS, "metadata", "namespace"): str,
    (*RS, "metadata", "ownerReferences"): list, (*RS, "metadata", "ownerReferences", 0): dict,
    (*RS, "metadata", "ownerReferences", 0, "kind"): str, (*RS, "metadata", "ownerReferences", 0, "name"): str,
    (*POD, "kind"): str, (*POD, "metadata"): dict, (*POD, "metadata", "name"): str,
    (*POD, "metadata", "namespace"): str, (*POD, "metadata", "uid"): str, (*POD, "metadata", "labels"): dict,
    (*POD, "metadata", "labels", "app"): str, (*POD, "metadata", "labels", "pod-template-hash"): str,
    (*POD, "metadata", "ownerReferences"): list, (*POD, "metadata", "ownerReferences", 0): dict,
    (*POD, "metadata", "ownerReferences", 0, "kind"): str, (*POD, "metadata", "ownerReferences", 0, "name"): str,
    (*POD, "metadata", "ownerReferences", 0, "controller"): bool,
    (*POD, "spec"): dict, (*POD, "spec", "containers"): list, (*POD, "spec", "containers", 0): dict,
    (*POD, "spec", "containers", 0, "name"): str, (*POD, "spec", "containers", 0, "image"): str,
    (*POD, "spec", "imagePullSecrets"): list, (*POD, "spec", "imagePullSecrets", 0): dict,
    (*POD, "spec", "imagePullSecrets", 0, "name"): str, (*POD, "spec", "serviceAccountName"): str,
    (*POD, "status"): dict, (*POD, "status", "phase"): str, (*POD, "status", "containerStatuses"): list,
    (*POD, "status", "containerStatuses", 0): dict, (*POD, "status", "containerStatuses", 0, "name"): str,
    (*POD, "status", "containerStatuses", 0, "imageID"): str,
    (*POD, "status", "containerStatuses", 0, "image"): str,
    (*POD, "status", "containerStatuses", 0, "containerID"): str,
}
WRONG = {"number": 7, "float": 1.5, "bool": True, "string": "x", "list": [], "list-of-number": [1],
         "object": {}, "object-of-number": {"a": 1}, "deep": Deep(300)}


def hostile_pod_lists() -> Iterator[tuple[str, dict, bool]]:
    """(case id, pods file, whether a problem must be listed): each field given each wrong type."""
    for path, expected in FIELDS.items():
        for label, value in WRONG.items():
            right = isinstance(value, expected) and not (expected is dict and value == {"a": 1}
                                                         and path[-1] in ("labels", "annotations"))
            if right:
                continue
            doc = pod_list()
            node = doc
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = copy.deepcopy(value)
            must_list = not right and not (expected is dict and value == {} or expected is list and value == [])
            yield "/".join(map(str, path)) + "=" + label, doc, must_list


HOSTILE = list(hostile_pod_lists())


@pytest.fixture
def secscan(tmp_path: Path) -> Path:
    folder = tmp_path / "secscan"
    folder.mkdir()
    (folder / (DIGEST.replace(":", ".") + ".json")).write_text(json.dumps(QUAY_SCANNED))
    return folder


def run_pods(tmp_path: Path, secscan: Path, doc: Any, *extra: str):
    pods = tmp_path / "pods.json"
    pods.write_text(doc if isinstance(doc, str) else to_json(doc))
    return invoke(["run", "--pods", str(pods), "--secscan-dir", str(secscan), "-o", str(tmp_path / "out"), *extra])


def test_the_unmodified_pods_file_runs_clean(tmp_path: Path, secscan: Path) -> None:
    result = run_pods(tmp_path, secscan, pod_list())
    assert_clean(result, (0,))
    assert "warning" not in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["totals"]["pods"] == 1 and summary["totals"]["vulnerabilities"]["High"] == 1


#: With a selector, the pods' labels are read before anything else.
SELECTED = [c for c in HOSTILE if c[0].startswith("items/2/metadata")]


@pytest.mark.parametrize("case, doc, must_list", HOSTILE, ids=[c for c, _, _ in HOSTILE])
def test_a_wrong_typed_field_is_a_problem_of_its_item(tmp_path: Path, secscan: Path, case: str, doc: dict,
                                                      must_list: bool) -> None:
    result = run_pods(tmp_path, secscan, doc)
    assert_clean(result, (0,))
    if must_list:
        assert "warning:" in result.output, result.output


@pytest.mark.parametrize("case, doc, must_list", SELECTED, ids=[c for c, _, _ in SELECTED])
def test_a_wrong_typed_field_with_a_selector(tmp_path: Path, secscan: Path, case: str, doc: dict,
                                             must_list: bool) -> None:
    result = run_pods(tmp_path, secscan, doc, "--selector", "app=web")
    assert_clean(result, (0,))
    if must_list:
        assert "warning:" in result.output, result.output



# --- a live page of pods, decoded into only the fields the job reads ---------------------------


def _snapshot_of_page(page: Any) -> tuple:
    from job.settings import Settings
    from job.snapshot import SnapshotBuilder

    builder = SnapshotBuilder(Settings())
    builder.add(page["items"])
    return builder.pods, builder.problems, builder.unsure, builder.owner_kinds


def _both_decodings(doc: Any) -> tuple[tuple, tuple]:
    from job.codec import decode_json
    from job.pods import decode_pod_page

    raw = (doc if isinstance(doc, str) else to_json(doc)).encode()
    return _snapshot_of_page(decode_pod_page(raw)), _snapshot_of_page(decode_json(raw))


def _page(*changes: tuple[tuple, Any]) -> dict:
    """The pods file's pod as a PodList page, with fields changed ((path, value); value None: dropped)."""
    doc = pod_list()
    pod = copy.deepcopy(doc["items"][2])
    for path, value in changes:
        node = pod
        for key in path[:-1]:
            node = node[key]
        if value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return {"kind": "PodList", "metadata": {"continue": "token", "resourceVersion": "7"}, "items": [pod]}


HOSTILE_PODS = [(case, doc) for case, doc, _ in HOSTILE if case.startswith("items/2/")]


@pytest.mark.parametrize("case, doc", HOSTILE_PODS, ids=[c for c, _ in HOSTILE_PODS])
def test_a_live_page_gives_the_pods_and_problems_a_full_decoding_gives(case: str, doc: dict) -> None:
    reduced, full = _both_decodings({"kind": "PodList", "items": [doc["items"][2]]})
    assert reduced == full


@pytest.mark.parametrize("change", [
    (("metadata", "name"), ""), (("metadata", "namespace"), None), (("metadata",), None),
    (("metadata", "labels"), {"app": None}), (("status",), None), (("spec", "containers"), None),
    (("status", "containerStatuses", 0, "imageID"), ""), (("spec", "affinity"), Deep(1000)),
    (("metadata", "annotations"), {"deep": Deep(300)}), (("metadata", "managedFields"), [{"fieldsV1": {"f:x": {}}}]),
], ids=str)
def test_a_live_page_with_an_empty_missing_or_unread_field_gives_the_same(change: tuple) -> None:
    reduced, full = _both_decodings(_page(change))
    assert reduced == full


def test_a_live_page_keeps_its_continue_token_and_builds_none_of_the_fields_the_job_never_reads() -> None:
    from job.pods import decode_pod_page

    page = decode_pod_page(json.dumps(_page((("metadata", "managedFields"), [{"manager": "kubelet"}]),
                                            (("spec", "volumes"), [{"name": "v", "emptyDir": {}}]))).encode())
    assert page["metadata"]["continue"] == "token"
    pod = page["items"][0]
    assert "managedFields" not in pod["metadata"] and "volumes" not in pod["spec"]
    assert pod["metadata"]["name"] == "web-7d4b9c-x2"


# Not UTF-8 (JSON is UTF-8 throughout): in a field the job never reads, and in one it reads.
NOT_UTF8 = [to_json(_page((("metadata", "annotations"), {"note": "@"}))).encode().replace(b'"@"', b'"\xff"'),
            to_json(_page()).encode().replace(b'"web-7d4b9c-x2"', b'"web-\xc3"')]


@pytest.mark.parametrize("raw", [b"not json", b'{"items": [', deep_json(100_000).encode(),
                                 b'{"items": [' + deep_json(100_000).encode() + b"]}", *NOT_UTF8])
def test_a_live_page_that_cannot_be_decoded_is_the_same_error(raw: bytes) -> None:
    from job.codec import decode_json
    from job.pods import decode_pod_page

    with pytest.raises(ValueError) as full:
        decode_json(raw)
    with pytest.raises(ValueError) as reduced:
        decode_pod_page(raw)
    assert str(reduced.value) == str(full.value)


@pytest.mark.parametrize("doc, words", [
    (deep_json(100_000), ("pod list", "nested")),
    ('{"kind": "List", "items": [' + deep_json(5000) + "]}", ("pod list", "nested")),
    ({"kind": "List", "items": 5}, ("pod list",)),
    ({"kind": "List", "items": {"a": 1}}, ("pod list",)),
    ("[1, 2]", ("pod list",)),
    ('"text"', ("pod list",)),
    ("{", ("pod list",)),
])
def test_a_pods_file_of_the_wrong_shape_is_one_line_and_exit_1(tmp_path: Path, secscan: Path, doc: Any,
                                                                words: tuple[str, ...]) -> None:
    assert_one_error_line(run_pods(tmp_path, secscan, doc), *words)


def test_deep_nesting_in_an_annotation_or_an_unread_field(tmp_path: Path, secscan: Path) -> None:
    doc = pod_list()
    doc["items"][0]["metadata"]["annotations"]["deep"] = Deep(1000)
    doc["items"][2]["metadata"]["annotations"] = {"deep": Deep(1000)}
    doc["items"][2]["spec"]["affinity"] = Deep(1000)  # a field the job never reads
    result = run_pods(tmp_path, secscan, doc)
    assert_clean(result, (0,))
    assert "annotation" in result.output
    # The namespace's other annotations still route the mail; the pod's images are still reported.
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["totals"]["vulnerabilities"]["High"] == 1
    assert summary["namespaces"][0]["owners"] == ["web@example.com"]


def test_the_snapshot_stage_writes_the_same_hostile_pods(tmp_path: Path, secscan: Path) -> None:
    """Stage by stage too: what the snapshot keeps must be written and read back."""
    doc = pod_list()
    doc["items"][0]["metadata"]["labels"] = {"deep": Deep(400), "n": 5, "ok": "yes"}
    pods = tmp_path / "pods.json"
    pods.write_text(to_json(doc))
    args = ["--pods", str(pods), "--secscan-dir", str(secscan), "-o", str(tmp_path / "out")]
    for stage in ("snapshot", "scan", "apply", "report"):
        assert_clean(invoke([stage, *args]), (0,))


@pytest.mark.parametrize("content", [deep_json(100_000), deep_json(2000),
                                     to_json({"status": "scanned", "data": {"Layer": Deep(1000)}}),
                                     to_json({"status": "scanned", "data": {"Layer": {
                                         **QUAY_SCANNED["data"]["Layer"],
                                         "Features": [{**QUAY_SCANNED["data"]["Layer"]["Features"][0],
                                                       "Vulnerabilities": [{
                                                           **QUAY_SCANNED["data"]["Layer"]["Features"][0][
                                                               "Vulnerabilities"][0],
                                                           "Metadata": {"deep": Deep(600)}}]}]}}})])
def test_a_deeply_nested_secscan_file_is_a_scan_error_of_its_manifest(tmp_path: Path, secscan: Path,
                                                                        content: str) -> None:
    (secscan / (DIGEST.replace(":", ".") + ".json")).write_text(content)
    result = run_pods(tmp_path, secscan, pod_list())
    assert_clean(result, (0, 2))
    assert (tmp_path / "out" / "summary.json").exists()


# --- the previous run's summary.json --------------------------------------------------------------


DAMAGED_SUMMARIES = {
    "not-json": "{not json",
    "truncated": '{"schemaVersion": 1, "takenAt": "2024-',
    "deep": deep_json(100_000),
    "deep-inside": '{"schemaVersion": 1, "takenAt": ' + deep_json(5000) + "}",
    "a-list": "[1, 2, 3]",
    "version-only": '{"schemaVersion": 1}',
    "taken-at-object": json.dumps({"schemaVersion": 1, "takenAt": {"a": 1}, "findings": {"keys": [], "workloads": []}}),
    "findings-wrong": json.dumps({"schemaVersion": 1, "takenAt": "2024-01-01T00:00:00Z",
                                  "findings": {"keys": [[1, 2]], "workloads": [["ns", "k", "n", ["x"]]]},
                                  "totals": {"vulnerabilities": {}}}),
    "history-wrong": json.dumps({"schemaVersion": 1, "takenAt": "2024-01-01T00:00:00Z",
                                 "findings": {"keys": [], "workloads": []},
                                 "history": [{"takenAt": "x", "vulnerabilities": {"High": "many"}}],
                                 "images": 5}),
    "images-wrong": json.dumps({"schemaVersion": 1, "takenAt": "2024-01-01T00:00:00Z",
                                "findings": {"keys": [], "workloads": []}, "history": [],
                                "totals": {"vulnerabilities": {"High": 1}},
                                "images": [{"namespaces": 5, "vulnerabilities": []}]}),
    "binary": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("name", list(DAMAGED_SUMMARIES))
def test_a_damaged_previous_summary_is_skipped_with_a_warning(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    content = DAMAGED_SUMMARIES[name]
    (out / "summary.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    for _ in range(2):  # and the run after it is not stuck either
        result = invoke(["run", *DEMO, "-o", str(out)])
        assert_clean(result, (0,))
    first = invoke(["run", *DEMO, "-o", str(tmp_path / "again")])
    assert_clean(first, (0,))
    (tmp_path / "again" / "summary.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    result = invoke(["run", *DEMO, "-o", str(tmp_path / "again")])
    assert_clean(result, (0,))
    if name not in ("version-only",):
        assert "warning: previous run" in result.output and "comparison skipped" in result.output
        assert "comparison skipped" in (tmp_path / "again" / "report.html").read_text()


def test_a_damaged_previous_summary_given_by_flag_is_skipped_too(tmp_path: Path) -> None:
    previous = tmp_path / "previous.json"
    previous.write_text(deep_json(100_000))
    result = invoke(["run", *DEMO, "-o", str(tmp_path / "out"), "--previous", str(previous)])
    assert_clean(result, (0,))
    assert "comparison skipped" in result.output


# --- stage files of the right version and the wrong shape ----------------------------------------


@pytest.fixture(scope="module")
def stage_files(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stages")
    for stage in ("snapshot", "scan", "apply"):
        assert invoke([stage, *DEMO, "-o", str(out)]).exit_code == 0
    return out


def _mutations(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every field of a stage file (the first item of each list), each given a wrong type."""
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list) and doc:
        items = [(0, doc[0])]
    else:
        return
    for key, value in items:
        if path == () and key == "version":
            continue
        wrong = [{"x": 1}] if isinstance(value, (str, int, float, bool)) or value is None else ["x", 5]
        for bad in wrong:
            yield (*path, key), bad
        yield from _mutations(value, (*path, key))


@pytest.mark.parametrize("name, command", [("snapshot.json", "report"), ("scan.json", "report"),
                                           ("apply.json", "report")])
def test_a_stage_file_of_the_wrong_shape_is_one_line_and_exit_1(stage_files: Path, tmp_path: Path, name: str,
                                                                 command: str) -> None:
    original = json.loads((stage_files / name).read_text())
    cases = list(_mutations(original))
    assert len(cases) > 10
    failures = []
    for path, bad in cases + [((), "deep")]:
        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(stage_files, out)
        if path == ():
            (out / name).write_text('{"version": 1, "x": ' + deep_json(5000) + "}")
        else:
            doc = copy.deepcopy(original)
            node = doc
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = bad
            (out / name).write_text(json.dumps(doc))
        result = invoke([command, *DEMO, "-o", str(out)])
        exc = result.exception
        if exc is not None and not isinstance(exc, SystemExit):
            failures.append(f"{path}={bad!r}: {type(exc).__name__}: {exc}")
        elif result.exit_code not in (0, 1) or (result.exit_code == 1 and name not in result.output):
            failures.append(f"{path}={bad!r}: exit {result.exit_code}: {result.output[-300:]}")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} of {len(cases)})"


@pytest.mark.parametrize("content", ['{"version": 1}', '{"version": 1, "pods": 5}', deep_json(100_000)])
def test_a_stage_file_without_its_fields_is_one_line(tmp_path: Path, content: str) -> None:
    (tmp_path / "snapshot.json").write_text(content)
    assert_one_error_line(invoke(["scan", *DEMO, "-o", str(tmp_path)]), "snapshot.json")


# --- flags and configuration: exit 1, never click's 2 --------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["run", "--no-such-flag"], ("--no-such-flag",)),
    (["run", "--page-size", "many"], ("page-size",)),
    (["run", "--log-format", "xml"], ("log-format",)),
    (["run", "--qps"], ("--qps",)),
    (["no-such-command"], ("no-such-command",)),
    (["run", "--config", "/nonexistent/config.yaml"], ("config",)),
])
def test_bad_flags_exit_1(tmp_path: Path, args: list[str], words: tuple[str, ...]) -> None:
    result = invoke([*args, "-o", str(tmp_path)] if args[0] == "run" else args)
    assert_clean(result, (1,))
    for word in words:
        assert word in result.output


def test_help_and_version_still_exit_0() -> None:
    assert_clean(invoke(["--help"]), (0,))
    assert_clean(invoke(["run", "--help"]), (0,))
    assert_clean(invoke(["--version"]), (0,))


@pytest.mark.parametrize("content, words", [
    ("page_size: many\n", ("page",)),
    ("page_size: [1, 2]\n", ("page_size",)),
    ("cluster_name: {a: 1}\n", ("cluster_name",)),
    ("cluster_name: [a, b]\n", ("cluster_name",)),
    ("namespace: {a: 1}\n", ("namespace",)),
    ("namespace: [[a]]\n", ("namespace",)),
    ("check: maybe\n", ("check",)),
    ("qps: fast\n", ("qps",)),
    ("log_format: xml\n", ("log",)),
    ("selector: [1]\n", ("selector",)),
    ("smtp_password: hunter2\n", ("secret",)),
    ("no_such_setting: 1\n", ("unknown setting",)),
    ("[1, 2]\n", ("mapping",)),
    ("a: [\n", ("YAML",)),
    ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", ("config",)),
    (b"\xff\xfe garbage", ("config",)),
])
def test_bad_config_files_exit_1(tmp_path: Path, content: str | bytes, words: tuple[str, ...]) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = invoke(["run", *DEMO, "--config", str(config), "-o", str(tmp_path / "out")])
    assert_clean(result, (1,))
    for word in words:
        assert word in result.output
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("cluster_name: *i")
    config = tmp_path / "config.yaml"
    config.write_text("\n".join(lines) + "\n")
    assert config.stat().st_size < 1500
    started = time.monotonic()
    result = invoke(["run", *DEMO, "--config", str(config), "-o", str(tmp_path / "out")])
    assert time.monotonic() - started < 5
    assert_clean(result, (1,))
    assert str(config) in result.output and "alias" in result.output


def test_yaml_anchors_and_merge_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("base: &base {cluster_name: x}\n<<: *base\n")
    result = invoke(["run", *DEMO, "--config", str(config), "-o", str(tmp_path / "out")])
    assert_clean(result, (1,))
    assert "alias" in result.output or "anchor" in result.output


def test_an_oversized_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("# " + "x" * (2 << 20) + "\ncluster_name: big\n")
    result = invoke(["run", *DEMO, "--config", str(config), "-o", str(tmp_path / "out")])
    assert_clean(result, (1,))
    assert "too large" in result.output


def test_a_valid_config_file_still_works(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("cluster_name: from-file\nnamespace: [payments, checkout]\npage_size: 100\nqps: 20\n"
                      "check: false\nselector:\n")
    result = invoke(["run", *DEMO, "--config", str(config), "-o", str(tmp_path / "out")])
    assert_clean(result, (0,))
    assert "from-file" in (tmp_path / "out" / "summary.json").read_text()


@pytest.mark.parametrize("selector", [
    "app=", "app", "!app", "app==web", "app!=web", "app in (web,db)", "app notin (web)", "app in (web, db )",
    "a=b,c!=d", "example.com/app=web", " app = web ", "tier in (),", "app=web,", "=web", "app=we b",
    "app in web", "app in (web", "app=web)", "-app=web", "app=-web", "a" * 64 + "=x", "app=" + "x" * 64,
    "Bad_Prefix/app=x", "example.com/=x", "app>1", "app<x", "!app=web", "app in (a b)", "app in ()",
])
def test_the_selector_is_checked_as_the_api_server_would(tmp_path: Path, selector: str) -> None:
    valid = selector in ("app=", "app", "!app", "app==web", "app!=web", "app in (web,db)", "app notin (web)",
                         "app in (web, db )", "a=b,c!=d", "example.com/app=web", " app = web ", "app>1", "app in ()")
    result = invoke(["run", *DEMO, "--selector", selector, "-o", str(tmp_path / "out")])
    if valid:
        assert_clean(result, (0,))
    else:
        assert_one_error_line(result, "selector")


def test_the_selector_still_selects(tmp_path: Path) -> None:
    from job.labels import matches_selector as _matches_selector

    labels = {"app": "web", "tier": "front", "n": "3"}
    assert _matches_selector(labels, "app=web,tier in (front, back)")
    assert not _matches_selector(labels, "app=web,tier notin (front)")
    assert _matches_selector(labels, "!missing,app,app!=db,n>2,n<4")
    assert not _matches_selector(labels, "n>3")
    assert not _matches_selector(labels, "missing in (x)")
    assert _matches_selector(labels, "missing notin (x)")
    assert _matches_selector(labels, "")
    assert not _matches_selector(labels, "app in ()") and _matches_selector(labels, "app notin ()")


@pytest.mark.parametrize("flag", ["--smtp-password-file", "--quay-token-file", "--clair-psk-file"])
def test_a_missing_secret_file_is_found_at_start(tmp_path: Path, flag: str) -> None:
    result = invoke(["snapshot", *DEMO, flag, str(tmp_path / "nope"), "-o", str(tmp_path / "out")])
    assert_one_error_line(result, str(tmp_path / "nope"))
    assert not (tmp_path / "out" / "snapshot.json").exists()  # nothing was done


@pytest.mark.parametrize("kind", ["folder", "fifo", "unreadable", "huge"])
def test_a_secret_file_that_is_not_a_small_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "secret"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "unreadable":
        path.write_text("pw")
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("running as root: every file is readable")
    else:
        path.write_bytes(b"x" * (2 << 20))
    started = time.monotonic()
    result = invoke(["run", *DEMO, "--smtp-host", "localhost", "--smtp-password-file", str(path),
                     "-o", str(tmp_path / "out")])
    assert time.monotonic() - started < 10
    assert_one_error_line(result, str(path))


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_config_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    started = time.monotonic()
    result = invoke(["run", *DEMO, "--config", str(path), "-o", str(tmp_path / "out")])
    assert time.monotonic() - started < 10
    assert_one_error_line(result, str(path))


# --- outputs never follow a link planted at a temporary name -------------------------------------


def test_outputs_never_follow_a_planted_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "mail").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    names = ["snapshot.json", "scan.json", "apply.json", "imagemanifestvulns.yaml", "report.html",
             "report.xlsx", "summary.json", "summary.previous.json"]
    for name in names:
        for tmp in (f"{name}.tmp", f".{name}.{os.getpid()}.tmp"):
            (out / tmp).symlink_to(victim)
    (out / "mail" / "global@example.com.eml").symlink_to(victim)
    args = [*DEMO, "-o", str(out)]
    for stage in ("snapshot", "scan", "apply", "report"):
        assert_clean(invoke([stage, *args]), (0,))
    assert_clean(invoke(["run", *args, "--check", "--mail-to", "global@example.com"]), (0,))
    assert_clean(invoke(["run", *args]), (0,))
    assert victim.read_text() == "precious"
    for name in names[:-1]:
        assert (out / name).is_file() and not (out / name).is_symlink()
    assert (out / "mail" / "global@example.com.eml").is_file()
    assert not [p for p in out.iterdir() if ".tmp" in p.name and not p.is_symlink()]  # no temp file left


def test_shard_files_never_follow_a_planted_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = out / "shard-0"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for name in ("snapshot.json", "scan.json", "apply.json", "run.json"):
        (folder / f"{name}.tmp").symlink_to(victim)
    result = invoke(["run", *DEMO, "-o", str(out), "--shard", "0/2"])
    assert_clean(result, (0,))
    assert victim.read_text() == "precious"
    assert (folder / "run.json").is_file()


def test_written_files_keep_the_usual_permissions(tmp_path: Path) -> None:
    """Temporary files are created 0600; the outputs they become are as any new file (umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    assert_clean(invoke(["run", *DEMO, "-o", str(tmp_path)]), (0,))
    for name in ("report.html", "report.xlsx", "summary.json", "imagemanifestvulns.yaml"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


# --- the live path: list results as a (misbehaving) API server could answer them ---------------


class _Answers:
    """Stands in for Kube.request: each GET answered from a table of paths."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def __call__(self, method: str, path: str, **_kw: Any) -> Any:
        return self.answers[path]


def _kube(answers: dict[str, Any]):
    from job.kube import Kube

    kube = object.__new__(Kube)
    kube.request = _Answers(answers)
    return kube


def test_namespace_lists_of_the_wrong_shape_are_passed_over() -> None:
    kube = _kube({"/api/v1/namespaces": {"items": [
        {"metadata": {"name": "ok", "labels": {"a": "b", "n": 5}, "annotations": ["x"]}},
        {"metadata": "text"}, "text", {"metadata": {"name": 7}}, {}]}})
    namespaces = kube.list_namespaces()
    assert [(n.name, n.labels, n.annotations) for n in namespaces] == [("ok", {"a": "b"}, {})]


@pytest.mark.parametrize("answer", [[1, 2], "text", {"items": 5}, {"items": [], "metadata": "x"}])
def test_a_list_answer_that_is_no_list_is_a_kube_error(answer: Any) -> None:
    from job.errors import KubeError

    with pytest.raises(KubeError, match="not a list"):
        list(_kube({"/api/v1/pods": answer}).list_pages("/api/v1/pods"))


def test_owner_metadata_of_the_wrong_shape_is_a_problem_not_a_crash() -> None:
    from job.model import Problem
    from job.pods import owner_index

    kube = _kube({"/apis/apps/v1/replicasets": {"items": [
        {"metadata": {"name": "web-1", "namespace": "shop", "ownerReferences": [
            {"kind": "Deployment", "name": "web", "controller": True}]}},
        {"metadata": "a string"}, "text", {"metadata": {"name": 5, "namespace": "shop"}},
        {"metadata": {"name": "x", "namespace": "shop", "ownerReferences": {"kind": "Deployment"}}}]}})
    items = kube.list_metadata("ReplicaSet")
    problems: list[Problem] = []
    assert owner_index(items, problems) == {("shop", "ReplicaSet", "web-1"): ("Deployment", "web")}
    assert len(problems) == 3 and all(p.where == "owner list" for p in problems)
    assert owner_index(items) == {("shop", "ReplicaSet", "web-1"): ("Deployment", "web")}


def test_service_accounts_of_the_wrong_shape_are_passed_over() -> None:
    from job.model import Container, ContainerKind, ImageRef, Pod, Snapshot, Workload
    from job.scan import _service_account_secrets

    ref = ImageRef("quay.io", "shop/web", DIGEST)
    pod = Pod("shop", "web-1", "u", Workload("Pod", "web-1"), "web", (),
              (Container("app", ContainerKind.CONTAINER, IMAGE, "", ref),))
    snap = Snapshot(taken_at="t", cluster="c", pods=[pod], namespaces={}, problems=[])

    class Client:
        def list_service_accounts(self, *, namespaces: tuple[str, ...] = ()) -> list[Any]:
            return ["text", {"metadata": "text"}, {"metadata": {"namespace": ["shop"], "name": "web"}},
                    {"metadata": {"namespace": "shop", "name": "web"},
                     "imagePullSecrets": [{"name": "pull"}, "x", {"name": 5}, {}]},
                    {"metadata": {"namespace": "shop", "name": "other"}, "imagePullSecrets": 5}]

    assert _service_account_secrets(Client(), snap) == {("shop", "web"): ("pull",)}
