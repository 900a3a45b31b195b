"""Hostile and mistaken input on the live path, against the real kube-apiserver.

The API server types pods, namespaces and owners, so wrong JSON types cannot come from it (those
are tried on the parsing functions in tests/unit/test_faults_input.py); what it does let through
is tried here: strings that are no image, owners that do not exist, label selectors it refuses.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from job.cli import cli
from job.errors import ConfigError
from job.labels import parse_selector

pytestmark = pytest.mark.fault

DIGEST = "sha256:" + hashlib.sha256(b"live-hostile").hexdigest()
IMAGE = f"quay.io/shop/web@{DIGEST}"
SCANNED = {"status": "scanned", "data": {"Layer": {
    "Name": "x", "ParentName": "", "NamespaceName": "debian:12", "IndexedByVersion": 4,
    "Features": [{"Name": "bash", "Version": "5.2", "VersionFormat": "dpkg", "NamespaceName": "debian:12",
                  "AddedBy": "sha256:0", "Vulnerabilities": [
                      {"Name": "CVE-2024-1", "Severity": "High", "NamespaceName": "debian:12", "Link": "",
                       "FixedBy": "5.3", "Description": "d", "Metadata": {}}]}]}}}

#: Label selectors, valid or not; the API server says which.
SELECTORS = [
    "app=web", "app==web", "app!=web", "app", "!app", "app=", "app in (web,db)", "app notin (web)",
    "app in (web, db )", "a=b,c!=d", "example.com/app=web", " app = web ", "app>1", "app<2", "app in (a,)",
    "app in ()", "app=web,", ",app=web", "=web", "app=we b", "app in web", "app in (web", "app=web)",
    "-app=web", "app=-web", "a" * 64 + "=x", "app=" + "x" * 64, "Bad_Prefix/app=x", "example.com/=x",
    "app<x", "!app=web", "app in (a b)", "a/b/c=d", "app=a/b", "app in (x", "app notin ()", "in=x",
]


def run(cp, tmp_path: Path, *args: str):
    secscan = tmp_path / "secscan"
    secscan.mkdir(exist_ok=True)
    (secscan / (DIGEST.replace(":", ".") + ".json")).write_text(json.dumps(SCANNED))
    return CliRunner().invoke(cli, ["run", "--kubeconfig", str(cp.kubeconfig), "--secscan-dir", str(secscan),
                                    "--global-pull-secret", "", "-o", str(tmp_path / "out"), *args])


@pytest.mark.parametrize("selector", SELECTORS)
def test_the_selector_is_refused_exactly_when_the_api_server_refuses_it(control_plane, namespace: str,
                                                                          selector: str) -> None:
    answer = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                                   params={"labelSelector": selector})
    assert answer.status_code in (200, 400), answer.text
    try:
        parse_selector(selector)
        ours = 200
    except ConfigError:
        ours = 400
    assert ours == answer.status_code, answer.json().get("message")


def test_a_malformed_selector_online_is_one_line_and_exit_1_before_any_change(control_plane, namespace: str,
                                                                              tmp_path: Path) -> None:
    control_plane.create_pod(namespace, "web", containers=[{"name": "app", "image": "quay.io/shop/web:1"}],
                             labels={"app": "web"})
    control_plane.set_pod_running(namespace, "web", {"app": {"imageID": IMAGE, "containerID": "cri-o://1"}})
    first = run(control_plane, tmp_path, "--namespace", namespace, "--lease-namespace", namespace)
    assert first.exit_code == 0, first.output
    imvs = control_plane.call("GET", f"/apis/secscan.quay.redhat.com/v1alpha1/namespaces/{namespace}/"
                                     "imagemanifestvulns")["items"]
    assert len(imvs) == 1
    result = run(control_plane, tmp_path, "--namespace", namespace, "--lease-namespace", namespace,
                 "--selector", "app in (web")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "selector" in errors[0]
    after = control_plane.call("GET", f"/apis/secscan.quay.redhat.com/v1alpha1/namespaces/{namespace}/"
                                      "imagemanifestvulns")["items"]
    assert [i["metadata"]["resourceVersion"] for i in after] == [i["metadata"]["resourceVersion"] for i in imvs]


def test_what_the_api_server_lets_through_is_a_problem_of_its_pod(control_plane, namespace: str,
                                                                   tmp_path: Path) -> None:
    long_name = "rs-" + "x" * 240
    control_plane.create_namespace(f"{namespace}-owners", annotations={"imvjob/notify": "not an address, <x>"})
    control_plane.create_pod(
        namespace, "odd", containers=[{"name": "app", "image": "quay.io/shop/web:1"},
                                      {"name": "side", "image": "quay.io/shop/side:1"}],
        owner_references=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": long_name, "uid": "0" * 8,
                           "controller": True}],
        labels={"pod-template-hash": "x" * 63}, image_pull_secrets=["missing"], service_account="nobody")
    control_plane.set_pod_running(namespace, "odd", {
        "app": {"imageID": IMAGE, "containerID": "cri-o://1"},
        "side": {"imageID": "not an image " + "[" * 5000, "containerID": "{" * 1000}})
    result = run(control_plane, tmp_path, "--namespace", namespace, "--namespace", f"{namespace}-owners",
                 "--lease-namespace", namespace)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"warning: {namespace}/odd container side" in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["totals"]["images"]["scanned"] == 1 and summary["totals"]["unresolvedContainers"] == 1
