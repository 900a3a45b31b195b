"""Pod parsing: every imageID form runtimes write, every container kind, workloads, bad input."""
from __future__ import annotations

import json

import pytest

from job.image_refs import ImageParseError, parse_reference, resolve_image
from job.labels import matches_selector as _matches_selector
from job.model import ContainerKind, ImageRef, Problem
from job.pods import parse_pod, top_owner
from job.settings import Settings
from job.snapshot import load_pod_list, scope_of

D = "sha256:" + "ab" * 32
D2 = "sha256:" + "cd" * 32


@pytest.mark.parametrize("image_id, image, expected", [
    (f"docker-pullable://quay.io/ns/repo@{D}", "quay.io/ns/repo:1", ImageRef("quay.io", "ns/repo", D)),
    (f"docker-pullable://nginx@{D}", "nginx", ImageRef("docker.io", "library/nginx", D)),
    (f"quay.io/ns/repo@{D}", "", ImageRef("quay.io", "ns/repo", D)),
    (f"registry.local:5000/team/app@{D}", "", ImageRef("registry.local:5000", "team/app", D)),
    (f"docker.io/library/redis@{D}", "", ImageRef("docker.io", "library/redis", D)),
    (f"index.docker.io/bitnami/kafka@{D}", "", ImageRef("docker.io", "bitnami/kafka", D)),
    (f"team/app@{D}", "", ImageRef("docker.io", "team/app", D)),
    (f"localhost/app@{D}", "", ImageRef("localhost", "app", D)),
    (f"quay.io/ns/repo:v1@{D}", "", ImageRef("quay.io", "ns/repo", D)),
    (f"quay.io/a/b/c@{D}", "", ImageRef("quay.io", "a/b/c", D)),
    # A bare image ID names the config: the manifest comes only from an image pinned by digest.
    (D2, f"quay.io/ns/repo@{D}", ImageRef("quay.io", "ns/repo", D)),
    ("cd" * 32, f"quay.io/ns/repo@{D}", ImageRef("quay.io", "ns/repo", D)),
    (f"docker://{D2}", f"nginx@{D}", ImageRef("docker.io", "library/nginx", D)),
])
def test_resolve_image_every_runtime_form(image_id: str, image: str, expected: ImageRef) -> None:
    assert resolve_image(image_id, image) == expected


@pytest.mark.parametrize("image_id, image", [
    (D2, "quay.io/ns/repo:1"),  # config ID, image not pinned: must not be guessed
    ("cd" * 32, "nginx"),
    ("quay.io/ns/repo@sha256:short", ""),
    ("quay.io/ns/REPO@" + D, ""),
    ("not an image", ""),
    ("quay.io/ns/repo:1", ""),
])
def test_resolve_image_refuses_to_guess(image_id: str, image: str) -> None:
    with pytest.raises(ImageParseError):
        resolve_image(image_id, image)


def test_parse_reference_drops_tag_keeps_port() -> None:
    assert parse_reference("registry.local:5000/team/app:2.1") == ("registry.local:5000", "team/app", "")
    assert parse_reference("nginx:1.25") == ("docker.io", "library/nginx", "")


def _pod(**over):
    pod = {
        "metadata": {"name": "web-7d4b9c-x2", "namespace": "shop", "uid": "u1",
                     "labels": {"pod-template-hash": "7d4b9c"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9c", "controller": True}]},
        "spec": {"containers": [{"name": "app", "image": "quay.io/shop/web:1"}],
                 "initContainers": [{"name": "init", "image": "quay.io/shop/init:1"}],
                 "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
                 "imagePullSecrets": [{"name": "quay-pull"}], "serviceAccountName": "web"},
        "status": {"phase": "Running",
                   "containerStatuses": [{"name": "app", "imageID": f"quay.io/shop/web@{D}",
                                          "containerID": "cri-o://1", "image": "quay.io/shop/web:1"}],
                   "initContainerStatuses": [{"name": "init", "imageID": f"quay.io/shop/init@{D2}",
                                              "containerID": "cri-o://2"}],
                   "ephemeralContainerStatuses": [{"name": "debug", "imageID": "sha256:" + "ef" * 32,
                                                   "containerID": "cri-o://3", "image": "busybox"}]},
    }
    pod.update(over)
    return pod


def test_parse_pod_reads_every_container_kind_and_reports_unresolved() -> None:
    problems: list[Problem] = []
    pod = parse_pod(_pod(), {}, problems)
    assert pod is not None
    kinds = {c.name: (c.kind, c.ref) for c in pod.containers}
    assert kinds["app"] == (ContainerKind.CONTAINER, ImageRef("quay.io", "shop/web", D))
    assert kinds["init"] == (ContainerKind.INIT, ImageRef("quay.io", "shop/init", D2))
    assert kinds["debug"] == (ContainerKind.EPHEMERAL, None)
    assert [p.where for p in problems] == ["shop/web-7d4b9c-x2 container debug"]
    assert pod.workload.kind == "Deployment" and pod.workload.name == "web"
    assert pod.pull_secrets == ("quay-pull",) and pod.service_account == "web"
    assert [c.container_id for c in pod.containers] == ["cri-o://1", "cri-o://2", "cri-o://3"]


def test_parse_pod_skips_pods_not_running_and_reports_malformed_ones() -> None:
    problems: list[Problem] = []
    assert parse_pod(_pod(status={"phase": "Pending"}), {}, problems) is None
    assert problems == []
    assert parse_pod({"metadata": {"namespace": "x"}}, {}, problems) is None
    assert parse_pod({"metadata": {"name": "p", "namespace": "x"}, "status": "garbage"}, {}, problems) is None
    assert len(problems) == 2
    bad_status = _pod()
    bad_status["status"]["containerStatuses"].append("not a dict")
    pod = parse_pod(bad_status, {}, problems)
    assert pod is not None and len(pod.containers) == 3
    assert any(p.where == "shop/web-7d4b9c-x2" and "malformed" in p.message for p in problems)


def test_top_owner_uses_owner_index_then_conventions() -> None:
    meta = {"name": "p", "namespace": "ns", "ownerReferences": [{"kind": "Job", "name": "nightly-29021780",
                                                                 "controller": True}]}
    assert str(top_owner(meta, {})) == "CronJob/nightly"
    assert str(top_owner(meta, {("ns", "Job", "nightly-29021780"): ("CronJob", "real-name")})) == "CronJob/real-name"
    manual_job = {"name": "p", "namespace": "ns", "ownerReferences": [{"kind": "Job", "name": "migrate",
                                                                       "controller": True}]}
    assert str(top_owner(manual_job, {})) == "Job/migrate"
    assert str(top_owner({"name": "lonely", "namespace": "ns"}, {})) == "Pod/lonely"
    sts = {"name": "db-0", "namespace": "ns", "ownerReferences": [{"kind": "StatefulSet", "name": "db",
                                                                   "controller": True}]}
    assert str(top_owner(sts, {})) == "StatefulSet/db"


def test_scope_of_globs() -> None:
    settings = Settings(include_namespace=("team-*",), exclude_namespace=("team-sandbox",))
    assert scope_of(settings, ["team-a", "team-sandbox", "kube-system"]) == ("team-a",)
    assert scope_of(Settings(), ["a"]) is None
    assert scope_of(Settings(namespace=("a", "b")), ["a", "c"]) == ("a", "b")


def test_selector_matching() -> None:
    labels = {"app": "web", "tier": "front"}
    assert _matches_selector(labels, "app=web,tier in (front, back)")
    assert not _matches_selector(labels, "app!=web")
    assert _matches_selector(labels, "!debug,app")
    assert not _matches_selector(labels, "tier notin (front)")


def test_load_pod_list_offline(tmp_path) -> None:
    doc = {"kind": "List", "items": [
        _pod(),
        {"kind": "ReplicaSet", "metadata": {"name": "web-7d4b9c", "namespace": "shop",
                                            "ownerReferences": [{"kind": "Deployment", "name": "storefront",
                                                                 "controller": True}]}},
        {"kind": "Namespace", "metadata": {"name": "shop", "annotations": {"imvjob/notify": "a@example.com"}}},
    ]}
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(doc))
    snap = load_pod_list(path, Settings())
    assert [p.key for p in snap.pods] == ["shop/web-7d4b9c-x2"]
    assert str(snap.pods[0].workload) == "Deployment/storefront"  # from the ReplicaSet in the file
    assert snap.namespaces["shop"].annotations == {"imvjob/notify": "a@example.com"}
    assert snap.refs() == sorted([ImageRef("quay.io", "shop/web", D), ImageRef("quay.io", "shop/init", D2)])


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    ('{"kind": "Deployment"}', "is not a List or PodList"),
])
def test_load_pod_list_bad_files(tmp_path, content: str, message: str) -> None:
    from job.errors import ConfigError

    path = tmp_path / "pods.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_pod_list(path, Settings())
    with pytest.raises(ConfigError, match="cannot read"):
        load_pod_list(tmp_path / "missing.json", Settings())
