"""The Container Security Operator (CSO) as the oracle: on one real kube-apiserver and one
simulated Quay, CSO's security-labeller v1.0.6 and the job each build the ImageManifestVulns of
the same cluster, and every field must agree but for the written allow-list of
docs/compatibility.md. Then CSO, started on the job's objects, must find nothing to change.
The API server's audit log counts each client's requests (the figures in BENCHMARKS.md).

The scenario: three namespaces; pods with two containers of one image, init and ephemeral
containers, a Running pod that is not Ready; imageIDs as Docker (`docker-pullable://`), CRI-O and
containerd (`host/repo@sha256:`) and bare `sha256:` write them; images by tag and by digest;
registry hosts without a port (localhost and 127.0.0.2 on 443, where CSO looks) and with one;
the real Quay answers of ../shared/compat/quay/ (scanned, queued, unsupported, failed, no
package, no vulnerability).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cso_oracle import Labeller, find_labeller, wait_stable
from registry_sim import COMPAT, PROXY_VARS, QuayRole, SimHost, compat_bytes, sim_ca  # noqa: F401
from test_play import Cluster

from controlplane import (CRD_NAME, IMV_API, PROJECT_CRD, ControlPlane, ControlPlaneUnavailable,
                          find_binaries, unavailable)

pytestmark = pytest.mark.controlplane

WRITES = ("create", "update", "patch", "delete", "deletecollection")
RESYNC = 3.0  # CSO's informer resync, seconds: each one reconciles every pod again
GO_LAYOUT = "%Y-%m-%d %H:%M:%S %z UTC"  # Go's "2006-01-02 15:04:05 -0700 MST", fraction cut


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def container_id(ns: str, pod: str, container: str) -> str:
    return "cri-o://" + hashlib.sha256(f"{ns}/{pod}/{container}".encode()).hexdigest()


def wire(doc: bytes) -> bytes:
    """A sample as Quay sends it: Flask's jsonify, compact, keys sorted, ASCII only."""
    return json.dumps(json.loads(doc), separators=(",", ":"), sort_keys=True).encode()


def scanned(data_only: bytes) -> bytes:
    """The `data` part of Quay's answer (some samples are only that) in its `scanned` wrapper."""
    return json.dumps({"status": "scanned", "data": json.loads(data_only)}).encode()


# --- the scenario -------------------------------------------------------------------------

@dataclass
class Container:
    name: str
    image: str             # as in the pod spec (by tag or by digest)
    image_id: str          # as the runtime reports it
    manifest: str
    kind: str = "containers"  # or initContainers, ephemeralContainers
    ready: bool = True


@dataclass
class Pod:
    ns: str
    name: str
    containers: list[Container]

    @property
    def key(self) -> str:
        return f"{self.ns}/{self.name}"

    @property
    def ready(self) -> bool:
        return all(c.ready for c in self.containers if c.kind == "containers")


@dataclass
class Scenario:
    cp: ControlPlane
    namespaces: list[str]
    hosts: dict[str, SimHost]
    pods: list[Pod] = field(default_factory=list)
    manifests: dict[str, str] = field(default_factory=dict)  # label -> digest

    def cso_skips(self, pod: Pod, c: Container) -> str | None:
        """Why CSO v1.0.6 does not follow this container (None: it does)."""
        if not pod.ready:
            return "pod Running but not Ready"
        if c.kind != "containers":
            return f"{c.kind} are not read"
        if c.image_id.startswith("sha256:"):
            return "bare sha256: imageID rejected"
        if re.match(r"^(docker-pullable://)?[^/]+:\d+/", c.image_id):
            return "registry host with a port rejected"
        return None

    def start_pod(self, pod: Pod) -> None:
        spec = [c for c in pod.containers if c.kind != "ephemeralContainers"]
        self.cp.create_pod(
            pod.ns, pod.name,
            containers=[{"name": c.name, "image": c.image} for c in spec if c.kind == "containers"],
            init_containers=[{"name": c.name, "image": c.image} for c in spec
                             if c.kind == "initContainers"] or None)
        for c in pod.containers:
            if c.kind == "ephemeralContainers":
                self.cp.add_ephemeral_container(pod.ns, pod.name, name=c.name, image=c.image)
        self.cp.set_pod_running(pod.ns, pod.name, {
            c.name: {"imageID": c.image_id, "containerID": container_id(pod.ns, pod.name, c.name),
                     "ready": c.ready} for c in pod.containers})

    def delete_pod(self, pod: Pod) -> None:
        self.cp.call("DELETE", f"/api/v1/namespaces/{pod.ns}/pods/{pod.name}",
                     params={"gracePeriodSeconds": 0})

    def dump(self) -> dict[str, dict]:
        out = {}
        for ns in self.namespaces:
            for item in self.cp.call("GET", f"{IMV_API}/namespaces/{ns}/imagemanifestvulns")["items"]:
                out[f"{ns}/{item['metadata']['name']}"] = item
        return out

    def versions(self) -> dict[str, str]:
        return {k: v["metadata"]["resourceVersion"] for k, v in self.dump().items()}

    def delete_objects(self) -> None:
        for ns in self.namespaces:
            self.cp.call("DELETE", f"{IMV_API}/namespaces/{ns}/imagemanifestvulns")
        wait_stable(self.dump, quiet=0, timeout=30, ready=lambda d: d == {})


def build_scenario(cp: ControlPlane, hosts: dict[str, SimHost]) -> tuple[Scenario, Pod]:
    tag = secrets.token_hex(3)
    a, b, c = (f"cso-{x}-{tag}" for x in "abc")
    for ns in (a, b, c):
        cp.create_namespace(ns)
    s = Scenario(cp, [a, b, c], hosts)
    port = hosts["port"].host  # 127.0.0.1:NNNNN
    roles = {name: QuayRole(h, capabilities_doc=capabilities(h)) for name, h in hosts.items()}
    answers = {
        "web": ("localhost", wire(compat_bytes("quay", "securityinformation.json"))),
        "api": ("ip", wire(compat_bytes("quay", "mixedVulns.json"))),
        "db": ("port", wire(scanned(compat_bytes("quay", "securityinformation_withenrichments.json")))),
        "migrate": ("localhost", wire(scanned(compat_bytes("quay", "securityinformation_deduped.json")))),
        "debug": ("ip", wire(compat_bytes("quay", "mixedVulns.json"))),
        "batch": ("localhost", wire(scanned(compat_bytes("quay", "securityinformation_withenrichments.json")))),
        "clean": ("localhost", wire(compat_bytes("quay", "noVulns.json"))),
        "empty": ("localhost", wire(compat_bytes("quay", "noPackages.json"))),
        "queued": ("localhost", wire(compat_bytes("quay", "queued.json"))),
        "unsupported": ("ip", wire(compat_bytes("quay", "unsupported.json"))),
        "failed": ("ip", wire(compat_bytes("quay", "failed.json"))),
    }
    for label, (host, body) in answers.items():
        s.manifests[label] = digest(f"{label}-{tag}")
        roles[host].reports[s.manifests[label]] = body
    m = s.manifests
    web, api, db = "localhost/shop/web", "127.0.0.2/shop/team/api", f"{port}/shop/db"
    s.pods = [
        Pod(a, "web-1", [
            Container("web", f"{web}:1.0", f"docker-pullable://{web}@{m['web']}", m["web"]),
            Container("sidecar", f"{web}:1.0", f"{web}@{m['web']}", m["web"]),
            Container("migrate", "localhost/shop/migrate:2", f"localhost/shop/migrate@{m['migrate']}",
                      m["migrate"], kind="initContainers"),
        ]),
        Pod(a, "web-2", [
            Container("web", f"{web}@{m['web']}", f"{web}@{m['web']}", m["web"]),
            Container("api", f"{api}:3.1", f"{api}@{m['api']}", m["api"]),
        ]),
        Pod(a, "debug-1", [
            Container("app", "localhost/shop/clean:1", f"localhost/shop/clean@{m['clean']}", m["clean"]),
            Container("debugger", "127.0.0.2/ops/debug:1", f"127.0.0.2/ops/debug@{m['debug']}", m["debug"],
                      kind="ephemeralContainers"),
        ]),
        Pod(b, "api-1", [
            Container("api", f"{api}@{m['api']}", "sha256:" + hashlib.sha256(b"config").hexdigest(), m["api"]),
            Container("db", f"{db}:16", f"{db}@{m['db']}", m["db"]),
            Container("web", f"{web}:1.0", f"docker-pullable://{web}@{m['web']}", m["web"]),
        ]),
        Pod(b, "batch-1", [
            Container("batch", "localhost/shop/batch:1", f"localhost/shop/batch@{m['batch']}", m["batch"],
                      ready=False),
            Container("web", f"{web}:1.0", f"{web}@{m['web']}", m["web"]),
        ]),
        Pod(c, "misc-1", [
            Container("queued", "localhost/x/queued:1", f"localhost/x/queued@{m['queued']}", m["queued"]),
            Container("unsupported", "127.0.0.2/x/unsupported:1", f"127.0.0.2/x/unsupported@{m['unsupported']}",
                      m["unsupported"]),
            Container("failed", "127.0.0.2/x/failed:1", f"127.0.0.2/x/failed@{m['failed']}", m["failed"]),
            Container("empty", "localhost/x/empty:1", f"localhost/x/empty@{m['empty']}", m["empty"]),
            # Pulled by digest, and the only pod of this namespace running it.
            Container("web", f"{web}@{m['web']}", f"{web}@{m['web']}", m["web"]),
        ]),
    ]
    changed = Pod(a, "web-3", [Container("web", f"{web}:1.0", f"{web}@{m['web']}", m["web"])])
    return s, changed


def capabilities(host: SimHost) -> bytes:
    """Quay's real /.well-known/app-capabilities document, naming this host."""
    base = f"https://{host.name}" if host.port == 443 else host.url
    return compat_bytes("quay", "app-capabilities.json").replace(b"https://quay.example.com", base.encode())


# --- comparison ---------------------------------------------------------------------------

OURS_LABEL = "app.kubernetes.io/managed-by"


def flatten(doc, prefix: str = "") -> dict[str, object]:
    """{"spec.features[0].name": "openssl", ...}; the keys of maps are quoted so that pod keys
    ("ns/pod") stay one step."""
    if isinstance(doc, dict):  # an empty map or list is no field: the API server drops them
        out = {}
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}[{k!r}]" if "/" in k or "." in k else f"{prefix}.{k}".lstrip(".")))
        return out
    if isinstance(doc, list):
        out = {}
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: doc}


def comparable(obj: dict) -> dict:
    meta = obj["metadata"]
    # A pod's container IDs are a set to every reader (the console counts pods).
    status = dict(obj.get("status", {}))
    status["affectedPods"] = {pod: dict.fromkeys(ids, "listed")
                              for pod, ids in status.get("affectedPods", {}).items()}
    return {"metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "labels": meta.get("labels", {}), "annotations": meta.get("annotations", {})},
            "spec": obj["spec"], "status": status}


@dataclass
class Difference:
    key: str
    path: str
    cso: object
    job: object
    allowed: str | None = None

    def __str__(self) -> str:
        return f"{self.key} {self.path}: CSO {self.cso!r} / job {self.job!r}"


def go_time(text: str) -> dt.datetime:
    """Parse as CSO does (layout "2006-01-02 15:04:05 -0700 MST", fraction accepted)."""
    return dt.datetime.strptime(re.sub(r"\.\d+ ", " ", text), GO_LAYOUT)


def compare(s: Scenario, cso: dict[str, dict], job: dict[str, dict]) -> list[Difference]:
    """Every difference, each with the allow-list reason that covers it (None: not allowed)."""
    by_id = {container_id(p.ns, p.name, c.name): (p, c) for p in s.pods for c in p.containers}
    diffs: list[Difference] = []

    def skipped(ids) -> str | None:
        reasons = {s.cso_skips(*by_id[i]) if i in by_id else None for i in ids}
        return None if None in reasons or not reasons else "; ".join(sorted(reasons))

    for key in sorted(set(cso) | set(job)):
        if key not in job:
            diffs.append(Difference(key, "", "object", None))
            continue
        if key not in cso:
            ids = [i for ids in job[key]["status"].get("affectedPods", {}).values() for i in ids]
            diffs.append(Difference(key, "", None, "object", skipped(ids)))
            continue
        theirs, ours = flatten(comparable(cso[key])), flatten(comparable(job[key]))
        job_pods = job[key]["status"].get("affectedPods", {})
        cso_pods = cso[key]["status"].get("affectedPods", {})
        for path in sorted(set(theirs) | set(ours)):
            a, b = theirs.get(path, "<absent>"), ours.get(path, "<absent>")
            if a == b:
                continue
            d = Difference(key, path, a, b)
            diffs.append(d)
            pod_key = re.match(r"^(?:metadata\.labels|status\.affectedPods)\['([^']+)'\](?:\['([^']+)'\])?$", path)
            if path == f"metadata.labels['{OURS_LABEL}']" or path.startswith("metadata.annotations['imvjob.io/"):
                d.allowed = "the job's own bookkeeping"
            elif path == "status.lastUpdate":
                # Each writer's time of scan; Go prints nanoseconds, the job microseconds.
                if go_time(a) and go_time(b):
                    d.allowed = "time of each writer's scan; precision"
            elif path == "spec.image" and a == f"{b}@sha256":
                d.allowed = "CSO cuts an image pulled by digest at its first ':'"
            elif path.endswith(".metadata") and isinstance(a, str) and isinstance(b, str):
                if json.loads(a) == json.loads(b):
                    d.allowed = "same JSON value: CSO copies the registry's bytes, the job writes it compact"
            elif pod_key and pod_key.group(1) not in cso_pods:
                d.allowed = skipped(job_pods.get(pod_key.group(1), []))
            elif pod_key and a == "<absent>":
                # A container ID only the job lists: another container of a digest CSO has for
                # that pod (CSO keeps one per digest), or one CSO does not follow.
                if cso_pods.get(pod_key.group(1)) and pod_key.group(2):
                    d.allowed = skipped([pod_key.group(2)]) or "another container of the same image in the pod"
    return diffs


# --- the run ------------------------------------------------------------------------------

@dataclass
class Results:
    scenario: Scenario
    cso: dict[str, dict]
    job: dict[str, dict]
    job_exit: int
    counts: dict[str, dict[str, Counter]]
    cso_writes_on_job_objects: int
    after_cso_pass: dict[str, dict]   # the job's objects after CSO reconciled them all
    after_cso_resyncs: dict[str, dict]  # and after two more resyncs


def requests_of(events: list[dict], user: str, start: int, end: int | None = None) -> Counter:
    """Requests of one client in a slice of the audit log, by verb and resource."""
    count: Counter = Counter()
    for e in events[start:end]:
        if e["user"]["username"] != user:
            continue
        resource = (e.get("objectRef") or {}).get("resource", "-")
        sub = (e.get("objectRef") or {}).get("subresource")
        count[f"{e['verb']} {resource}{'/' + sub if sub else ''}"] += 1
    return count


def service_account(cp: ControlPlane, ns: str, name: str, workdir: Path) -> tuple[str, Path]:
    cp.call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
            json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    cp.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{name}-{ns}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]})
    token = cp.service_account_token(ns, name)
    return f"system:serviceaccount:{ns}:{name}", cp.write_kubeconfig(workdir / f"{name}.kubeconfig", token=token)


@pytest.fixture(scope="module")
def audited_cp():
    try:
        binaries = find_binaries()
    except ControlPlaneUnavailable as exc:
        unavailable(f"no Kubernetes control plane: {exc}")
    cp = ControlPlane.start(binaries, audit=True)
    try:
        cp.apply_yaml(PROJECT_CRD)
        cp.wait_crd_established(CRD_NAME)
        # The new kind's watch cache answers 429 until it has started.
        wait_stable(lambda: cp.request("GET", f"{IMV_API}/imagemanifestvulns").status_code,
                    quiet=0, timeout=30, ready=lambda code: code == 200)
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def labeller_binary() -> Path:
    if not COMPAT.is_dir():
        unavailable(f"the Quay samples are missing: {COMPAT} (../shared/compat)")
    try:
        return find_labeller()
    except ControlPlaneUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="module")
def results(audited_cp, labeller_binary, sim_ca, tmp_path_factory) -> Results:  # noqa: F811
    mp = pytest.MonkeyPatch()
    for name in PROXY_VARS:
        mp.delenv(name, raising=False)
    hosts: dict[str, SimHost] = {}
    work = tmp_path_factory.mktemp("cso")
    try:
        try:
            hosts["localhost"] = SimHost(ca=sim_ca[0], name="localhost", port=443).start()
            hosts["ip"] = SimHost(ca=sim_ca[0], name="127.0.0.2", address="127.0.0.2", port=443).start()
        except PermissionError:
            unavailable("the registry hosts without a port must listen on port 443 "
                        "(CSO always asks https://HOST/): run as root or lower net.ipv4.ip_unprivileged_port_start")
        hosts["port"] = SimHost(ca=sim_ca[0]).start()
        yield run(audited_cp, labeller_binary, sim_ca[1], hosts, work)
    finally:
        for h in hosts.values():
            h.stop()
        mp.undo()


def run(cp: ControlPlane, binary: Path, ca_file: str, hosts: dict[str, SimHost], work: Path) -> Results:
    s, changed = build_scenario(cp, hosts)
    cso_user, cso_kubeconfig = service_account(cp, s.namespaces[0], "cso", work)
    job_user, job_kubeconfig = service_account(cp, s.namespaces[0], "imvjob", work)
    for pod in s.pods:
        s.start_pod(pod)
    counts: dict[str, dict[str, Counter]] = {"cso": {}, "job": {}}

    def mark() -> int:
        return len(cp.audit_events())

    def cso_window(name: str, start: int) -> None:
        counts["cso"][name] = requests_of(cp.audit_events(), cso_user, start)

    # 1. CSO from empty, until its objects stay the same for two resyncs.
    start = mark()
    cso = Labeller(binary, cso_kubeconfig, s.namespaces, ca_file=ca_file, workdir=work, resync=RESYNC)
    try:
        wait_stable(s.dump, quiet=2 * RESYNC + 0.5, timeout=90, alive=cso.alive)
        cso_window("from empty (until idle, incl. 2 resyncs)", start)
        # Steady state: three resyncs with nothing changing.
        start = mark()
        time.sleep(3 * RESYNC)
        cso.alive()
        cso_window("steady state, 3 resyncs", start)
        # One pod more, running a known image.
        start = mark()
        s.start_pod(changed)
        wait_stable(s.dump, quiet=RESYNC + 0.5, timeout=60, alive=cso.alive,
                    ready=lambda d: any(changed.key in o["status"].get("affectedPods", {}) for o in d.values()))
        cso_window("one pod added (until idle, incl. 1 resync)", start)
    finally:
        cso.stop()
    cso_objects = s.dump()

    # 2. The job on the same cluster, from empty.
    s.delete_objects()
    s.delete_pod(changed)
    (work / "job").mkdir()
    cluster = Cluster(cp, work / "job", s.namespaces)
    over = dict(kubeconfig=str(job_kubeconfig), secscan_dir="", extra_certs=ca_file, read_timeout=5.0,
                retries=1)
    start = mark()
    exit_code, _ = cluster.play(**over)
    counts["job"]["from empty (one run)"] = requests_of(cp.audit_events(), job_user, start)
    start = mark()
    cluster.play(**over)
    counts["job"]["steady state (one run)"] = requests_of(cp.audit_events(), job_user, start)
    s.start_pod(changed)
    start = mark()
    exit_code = max(exit_code, cluster.play(**over)[0])
    counts["job"]["one pod added (one run)"] = requests_of(cp.audit_events(), job_user, start)
    job_objects = s.dump()

    # 3. CSO started on the job's objects: it reconciles every pod (and writes), changing nothing
    # a reader sees. Its 2019 client-go sends managedFields back without their `subresource`
    # field, so the server stores them once more (a resourceVersion move), then never again.
    start = mark()
    cso = Labeller(binary, cso_kubeconfig, s.namespaces, ca_file=ca_file, workdir=work, resync=RESYNC)
    try:
        def cso_writes() -> int:
            return sum(n for k, n in requests_of(cp.audit_events(), cso_user, start).items()
                       if k.split()[0] in WRITES)
        wait_stable(cso_writes, quiet=0, timeout=60, alive=cso.alive)
        time.sleep(RESYNC + 0.5)  # every ready pod reconciled at least once more
        first_pass = s.dump()
        time.sleep(2 * RESYNC)  # two more resyncs: nothing may move any more
        cso.alive()
        writes = cso_writes()
    finally:
        cso.stop()
    return Results(s, cso_objects, job_objects, exit_code, counts, writes, first_pass, s.dump())


# --- the tests ----------------------------------------------------------------------------

def test_job_objects_are_csos_but_for_the_allow_list(results: Results) -> None:
    s = results.scenario
    assert results.job_exit == 0
    m = s.manifests
    # The oracle did its work: objects for the images it follows, none for the answers that
    # are not a scan with vulnerabilities.
    a, b, c = s.namespaces
    expected = {f"{a}/{m['web']}", f"{a}/{m['api']}", f"{b}/{m['web']}", f"{c}/{m['web']}"}
    assert {k.replace(":", ".") for k in expected} <= set(results.cso)
    diffs = compare(s, results.cso, results.job)
    unexplained = [str(d) for d in diffs if not d.allowed]
    assert not unexplained, f"{len(unexplained)} differences not on the allow-list:\n" + "\n".join(unexplained[:40])
    # Each rule of the allow-list was met at least once (the scenario exercises them all).
    reasons = Counter(d.allowed for d in diffs)
    print("\nallow-listed differences:", *sorted(f"{n:4} {r}" for r, n in reasons.items()), sep="\n  ")
    joined = " ".join(reasons)
    for expected in ("bookkeeping", "precision", "pod Running but not Ready", "initContainers",
                     "ephemeralContainers", "bare sha256", "host with a port",
                     "another container of the same image", "cuts an image pulled by digest"):
        assert expected in joined, f"the scenario never exercised {expected!r}"
    # Nothing unscanned becomes an object, for either.
    for objects in (results.cso, results.job):
        names = {k.split("/")[1] for k in objects}
        for label in ("clean", "empty", "queued", "unsupported", "failed"):
            assert m[label].replace(":", ".") not in names, label


def test_not_ready_pods_count_for_the_job_only(results: Results) -> None:
    s = results.scenario
    _, b, _ = s.namespaces
    batch = f"{b}/{s.manifests['batch'].replace(':', '.')}"
    web = f"{b}/{s.manifests['web'].replace(':', '.')}"
    assert batch not in results.cso
    assert set(results.job[batch]["status"]["affectedPods"]) == {f"{b}/batch-1"}
    assert results.job[batch]["metadata"]["labels"][f"{b}/batch-1"] == "true"
    assert f"{b}/batch-1" in results.job[web]["status"]["affectedPods"]
    assert f"{b}/batch-1" not in results.cso[web]["status"]["affectedPods"]


def test_cso_on_the_job_objects_changes_nothing(results: Results) -> None:
    assert results.cso_writes_on_job_objects > 0, "CSO never reconciled the job's objects"
    before, after = results.job, results.after_cso_pass
    assert set(after) == set(before)
    for key in before:
        assert comparable(after[key]) == comparable(before[key]), key
        moved = before[key]["metadata"]["resourceVersion"] != after[key]["metadata"]["resourceVersion"]
        if moved:  # only CSO's client rewriting managedFields (see run())
            strip = [{k: v for k, v in o["metadata"].items() if k not in ("managedFields", "resourceVersion")}
                     for o in (before[key], after[key])]
            assert strip[0] == strip[1], key
    versions = {k: o["metadata"]["resourceVersion"] for k, o in after.items()}
    assert versions == {k: o["metadata"]["resourceVersion"] for k, o in results.after_cso_resyncs.items()}


def test_request_counts(results: Results, capsys) -> None:
    lines = []
    for client, windows in results.counts.items():
        for window, count in windows.items():
            lines.append(f"{client:4} {window}: {sum(count.values())} requests: "
                         + ", ".join(f"{k} {n}" for k, n in sorted(count.items())))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    job = results.counts["job"]
    assert not any(k.split()[0] in WRITES and "imagemanifestvulns" in k
                   for k in job["steady state (one run)"]), "an unchanged cluster got writes from the job"
    cso_steady = results.counts["cso"]["steady state, 3 resyncs"]
    assert sum(n for k, n in cso_steady.items() if k.startswith("update")) > 0  # CSO rewrites every resync
