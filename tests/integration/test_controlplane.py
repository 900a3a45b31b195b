"""The test control plane is a real API server: what the job relies on behaves as in a cluster."""

from __future__ import annotations

import kubernetes
import pytest

from controlplane import IMV_API, ControlPlane

pytestmark = pytest.mark.controlplane

DIGEST = "sha256:" + "ab" * 32


def imv(name: str, **extra) -> dict:
    return {
        "apiVersion": "secscan.quay.redhat.com/v1alpha1",
        "kind": "ImageManifestVuln",
        "metadata": {"name": name},
        "spec": {"image": "quay.io/team/app", "manifest": DIGEST},
        **extra,
    }


def test_pod_status_written_by_the_test_reads_back(control_plane: ControlPlane, namespace):
    control_plane.create_pod(
        namespace, "web",
        containers=[{"name": "app", "image": "quay.io/team/app:1.0"},
                    {"name": "proxy", "image": "docker.io/library/nginx:1.27"}],
        init_containers=[{"name": "setup", "image": "quay.io/team/setup:2"}],
        labels={"app": "web"},
    )
    pod = control_plane.call("GET", f"/api/v1/namespaces/{namespace}/pods/web")
    assert pod["status"]["phase"] == "Pending"  # no kubelet runs

    control_plane.set_pod_running(namespace, "web", {
        "app": {"imageID": f"quay.io/team/app@{DIGEST}", "containerID": "cri-o://aaa111"},
        "proxy": {"imageID": "docker.io/library/nginx@sha256:" + "cd" * 32,
                  "containerID": "containerd://bbb222", "ready": False},
        "setup": {"imageID": "quay.io/team/setup@sha256:" + "ef" * 32,
                  "containerID": "cri-o://ccc333"},
    })

    pod = control_plane.call("GET", f"/api/v1/namespaces/{namespace}/pods/web")
    assert pod["status"]["phase"] == "Running"
    by_name = {s["name"]: s for s in pod["status"]["containerStatuses"]}
    assert by_name["app"]["imageID"] == f"quay.io/team/app@{DIGEST}"
    assert by_name["app"]["containerID"] == "cri-o://aaa111"
    assert by_name["app"]["image"] == "quay.io/team/app:1.0"
    assert by_name["app"]["ready"] is True
    assert by_name["proxy"]["containerID"] == "containerd://bbb222"
    assert by_name["proxy"]["ready"] is False
    [init] = pod["status"]["initContainerStatuses"]
    assert (init["name"], init["containerID"]) == ("setup", "cri-o://ccc333")
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "False"  # proxy is not ready


def test_ephemeral_container_status(control_plane: ControlPlane, namespace):
    control_plane.create_pod(namespace, "db", containers=[{"name": "db", "image": "postgres:17"}])
    control_plane.add_ephemeral_container(namespace, "db", name="debugger", image="busybox:1.37")
    control_plane.set_pod_running(namespace, "db", {
        "db": {"imageID": "docker.io/library/postgres@sha256:" + "01" * 32,
               "containerID": "cri-o://db1"},
        "debugger": {"imageID": "docker.io/library/busybox@sha256:" + "02" * 32,
                     "containerID": "cri-o://dbg1", "ready": False},
    })

    pod = control_plane.call("GET", f"/api/v1/namespaces/{namespace}/pods/db")
    [debugger] = pod["status"]["ephemeralContainerStatuses"]
    assert debugger["containerID"] == "cri-o://dbg1"
    assert debugger["image"] == "busybox:1.37"
    with pytest.raises(ValueError, match="no container named"):
        control_plane.set_pod_running(namespace, "db", {"sidecar": {"imageID": "x"}})


def test_pod_list_pages_with_limit_and_continue(control_plane: ControlPlane, namespace):
    names = {f"pod-{i}" for i in range(7)}
    for name in names:
        control_plane.create_pod(namespace, name, containers=[{"name": "c", "image": "busybox"}])

    pages, token = [], None
    while True:
        params = {"limit": 3, **({"continue": token} if token else {})}
        answer = control_plane.call("GET", f"/api/v1/namespaces/{namespace}/pods", params=params)
        pages.append([p["metadata"]["name"] for p in answer["items"]])
        token = answer["metadata"].get("continue")
        if not token:
            break

    assert [len(page) for page in pages] == [3, 3, 1]
    seen = [name for page in pages for name in page]
    assert sorted(seen) == sorted(names)  # each pod exactly once


def test_imagemanifestvuln_status_only_through_its_subresource(
    control_plane: ControlPlane, namespace
):
    objects = f"{IMV_API}/namespaces/{namespace}/imagemanifestvulns"
    name = DIGEST.replace(":", ".")
    created = control_plane.call(
        "POST", objects, json=imv(name, status={"highestSeverity": "High", "highCount": 1}))
    assert "status" not in created  # ignored on create

    status = {"highestSeverity": "Critical", "criticalCount": 2, "fixableCount": 1,
              "lastUpdate": "2026-11-29 09:00:00.123456789 +0000 UTC",
              "affectedPods": {f"{namespace}/web": ["cri-o://aaa111"]}}
    control_plane.call("PUT", f"{objects}/{name}/status", json={**created, "status": status})
    assert control_plane.call("GET", f"{objects}/{name}")["status"] == status

    # A status sent with the main object is ignored; the spec change is kept.
    current = control_plane.call("GET", f"{objects}/{name}")
    current["spec"]["image"] = "quay.io/team/other"
    current["status"] = {"highestSeverity": "Low", "lowCount": 9}
    control_plane.call("PUT", f"{objects}/{name}", json=current)
    stored = control_plane.call("GET", f"{objects}/{name}")
    assert stored["status"] == status
    assert stored["spec"]["image"] == "quay.io/team/other"


def test_role_allowing_get_pods_forbids_list(control_plane: ControlPlane, namespace):
    control_plane.create_pod(namespace, "web", containers=[{"name": "c", "image": "busybox"}])
    control_plane.apply_yaml(f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: reader}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: get-pods}}
rules:
  - {{apiGroups: [""], resources: [pods], verbs: [get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader-get-pods}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: get-pods}}
subjects:
  - {{kind: ServiceAccount, name: reader, namespace: {namespace}}}
""", namespace=namespace)
    token = control_plane.service_account_token(namespace, "reader")

    pods = f"/api/v1/namespaces/{namespace}/pods"
    assert control_plane.request("GET", f"{pods}/web", token=token).status_code == 200
    denied = control_plane.request("GET", pods, token=token)
    assert denied.status_code == 403
    assert f"system:serviceaccount:{namespace}:reader" in denied.json()["message"]
    assert control_plane.request("GET", "/api/v1/namespaces/default/pods/web",
                                 token=token).status_code == 403


def test_server_side_dry_run_creates_nothing(control_plane: ControlPlane, namespace):
    pods = f"/api/v1/namespaces/{namespace}/pods"
    answer = control_plane.request(
        "POST", pods, params={"dryRun": "All"},
        json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ghost"},
              "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert answer.status_code == 201
    assert answer.json()["metadata"]["name"] == "ghost"  # validated and answered as if stored

    [config_map] = control_plane.apply_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ghost}\ndata: {a: b}\n",
        namespace=namespace, dry_run=True)
    assert config_map["data"] == {"a": "b"}

    assert control_plane.request("GET", f"{pods}/ghost").status_code == 404
    assert control_plane.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps/ghost").status_code == 404
    assert control_plane.call("GET", pods)["items"] == []


def test_apply_yaml_creates_then_replaces(control_plane: ControlPlane, namespace):
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{level: {}}}\n"
    [first] = control_plane.apply_yaml(manifest.format("low"), namespace=namespace)
    [second] = control_plane.apply_yaml(manifest.format("high"), namespace=namespace)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]  # replaced, not recreated
    stored = control_plane.call("GET", f"/api/v1/namespaces/{namespace}/configmaps/settings")
    assert stored["data"] == {"level": "high"}


def test_admin_kubeconfig_works_with_the_kubernetes_client(
    control_plane: ControlPlane, namespace
):
    api = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(control_plane.kubeconfig)))
    names = [ns.metadata.name for ns in api.list_namespace().items]
    assert namespace in names


def test_audit_events_are_the_whole_lines_written_so_far(tmp_path):
    # The API server appends to its audit log while a test reads it: the line being written is not an event yet.
    cp = object.__new__(ControlPlane)
    cp.audit_log = tmp_path / "audit.log"
    cp.audit_log.write_text('{"kind":"Event","verb":"get"}\n{"kind":"Event","apiVersion":"aud')
    assert cp.audit_events() == [{"kind": "Event", "verb": "get"}]
