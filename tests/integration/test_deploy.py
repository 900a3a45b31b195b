"""cronjob.yaml and the CRD on a real API server: accepted as they are, installed as the docs say,
and the ServiceAccount they bind can run the whole play, and nothing more.

The play runs as `imvjob run` with the ServiceAccount's token (a kubeconfig of its own), the
ConfigMap's config file and the container's environment, against pods in two namespaces whose
images live on simulated Quay registries that each want a different pull secret: the pod's own,
its ServiceAccount's, and the cluster's global one (openshift-config/pull-secret).
"""
from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from controlplane import IMV_API, ControlPlane
from registry_sim import QuayRole, compat_bytes, digest, sim_ca, sims  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
CRONJOB = ROOT / "cronjob.yaml"
CRD = ROOT / "imagemanifestvuln.crd.yaml"
SA = "imvjob"
MANAGED = {"app.kubernetes.io/managed-by": "imvjob"}


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def cronjob_doc() -> dict:
    return next(d for d in documents(CRONJOB) if d["kind"] == "CronJob")


# --- accepted as they are -------------------------------------------------------------------


def _dry_run_strict(cp: ControlPlane, obj: dict, namespace: str):
    """kubectl apply --dry-run=server --validate=strict: create, or replace where it exists."""
    body = copy.deepcopy(obj)
    kind_path = cp.collection_path(body["apiVersion"], body["kind"], namespace=namespace)
    params = {"dryRun": "All", "fieldValidation": "Strict"}
    response = cp.request("POST", kind_path, json=body, params=params)
    if response.status_code == 409:
        item = f"{kind_path}/{body['metadata']['name']}"
        body["metadata"]["resourceVersion"] = cp.call("GET", item)["metadata"]["resourceVersion"]
        response = cp.request("PUT", item, json=body, params=params)
    return response


def test_every_document_passes_a_strict_server_side_dry_run(control_plane: ControlPlane, namespace: str):
    objects = documents(CRONJOB) + documents(CRD)
    assert {o["kind"] for o in objects} >= {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                            "RoleBinding", "ConfigMap", "CronJob", "CustomResourceDefinition"}
    for obj in objects:
        response = _dry_run_strict(control_plane, obj, namespace)
        assert response.ok, f"{obj['kind']} {obj['metadata']['name']}: {response.status_code} {response.text}"
        assert not response.headers.get("Warning"), f"{obj['kind']}: {response.headers['Warning']}"
    # Nothing was created.
    assert control_plane.request("GET", f"/apis/batch/v1/namespaces/{namespace}/cronjobs/imvjob").status_code == 404


def test_the_strict_dry_run_does_catch_a_misspelt_field(control_plane: ControlPlane, namespace: str):
    wrong = cronjob_doc()
    wrong["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinish"] = 60
    response = _dry_run_strict(control_plane, wrong, namespace)
    assert response.status_code == 400, response.text
    assert 'unknown field "spec.jobTemplate.spec.ttlSecondsAfterFinish"' in response.json()["message"]


def _pod_from_the_cronjob(namespace: str) -> dict:
    template = cronjob_doc()["spec"]["jobTemplate"]["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "imvjob-pss", "namespace": namespace},
            "spec": copy.deepcopy(template["spec"])}


def test_the_pod_meets_the_restricted_pod_security_standard(control_plane: ControlPlane):
    ns = f"deploy-pss-{secrets.token_hex(3)}"
    control_plane.create_namespace(ns, labels={"pod-security.kubernetes.io/enforce": "restricted",
                                               "pod-security.kubernetes.io/enforce-version": "latest"})
    path = f"/api/v1/namespaces/{ns}/pods"
    accepted = control_plane.request("POST", path, json=_pod_from_the_cronjob(ns), params={"dryRun": "All"})
    assert accepted.status_code == 201, accepted.text
    # The same pod without its container securityContext is refused: the namespace does enforce.
    careless = _pod_from_the_cronjob(ns)
    del careless["spec"]["containers"][0]["securityContext"]
    refused = control_plane.request("POST", path, json=careless, params={"dryRun": "All"})
    assert refused.status_code == 403 and "violates PodSecurity" in refused.text


# --- installed as the docs say --------------------------------------------------------------


@dataclass
class Install:
    cp: ControlPlane
    prefix: str  # every namespace of this module starts with it
    ns: str  # where cronjob.yaml went
    other: str  # a namespace where nothing of the job's is
    token: str
    kubeconfig: Path

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.ns}:{SA}"

    def as_sa(self, method: str, path: str, **kwargs):
        return self.cp.request(method, path, token=self.token, **kwargs)


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane, tmp_path_factory) -> Install:
    prefix = f"deploy-{secrets.token_hex(3)}"
    ns = f"{prefix}-imvjob"
    control_plane.create_namespace(ns)
    # cronjob.yaml's own recipe for a namespace other than `imvjob`.
    text = re.sub(r"namespace: imvjob$", f"namespace: {ns}", CRONJOB.read_text(encoding="utf-8"), flags=re.M)
    stored = control_plane.apply_yaml(text, namespace=ns)
    assert [o["kind"] for o in stored] == [d["kind"] for d in documents(CRONJOB)]
    token = control_plane.service_account_token(ns, SA)
    kubeconfig = control_plane.write_kubeconfig(tmp_path_factory.mktemp("sa") / "kubeconfig", token=token,
                                                namespace=ns)
    other = f"{prefix}-other"
    control_plane.create_namespace(other)
    return Install(control_plane, prefix, ns, other, token, kubeconfig)


def _docker_config(host: str, user: str, password: str) -> dict:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    return {".dockerconfigjson": base64.b64encode(config).decode()}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _pull_secret(cp: ControlPlane, namespace: str, name: str, host: str, user: str, password: str) -> None:
    cp.apply_object({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"name": name, "namespace": namespace},
                     "data": _docker_config(host, user, password)})


def _imv(namespace: str, image: str, manifest: str) -> dict:
    return {"apiVersion": "secscan.quay.redhat.com/v1alpha1", "kind": "ImageManifestVuln",
            "metadata": {"name": manifest.replace(":", "."), "namespace": namespace, "labels": dict(MANAGED)},
            "spec": {"image": image, "manifest": manifest}}


def _run_play(install: Install, tmp_path: Path, extra_certs: Path, **env: str) -> subprocess.CompletedProcess:
    """`imvjob run` as the CronJob's pod runs it, but with the ServiceAccount's kubeconfig."""
    cronjob = cronjob_doc()
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    config = next(d for d in documents(CRONJOB) if d["kind"] == "ConfigMap" and d["metadata"]["name"] ==
                  "imvjob-config")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config["data"]["config.yaml"], encoding="utf-8")
    pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert set(pod_env) == {"IMVJOB_CONFIG", "IMVJOB_OUTPUT", "IMVJOB_EXTRA_CERTS", "IMVJOB_WEBHOOK_URLS_FILE"}
    webhooks = tmp_path / "webhooks"  # the optional Secret not created: the kubelet mounts an empty folder
    webhooks.mkdir(exist_ok=True)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("IMVJOB_") and k != "KUBECONFIG"}
    script = Path(sys.executable).with_name("imvjob")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "job"]
    return subprocess.run(
        [*argv, *container["args"], "--kubeconfig", str(install.kubeconfig), "--cluster-name", "deploy-test"],
        env={**base_env, "IMVJOB_CONFIG": str(config_file), "IMVJOB_OUTPUT": str(tmp_path / "reports"),
             "IMVJOB_EXTRA_CERTS": str(extra_certs), "IMVJOB_WEBHOOK_URLS_FILE": str(webhooks),
             # Only this module's namespaces: others' pods in the session's cluster are not ours.
             "IMVJOB_INCLUDE_NAMESPACE": f"{install.prefix}-*", "IMVJOB_PROGRESS": "never", **env},
        capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_the_play_runs_with_the_service_accounts_token(installed: Install, sims, sim_ca, tmp_path: Path):
    cp, ns = installed.cp, installed.ns
    shop, batch = f"{installed.prefix}-shop", f"{installed.prefix}-batch"
    for name in (shop, batch):
        cp.create_namespace(name, annotations={"imvjob/notify": f"team@{name}.example"})
    report_a, report_b = compat_bytes("quay", "securityinformation.json"), compat_bytes("quay", "mixedVulns.json")

    # Three registries, each opening only to one pull secret.
    hosts = [sims() for _ in range(3)]
    web, api, nightly = digest("web"), digest("api"), digest("nightly")
    for index, (host, manifest, body) in enumerate(zip(hosts, (web, api, nightly), (report_a, report_b, report_a))):
        role = QuayRole(host)
        role.accepted_auth.add(_basic(f"user{index}", f"password{index}"))
        role.reports[manifest] = body

    # shop: a Deployment's pod with a pull secret of its own.
    _pull_secret(cp, shop, "regcred", hosts[0].host, "user0", "password0")
    rs = cp.call("POST", f"/apis/apps/v1/namespaces/{shop}/replicasets", json={
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d9c", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                             "name": "web", "uid": "1" * 8, "controller": True}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": f"{hosts[0].host}/shop/web:1"}]}}}})
    cp.create_pod(shop, "web-5d9c-x1", containers=[{"name": "web", "image": f"{hosts[0].host}/shop/web:1"}],
                  labels={"app": "web"}, image_pull_secrets=["regcred"],
                  owner_references=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c",
                                     "uid": rs["metadata"]["uid"], "controller": True}])
    cp.set_pod_running(shop, "web-5d9c-x1", {"web": {"imageID": f"{hosts[0].host}/shop/web@{web}",
                                                     "containerID": "cri-o://web1"}})
    # batch: a pod whose ServiceAccount holds the pull secret, and a Job's pod that only the
    # cluster's global pull secret opens.
    _pull_secret(cp, batch, "sa-regcred", hosts[1].host, "user1", "password1")
    cp.call("POST", f"/api/v1/namespaces/{batch}/serviceaccounts", json={
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"},
        "imagePullSecrets": [{"name": "sa-regcred"}]})
    cp.create_pod(batch, "api", containers=[{"name": "api", "image": f"{hosts[1].host}/batch/api:2"}],
                  service_account="builder")
    cp.set_pod_running(batch, "api", {"api": {"imageID": f"{hosts[1].host}/batch/api@{api}",
                                              "containerID": "containerd://api1"}})
    job = cp.call("POST", f"/apis/batch/v1/namespaces/{batch}/jobs", json={
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nightly-29000000"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "nightly", "image": f"{hosts[2].host}/batch/nightly:3"}]}}}})
    cp.create_pod(batch, "nightly-29000000-abcde",
                  containers=[{"name": "nightly", "image": f"{hosts[2].host}/batch/nightly:3"}],
                  owner_references=[{"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-29000000",
                                     "uid": job["metadata"]["uid"], "controller": True}])
    cp.set_pod_running(batch, "nightly-29000000-abcde", {"nightly": {
        "imageID": f"{hosts[2].host}/batch/nightly@{nightly}", "containerID": "cri-o://nightly1"}})
    if cp.request("GET", "/api/v1/namespaces/openshift-config").status_code == 404:
        cp.create_namespace("openshift-config")
    _pull_secret(cp, "openshift-config", "pull-secret", hosts[2].host, "user2", "password2")

    # What an earlier run left: web's object, out of date, and one of an image no longer running.
    cp.call("POST", f"{IMV_API}/namespaces/{shop}/imagemanifestvulns", json=_imv(shop, f"{hosts[0].host}/shop/web", web))
    gone = digest("gone")
    cp.call("POST", f"{IMV_API}/namespaces/{shop}/imagemanifestvulns",
            json=_imv(shop, f"{hosts[0].host}/shop/old", gone))

    # The CronJob's way of trusting a private registry CA: a folder, as the Secret mounts it.
    certs = tmp_path / "extra-certs"
    certs.mkdir()
    certs.joinpath("registry-ca.crt").write_bytes(Path(sim_ca[1]).read_bytes())

    result = _run_play(installed, tmp_path, certs)
    output = result.stdout + result.stderr

    assert result.returncode == 0, output[-5000:]
    assert "403" not in output and "forbidden" not in output.lower(), output[-5000:]
    recap = re.search(r"imvjob: ok=\d+ created=(\d+) updated=(\d+) deleted=(\d+) unchanged=\d+ failed=(\d+) "
                      r"unscanned=(\d+)", output)
    assert recap and recap.groups() == ("2", "1", "1", "0", "0"), output[-3000:]

    def imvs(namespace: str) -> dict[str, dict]:
        items = cp.call("GET", f"{IMV_API}/namespaces/{namespace}/imagemanifestvulns")["items"]
        return {i["metadata"]["name"]: i for i in items}

    assert set(imvs(shop)) == {web.replace(":", ".")}
    updated = imvs(shop)[web.replace(":", ".")]
    assert updated["status"]["affectedPods"] == {f"{shop}/web-5d9c-x1": ["cri-o://web1"]}
    assert updated["spec"]["features"], "the registry's report was written"
    assert set(imvs(batch)) == {api.replace(":", "."), nightly.replace(":", ".")}
    assert all(i["status"]["highestSeverity"] for i in imvs(batch).values())
    # Each registry saw the credentials that only its pull secret holds.
    for index, host in enumerate(hosts):
        auths = {s.authorization for s in host.requests("GET", r"/api/v1/repository/.*")}
        assert _basic(f"user{index}", f"password{index}") in auths, f"host {index}: {auths}"
    # The Lease was taken in the job's own namespace, and released.
    lease = cp.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/imvjob")
    assert lease["metadata"]["labels"] == MANAGED and not lease["spec"].get("holderIdentity")
    assert (tmp_path / "reports" / "report.html").is_file()




def test_the_play_runs_where_no_extra_ca_is_mounted(installed: Install, sims, tmp_path: Path):
    cp = installed.cp
    plain = f"{installed.prefix}-plain"
    cp.create_namespace(plain)
    host = sims(tls=False)
    manifest = digest("plain")
    QuayRole(host).reports[manifest] = compat_bytes("quay", "securityinformation.json")
    cp.create_pod(plain, "app", containers=[{"name": "app", "image": f"{host.host}/team/app:1"}])
    cp.set_pod_running(plain, "app", {"app": {"imageID": f"{host.host}/team/app@{manifest}",
                                              "containerID": "cri-o://app1"}})
    # What the projected volume holds off OpenShift with no Secret: nothing.
    certs = tmp_path / "extra-certs"
    certs.mkdir()

    result = _run_play(installed, tmp_path, certs, IMVJOB_NAMESPACE=plain, IMVJOB_INSECURE_REGISTRY=host.url)

    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    items = cp.call("GET", f"{IMV_API}/namespaces/{plain}/imagemanifestvulns")["items"]
    assert [i["metadata"]["name"] for i in items] == [manifest.replace(":", ".")]

# --- and nothing more -----------------------------------------------------------------------

IMV_GROUP = "secscan.quay.redhat.com"
LEASES = "coordination.k8s.io"
#: Exactly what the ServiceAccount may do, as (group, resource, verb, resourceName): the calls
#: of job/kube.py and nothing else.
CLUSTER_WIDE = {
    ("", "pods", "list", ""),
    ("", "namespaces", "get", ""), ("", "namespaces", "list", ""),
    ("", "replicationcontrollers", "list", ""), ("apps", "replicasets", "list", ""), ("batch", "jobs", "list", ""),
    ("", "serviceaccounts", "list", ""),
    ("", "secrets", "get", ""),
    *((IMV_GROUP, "imagemanifestvulns", verb, "") for verb in ("get", "list", "create", "patch", "delete")),
    (IMV_GROUP, "imagemanifestvulns/status", "update", ""),
    ("apiextensions.k8s.io", "customresourcedefinitions", "get", "imagemanifestvulns.secscan.quay.redhat.com"),
}
OWN_NAMESPACE = {(LEASES, "leases", "create", ""), (LEASES, "leases", "get", "imvjob"),
                 (LEASES, "leases", "update", "imvjob")}


def _rules(install: Install, namespace: str, token: str | None = None) -> set[tuple[str, str, str, str]]:
    review = install.cp.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", json={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}},
        token=token or install.token)
    assert review.status_code == 201, review.text
    status = review.json()["status"]
    assert not status.get("incomplete"), status
    return {(group, resource, verb, name) for rule in status["resourceRules"] for group in rule.get("apiGroups", [])
            for resource in rule["resources"] for verb in rule["verbs"] for name in rule.get("resourceNames") or [""]}


def test_the_service_account_holds_exactly_the_rules_the_job_needs(installed: Install):
    # What every ServiceAccount may do anyway (review itself, read cluster trust bundles…), from a
    # ServiceAccount that nothing binds.
    cp = installed.cp
    cp.call("POST", f"/api/v1/namespaces/{installed.ns}/serviceaccounts",
            json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bare"}})
    bare = cp.service_account_token(installed.ns, "bare")
    for namespace, expected in ((installed.ns, CLUSTER_WIDE | OWN_NAMESPACE), (installed.other, CLUSTER_WIDE)):
        baseline = _rules(installed, namespace, bare)
        assert not expected & baseline
        granted = _rules(installed, namespace) - baseline
        assert granted == expected, f"in {namespace}: more {granted - expected}, missing {expected - granted}"


# (what, verb, group, resource, subresource, where: own|other|cluster, name, allowed)
ACCESS = [
    ("list running pods everywhere", "list", "", "pods", "", "cluster", "", True),
    ("list pods of one namespace", "list", "", "pods", "", "other", "", True),
    ("read a namespace's annotations", "get", "", "namespaces", "", "cluster", "shop", True),
    ("list the owners of pods", "list", "apps", "replicasets", "", "other", "", True),
    ("list Jobs", "list", "batch", "jobs", "", "cluster", "", True),
    ("read a pull secret", "get", "", "secrets", "", "other", "regcred", True),
    ("read the global pull secret", "get", "", "secrets", "", "openshift-config", "pull-secret", True),
    ("delete an ImageManifestVuln", "delete", IMV_GROUP, "imagemanifestvulns", "", "other", "sha256.x", True),
    ("write an ImageManifestVuln's status", "update", IMV_GROUP, "imagemanifestvulns", "status", "other", "x", True),
    ("replace an ImageManifestVuln whole (its writes are merge patches)", "update", IMV_GROUP, "imagemanifestvulns",
     "", "other", "x", False),
    ("take its Lease", "update", LEASES, "leases", "", "own", "imvjob", True),
    ("create its Lease", "create", LEASES, "leases", "", "own", "", True),
    ("list secrets", "list", "", "secrets", "", "cluster", "", False),
    ("list its own namespace's secrets", "list", "", "secrets", "", "own", "", False),
    ("watch pods", "watch", "", "pods", "", "cluster", "", False),
    ("get a pod", "get", "", "pods", "", "other", "web", False),
    ("delete a pod", "delete", "", "pods", "", "other", "web", False),
    ("exec into a pod", "create", "", "pods", "exec", "other", "web", False),
    ("create a ConfigMap", "create", "", "configmaps", "", "own", "", False),
    ("write a Deployment", "create", "apps", "deployments", "", "other", "", False),
    ("change its CronJob", "update", "batch", "cronjobs", "", "own", "imvjob", False),
    ("patch an ImageManifestVuln's labels", "patch", IMV_GROUP, "imagemanifestvulns", "", "other", "x", True),
    ("patch an ImageManifestVuln's status", "patch", IMV_GROUP, "imagemanifestvulns", "status", "other", "x", False),
    ("delete every ImageManifestVuln at once", "deletecollection", IMV_GROUP, "imagemanifestvulns", "", "other",
     "", False),
    ("update another namespace's Lease", "update", LEASES, "leases", "", "other", "imvjob", False),
    ("create a Lease elsewhere", "create", LEASES, "leases", "", "other", "", False),
    ("update a Lease not its own", "update", LEASES, "leases", "", "own", "kube-scheduler", False),
    ("create events", "create", "", "events", "", "own", "", False),
    ("grant itself more", "bind", "rbac.authorization.k8s.io", "clusterroles", "", "cluster", "cluster-admin",
     False),
    ("impersonate a user", "impersonate", "", "users", "", "cluster", "admin", False),
]


@pytest.mark.parametrize("what, verb, group, resource, sub, where, name, allowed", ACCESS,
                         ids=[a[0].replace(" ", "-") for a in ACCESS])
def test_access_reviews_agree_with_the_rules(installed: Install, what, verb, group, resource, sub, where, name,
                                             allowed):
    namespace = {"own": installed.ns, "other": installed.other, "cluster": ""}.get(where, where)
    attributes = {"verb": verb, "group": group, "resource": resource, "subresource": sub,
                  "namespace": namespace, "name": name}
    self_review = installed.as_sa("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes}})
    assert self_review.status_code == 201, self_review.text
    review = installed.cp.call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": installed.user, "resourceAttributes": attributes,
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{installed.ns}",
                            "system:authenticated"]}})
    assert self_review.json()["status"]["allowed"] is allowed, what
    assert review["status"]["allowed"] is allowed, what


def test_the_service_accounts_token_is_refused_what_it_must_not_do(installed: Install):
    cp, own, other = installed.cp, installed.ns, installed.other
    cp.create_pod(other, "web", containers=[{"name": "web", "image": "quay.io/team/web:1"}])
    cp.apply_object({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": other},
                     "stringData": {"password": "hunter2"}})
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "imvjob"},
             "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 60}}
    cp.call("POST", f"/apis/coordination.k8s.io/v1/namespaces/{other}/leases", json=lease)
    merge = {"Content-Type": "application/merge-patch+json"}
    refused = [
        ("list secrets cluster-wide", "GET", "/api/v1/secrets", {}),
        ("list the secrets of a namespace", "GET", f"/api/v1/namespaces/{other}/secrets", {}),
        ("list its own namespace's secrets", "GET", f"/api/v1/namespaces/{own}/secrets", {}),
        ("watch pods", "GET", "/api/v1/pods", {"params": {"watch": "true", "timeoutSeconds": "1"}}),
        ("delete a pod", "DELETE", f"/api/v1/namespaces/{other}/pods/web", {}),
        ("create a ConfigMap", "POST", f"/api/v1/namespaces/{own}/configmaps",
         {"json": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}),
        ("write a Deployment", "POST", f"/apis/apps/v1/namespaces/{other}/deployments",
         {"json": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}}),
        ("change its own CronJob", "PATCH", f"/apis/batch/v1/namespaces/{own}/cronjobs/imvjob",
         {"json": {"spec": {"suspend": True}}, "headers": merge}),
        ("update another namespace's Lease", "PUT", f"/apis/coordination.k8s.io/v1/namespaces/{other}/leases/imvjob",
         {"json": lease}),
        ("patch an ImageManifestVuln's status", "PATCH", f"{IMV_API}/namespaces/{other}/imagemanifestvulns/x/status",
         {"json": {"status": {"highCount": 1}}, "headers": merge}),
        ("delete every ImageManifestVuln at once", "DELETE", f"{IMV_API}/namespaces/{other}/imagemanifestvulns", {}),
        ("widen its own ClusterRole", "PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterroles/imvjob",
         {"json": {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}, "headers": merge}),
    ]
    for what, method, path, kwargs in refused:
        response = installed.as_sa(method, path, **kwargs)
        assert response.status_code == 403, f"{what}: {method} {path} -> {response.status_code} {response.text[:200]}"
    # The token itself works: what the job does is allowed.
    assert installed.as_sa("GET", "/api/v1/pods", params={"fieldSelector": "status.phase=Running",
                                                          "limit": "1"}).status_code == 200
    assert installed.as_sa("GET", f"/api/v1/namespaces/{other}/secrets/db").status_code == 200
    assert cp.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{other}/leases/imvjob")["spec"][
        "holderIdentity"] == "someone-else"
