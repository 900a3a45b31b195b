"""A synthetic cluster for the play benchmark: namespaces, workloads, pods, image manifests and the
Quay security reports of those manifests. Pure and deterministic for a given seed.

The shape follows what large clusters look like:
- 20 namespaces per 1,000 pods, ~50 pods each, in a handful of workloads per namespace
  (Deployments mostly, StatefulSets, DaemonSets, CronJobs' Jobs, Jobs and bare pods);
- every workload runs its own application image; the same application often runs in several
  namespaces (dev/stage/prod); a small pool of shared images (proxies, log shippers, init
  helpers) runs as sidecars and init containers almost everywhere;
- manifests are built on a few base images, so most vulnerabilities of a manifest come from its
  base and recur in many manifests, as they do in real reports; descriptions have the lengths of
  real advisories (a few hundred characters, a long tail up to a few thousand);
- a Quay report lists every package of the image, the vulnerable ones and the clean ones.

`churn()` turns a share of the pods over to new image versions the way a rollout does: a
Deployment gets a new manifest and a new ReplicaSet, its pods are replaced by new ones.
`plan_growth()` adds a share of new pods, some running new manifests, for a frequent run.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

SEVERITIES = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown")
SEVERITY_WEIGHTS = (3, 17, 45, 25, 7, 3)
FAMILIES = (  # base images: (distro namespace in reports, distro name, version, package format)
    ("RHEL8-rhel-8-including-unpatched", "Red Hat Enterprise Linux Server", "8", "rpm"),
    ("RHEL9-rhel-9-including-unpatched", "Red Hat Enterprise Linux Server", "9", "rpm"),
    ("debian:11", "Debian GNU/Linux", "11", "dpkg"),
    ("debian:12", "Debian GNU/Linux", "12", "dpkg"),
    ("ubuntu:20.04", "Ubuntu", "20.04", "dpkg"),
    ("ubuntu:22.04", "Ubuntu", "22.04", "dpkg"),
    ("alpine:v3.18", "Alpine Linux", "3.18", "apk"),
    ("alpine:v3.19", "Alpine Linux", "3.19", "apk"),
)
TEAMS = ("payments", "checkout", "search", "identity", "platform", "data", "web", "batch", "ml", "risk",
         "ledger", "catalog", "media", "ops", "mobile", "partner")
APPS = ("api", "worker", "frontend", "cache", "gateway", "indexer", "scheduler", "exporter", "db", "queue",
        "auth", "billing", "notifier", "sync", "render", "ingest")
WORDS = ("a", "flaw", "was", "found", "in", "the", "parser", "when", "handling", "crafted", "input", "which",
         "may", "allow", "remote", "attacker", "to", "cause", "denial", "of", "service", "or", "execute",
         "arbitrary", "code", "heap", "buffer", "overflow", "memory", "corruption", "via", "specially",
         "request", "certificate", "validation", "bypass", "integer", "use-after-free", "library",
         "function", "length", "header", "leads", "out-of-bounds", "read", "write", "privileges", "local",
         "users", "could", "exploit", "this", "issue", "information", "disclosure", "STATEMENT:",
         "DOCUMENTATION:", "MITIGATION:", "not", "affected", "configurations", "default")
ECOSYSTEMS = (("npm", "GitHub Advisory Database"), ("pypi", "PyPA Advisory Database"),
              ("go", "Go Vulnerability Database"), ("maven", "GitHub Advisory Database"))
BASE_RELEASES = 6  # releases of each base image in use; older ones have more vulnerable packages
SHARED_IMAGES = 60  # sidecars and init helpers, run across many namespaces
KINDS = (("Deployment", 60), ("StatefulSet", 12), ("DaemonSet", 4), ("CronJob", 6), ("Job", 3), ("Pod", 3))


def sha(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Advisory:
    name: str
    severity: str
    fixed_by: str
    description: str
    link: str
    score: float
    vector: str


@dataclass(frozen=True, slots=True)
class Package:
    """A package at one version, from a base image or among an application's dependencies, with
    the advisories that concern that version."""

    name: str
    version: str
    ecosystem: int  # index into FAMILIES for OS packages; -1 - i for ECOSYSTEMS[i]
    advisories: tuple[int, ...]  # indexes into Cluster.advisories


@dataclass(slots=True)
class Manifest:
    index: int
    host: int  # index into the hosts the registry simulator serves
    repository: str
    digest: str
    family: int
    base: int  # the release of its family's base image it is built on
    state: str  # "scanned", "clean", "queued", "unsupported", "missing"
    packages: tuple[int, ...]  # its vulnerable packages (indexes into Cluster.packages)
    clean_packages: int


@dataclass(slots=True)
class Container:
    name: str
    manifest: int
    init: bool = False


@dataclass(slots=True)
class WorkloadSpec:
    index: int
    namespace: str
    kind: str
    name: str
    replicas: int
    containers: list[Container]
    template_hash: str
    generation: int = 0  # bumped by a rollout

    @property
    def owner(self) -> tuple[str, str] | None:
        """The pods' controller (kind, name) as their ownerReferences name it."""
        if self.kind == "Deployment":
            return ("ReplicaSet", f"{self.name}-{self.template_hash}")
        if self.kind == "CronJob":
            return ("Job", f"{self.name}-{29_000_000 + self.index % 1000}")
        if self.kind == "Pod":
            return None
        return (self.kind, self.name)

    def pod_names(self) -> list[str]:
        h = self.template_hash
        if self.kind == "Deployment":
            return [f"{self.name}-{h}-{sha(h, r)[:5]}" for r in range(self.replicas)]
        if self.kind == "StatefulSet":
            return [f"{self.name}-{r}" for r in range(self.replicas)]
        if self.kind == "CronJob":
            return [f"{self.owner[1]}-{sha(h, r)[:5]}" for r in range(self.replicas)]
        if self.kind == "Pod":
            return [self.name]
        return [f"{self.name}-{sha(h, r)[:5]}" for r in range(self.replicas)]


@dataclass(slots=True)
class Cluster:
    seed: int
    namespaces: list[str]
    advisories: list[Advisory]
    packages: list[Package]
    #: [family][release]: the vulnerable OS packages of that base image release.
    bases: list[list[tuple[int, ...]]]
    manifests: list[Manifest]
    workloads: list[WorkloadSpec]
    #: Rollouts planned by churn(): (workload index, new manifest index, new template hash).
    rollouts: list[tuple[int, int, str]] = field(default_factory=list)
    #: Workloads planned by plan_growth(), started by apply_growth().
    growth: list[WorkloadSpec] = field(default_factory=list)

    @property
    def pods(self) -> int:
        return sum(w.replicas for w in self.workloads)

    def running_manifests(self) -> set[int]:
        return {c.manifest for w in self.workloads for c in w.containers}


def _description(rng: random.Random) -> str:
    # Lengths of real advisories: median ~500 characters, a long tail to a few thousand.
    length = int(min(4000, max(60, rng.lognormvariate(math.log(500), 0.6))))
    words: list[str] = []
    size = 0
    while size < length:
        word = WORDS[rng.randrange(len(WORDS))]
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length].rstrip() + "."


def _advisory(rng: random.Random, n: int) -> Advisory:
    name = f"CVE-{2016 + n % 9}-{10000 + n}"
    return Advisory(name=name, severity=rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0],
                    fixed_by="" if rng.random() < 0.3 else f"{1 + n % 5}.{n % 13}.{n % 7 + 1}",
                    description=_description(rng),
                    link=f"https://access.redhat.com/security/cve/{name} https://nvd.nist.gov/vuln/detail/{name}",
                    score=round(rng.uniform(0.5, 10.0), 1), vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")


def build(*, pods: int = 50_000, manifests: int = 3_000, vulns: int = 60, hosts: int = 8,
          seed: int = 7) -> Cluster:
    """`vulns`: the mean number of vulnerabilities of a scanned manifest, about 70 % of them from
    its base image (the same for every image built on the same base release), the rest from its
    own dependencies (drawn from a pool of vulnerable library versions that applications share)."""
    rng = random.Random(seed)
    advisories: list[Advisory] = []
    packages: list[Package] = []

    def package(name: str, version: str, ecosystem: int, count: int) -> int:
        start = len(advisories)
        advisories.extend(_advisory(rng, start + k) for k in range(count))
        packages.append(Package(name, version, ecosystem, tuple(range(start, len(advisories)))))
        return len(packages) - 1

    per_package = 5
    base_count = max(1, round(vulns * 0.7 / per_package))
    bases: list[list[tuple[int, ...]]] = []
    for f in range(len(FAMILIES)):
        names = [f"{WORDS[(f * 13 + k * 7) % len(WORDS)].strip(':').lower()}lib{k}" for k in range(base_count * 2)]
        releases = []
        for r in range(BASE_RELEASES):  # older releases carry more vulnerable packages
            count = max(1, round(base_count * (1.4 - 0.16 * r)))
            chosen = sorted(rng.sample(range(len(names)), min(count, len(names))))
            releases.append(tuple(package(names[k], f"{1 + k % 4}.{r}.{k % 9}-{r + 1}", f,
                                          rng.randint(per_package - 2, per_package + 2)) for k in chosen))
        bases.append(releases)
    app_pool = [package(f"{ECOSYSTEMS[k % 4][0]}-lib-{k}", f"{k % 7}.{k % 11}.{k % 5}", -1 - k % 4,
                        rng.randint(2, 6)) for k in range(max(50, manifests // 3))]
    app_packages = max(0.0, (vulns - base_count * per_package) / 4)

    def manifest(i: int, repository: str) -> Manifest:
        family = rng.randrange(len(FAMILIES))
        base = min(BASE_RELEASES - 1, int(rng.random() ** 1.5 * BASE_RELEASES))
        roll = rng.random()
        state = ("queued" if roll < 0.01 else "unsupported" if roll < 0.015 else "missing" if roll < 0.02
                 else "clean" if roll < 0.04 else "scanned")
        chosen: tuple[int, ...] = ()
        if state == "scanned":
            deps = max(0, min(len(app_pool), round(rng.gauss(app_packages, app_packages / 3))))
            chosen = bases[family][base] + tuple(sorted(rng.sample(app_pool, deps)))
        return Manifest(index=i, host=i % hosts, repository=repository, digest="sha256:" + sha("manifest", seed, i),
                        family=family, base=base, state=state, packages=chosen, clean_packages=60 + rng.randrange(120))

    shared = min(SHARED_IMAGES, max(1, manifests // 20))
    catalogue = [manifest(i, f"platform/{('envoy', 'fluent-bit', 'vault-agent', 'istio-proxy', 'init-db')[i % 5]}")
                 for i in range(shared)]
    for i in range(shared, manifests):
        catalogue.append(manifest(i, f"{TEAMS[i % len(TEAMS)]}/{APPS[(i // len(TEAMS)) % len(APPS)]}-{i}"))

    namespace_count = max(1, round(pods * 20 / 1000))
    namespaces = [f"{TEAMS[i % len(TEAMS)]}-{i // len(TEAMS):03d}" for i in range(namespace_count)]
    # Application images: every one runs somewhere; later workloads reuse them (the same app in
    # several namespaces), popular ones more often.
    app_images = list(range(shared, manifests))
    rng.shuffle(app_images)
    unused = list(app_images)
    workloads: list[WorkloadSpec] = []
    per_namespace = pods // namespace_count
    extra = pods - per_namespace * namespace_count
    kinds, weights = zip(*KINDS)
    for n, ns in enumerate(namespaces):
        left = per_namespace + (1 if n < extra else 0)
        w_in_ns = 0
        while left > 0:
            kind = rng.choices(kinds, weights)[0]
            replicas = {"Deployment": rng.choice((2, 3, 4, 6, 8, 10, 16, 24)), "StatefulSet": rng.choice((1, 3, 5)),
                        "DaemonSet": 10, "CronJob": 1, "Job": 1, "Pod": 1}[kind]
            replicas = min(replicas, left)
            left -= replicas
            if unused:
                main = unused.pop()
            else:
                main = app_images[min(len(app_images) - 1, int(len(app_images) * rng.random() ** 2))]
            app = catalogue[main].repository.rsplit("/", 1)[1].rsplit("-", 1)[0]
            containers = [Container(app, main)]
            if rng.random() < 0.3:
                containers.append(Container("proxy", rng.randrange(0, shared, 5) if shared >= 5 else 0))
            if rng.random() < 0.15:
                containers.append(Container("init", rng.randrange(shared), init=True))
            name = f"{app}-{w_in_ns}" if kind != "Pod" else f"{app}-debug-{w_in_ns}"
            workloads.append(WorkloadSpec(index=len(workloads), namespace=ns, kind=kind, name=name,
                                          replicas=replicas, containers=containers,
                                          template_hash=sha("hash", ns, name)[:9]))
            w_in_ns += 1
    return Cluster(seed=seed, namespaces=namespaces, advisories=advisories, packages=packages, bases=bases,
                   manifests=catalogue, workloads=workloads)


def plan_churn(cluster: Cluster, share: float = 0.05) -> None:
    """Plan rollouts of Deployments holding `share` of the pods: each gets a new manifest of its
    application (a rebuild that fixes some vulnerabilities and brings a new one) and new pods.
    The new manifests are added to the catalogue now, so that the registry can serve them."""
    rng = random.Random(cluster.seed + 1)
    target = int(cluster.pods * share)
    candidates = [w for w in cluster.workloads if w.kind == "Deployment"]
    rng.shuffle(candidates)
    moved = 0
    for w in candidates:
        if moved >= target:
            break
        if moved + w.replicas > target + 2:
            continue
        old = cluster.manifests[w.containers[0].manifest]
        index = len(cluster.manifests)
        # A rebuild: on its base's newest release, with one dependency dropped (updated).
        base = BASE_RELEASES - 1
        deps = [p for p in old.packages if cluster.packages[p].ecosystem < 0]
        if deps:
            deps.pop(rng.randrange(len(deps)))
        fresh = cluster.bases[old.family][base] + tuple(deps) if old.state == "scanned" else ()
        cluster.manifests.append(Manifest(index=index, host=old.host, repository=old.repository,
                                          digest="sha256:" + sha("manifest", cluster.seed, index), family=old.family,
                                          base=base, state=old.state, packages=fresh,
                                          clean_packages=old.clean_packages))
        cluster.rollouts.append((w.index, index, sha("hash", w.namespace, w.name, "v2")[:9]))
        moved += w.replicas


def apply_churn(cluster: Cluster) -> list[tuple[WorkloadSpec, WorkloadSpec]]:
    """Carry out the planned rollouts in the model; returns (before, after) per workload."""
    changed = []
    for index, manifest, template_hash in cluster.rollouts:
        w = cluster.workloads[index]
        before = WorkloadSpec(w.index, w.namespace, w.kind, w.name, w.replicas, list(w.containers), w.template_hash,
                              w.generation)
        w.containers = [Container(w.containers[0].name, manifest), *w.containers[1:]]
        w.template_hash = template_hash
        w.generation += 1
        changed.append((before, w))
    return changed


def plan_growth(cluster: Cluster, share: float = 0.01) -> None:
    """Plan new Deployments holding `share` of the pods, as the few minutes between two frequent
    runs bring: half of them run a new build of an application (a manifest the registry has not
    been asked about, added to the catalogue now so that it can serve it), half an image already
    running elsewhere. Call it after plan_churn(), in the same order everywhere."""
    if share <= 0:
        return
    rng = random.Random(cluster.seed + 2)
    target = max(1, int(cluster.pods * share))
    running = sorted(cluster.running_manifests())
    planned = 0
    while planned < target:
        k = len(cluster.growth)
        ns = cluster.namespaces[rng.randrange(len(cluster.namespaces))]
        replicas = min(rng.choice((1, 2, 3, 4)), target - planned)
        if k % 2 == 0:
            old = cluster.manifests[rng.choice(running)]
            index = len(cluster.manifests)
            cluster.manifests.append(Manifest(index=index, host=old.host, repository=old.repository,
                                              digest="sha256:" + sha("manifest", cluster.seed, index),
                                              family=old.family, base=old.base, state=old.state,
                                              packages=old.packages, clean_packages=old.clean_packages))
        else:
            index = rng.choice(running)
        app = cluster.manifests[index].repository.rsplit("/", 1)[1].rsplit("-", 1)[0]
        name = f"{app}-new-{k}"
        cluster.growth.append(WorkloadSpec(index=len(cluster.workloads) + k, namespace=ns, kind="Deployment",
                                           name=name, replicas=replicas, containers=[Container(app, index)],
                                           template_hash=sha("hash", ns, name, "grow")[:9]))
        planned += replicas


def apply_growth(cluster: Cluster) -> list[WorkloadSpec]:
    """Start the planned workloads in the model; returns them."""
    cluster.workloads.extend(cluster.growth)
    return list(cluster.growth)


# --- what the cluster should hold --------------------------------------------------------


def expected_objects(cluster: Cluster) -> dict[str, frozenset[str]]:
    """{"namespace/sha256.<hex>": pod names}: the ImageManifestVulns a correct run keeps, one per
    namespace and vulnerable scanned manifest."""
    out: dict[str, set[str]] = {}
    for w in cluster.workloads:
        names = w.pod_names()
        for c in w.containers:
            m = cluster.manifests[c.manifest]
            if m.state != "scanned" or not m.packages:
                continue
            out.setdefault(f"{w.namespace}/{m.digest.replace(':', '.')}", set()).update(names)
    return {k: frozenset(v) for k, v in out.items()}


# --- rendering: Kubernetes objects -----------------------------------------------------------


def image_ref(cluster: Cluster, hosts: list[str], manifest: int) -> tuple[str, str]:
    """(image as the pod spec names it, imageID as the runtime reports it)."""
    m = cluster.manifests[manifest]
    base = f"{hosts[m.host]}/{m.repository}"
    return f"{base}:{1 + manifest % 7}.{manifest % 11}", f"{base}@{m.digest}"


def namespace_body(cluster: Cluster, ns: str, n: int) -> dict[str, Any]:
    annotations = {"imvjob/notify": f"{ns.split('-')[0]}-team@example.com"} if n % 3 != 2 else {}
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"team": ns.split("-")[0], "bench.imvjob.io/synthetic": "true"},
                         "annotations": annotations}}


def owner_bodies(w: WorkloadSpec) -> list[dict[str, Any]]:
    """The ReplicaSet or Job that owns the pods (metadata only matters), for the snapshot's owner
    lookup; with no controllers running, they are created by hand."""
    owner = w.owner
    if owner is None or owner[0] not in ("ReplicaSet", "Job"):
        return []
    kind, name = owner
    parent = {"apiVersion": "apps/v1", "kind": "Deployment"} if kind == "ReplicaSet" else \
        {"apiVersion": "batch/v1", "kind": "CronJob"} if w.kind == "CronJob" else None
    meta: dict[str, Any] = {"name": name, "namespace": w.namespace, "labels": {"app": w.name}}
    if parent:
        meta["ownerReferences"] = [{**parent, "name": w.name, "uid": _uid("owner", w.namespace, w.name),
                                    "controller": True, "blockOwnerDeletion": True}]
    template = {"metadata": {"labels": {"app": w.name, "pod-template-hash": w.template_hash}},
                "spec": {"containers": [{"name": "c", "image": "registry.example/placeholder:1"}],
                         "restartPolicy": "Never" if kind == "Job" else "Always"}}
    if kind == "ReplicaSet":
        return [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
                 "spec": {"replicas": 0, "selector": {"matchLabels": {"app": w.name, "pod-template-hash": w.template_hash}},
                          "template": template}}]
    return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
             "spec": {"suspend": True, "template": template}}]


def _uid(*parts: object) -> str:
    h = sha("uid", *parts)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def pods_of(cluster: Cluster, hosts: list[str], w: WorkloadSpec) -> Iterator[tuple[str, dict, dict]]:
    """(name, pod body for create, status for the pods/status merge patch) of a workload's pods."""
    owner = w.owner
    owner_refs = []
    if owner is not None:
        api = {"ReplicaSet": "apps/v1", "Job": "batch/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1"}[owner[0]]
        owner_refs = [{"apiVersion": api, "kind": owner[0], "name": owner[1],
                       "uid": _uid("owner", w.namespace, owner[1]), "controller": True, "blockOwnerDeletion": True}]
    for r, name in enumerate(w.pod_names()):
        node = f"node-{(w.index * 7 + r) % 400:03d}"
        labels = {"app": w.name, "team": w.namespace.split("-")[0], "version": f"v{w.generation + 1}"}
        if w.kind == "Deployment":
            labels["pod-template-hash"] = w.template_hash
        if w.kind == "StatefulSet":
            labels["statefulset.kubernetes.io/pod-name"] = name
        spec_containers, spec_init, statuses, init_statuses = [], [], [], []
        for c in w.containers:
            image, image_id = image_ref(cluster, hosts, c.manifest)
            spec = {
                "name": c.name, "image": image, "imagePullPolicy": "IfNotPresent",
                "ports": [] if c.init else [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": f"{c.name.upper().replace('-', '_')}_{k}", "value": f"value-{k}-{w.name}"}
                        for k in ("MODE", "LOG_LEVEL", "REGION", "ENDPOINT", "TIMEOUT", "POOL")],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                                 {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                  "readOnly": True}],
                "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            }
            if not c.init:
                spec["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                          "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
                                          "failureThreshold": 3}
            status = {"name": c.name, "image": image, "imageID": image_id,
                      "containerID": "cri-o://" + sha("container", w.namespace, name, c.name),
                      "ready": not c.init, "restartCount": 0}
            if c.init:
                status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                                  "startedAt": "2026-05-01T06:00:00Z",
                                                  "finishedAt": "2026-05-01T06:00:03Z"}}
                spec_init.append(spec)
                init_statuses.append(status)
            else:
                status["started"] = True
                status["state"] = {"running": {"startedAt": "2026-05-01T06:00:05Z"}}
                spec_containers.append(spec)
                statuses.append(status)
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": w.namespace, "labels": labels,
                         "annotations": {"kubectl.kubernetes.io/default-container": w.containers[0].name,
                                         "prometheus.io/scrape": "true"}},
            "spec": {"containers": spec_containers, "serviceAccountName": "default", "nodeName": node,
                     "restartPolicy": "Never" if w.kind in ("Job", "CronJob") else "Always",
                     "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                     "terminationGracePeriodSeconds": 30, "enableServiceLinks": False,
                     "volumes": [{"name": "config", "configMap": {"name": f"{w.name}-config", "defaultMode": 420}},
                                 {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                                     {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                                     {"configMap": {"name": "kube-root-ca.crt",
                                                    "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
                     "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300},
                                     {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300}]},
        }
        if spec_init:
            body["spec"]["initContainers"] = spec_init
        if owner_refs:
            body["metadata"]["ownerReferences"] = owner_refs
        ip = f"10.{(w.index >> 8) % 256}.{w.index % 256}.{r % 250 + 2}"
        status_doc: dict[str, Any] = {
            "phase": "Running", "hostIP": f"192.168.{(w.index * 7 + r) % 400 // 250}.{(w.index * 7 + r) % 250 + 1}",
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": "2026-05-01T06:00:00Z", "qosClass": "Burstable",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "2026-05-01T06:00:06Z"}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": statuses,
        }
        if init_statuses:
            status_doc["initContainerStatuses"] = init_statuses
        yield name, body, {"status": status_doc}


# --- rendering: the registry's reports -------------------------------------------------------


def quay_report(cluster: Cluster, index: int) -> tuple[int, bytes]:
    """(HTTP status, body) of the Quay security API for one manifest: every package of the image,
    OS packages added by its base layer (shared by the images on that base release), the
    application's dependencies by its own layer."""
    m = cluster.manifests[index]
    if m.state == "missing":
        return 404, b'{"error_message": "Not Found"}'
    if m.state in ("queued", "unsupported"):
        return 200, json.dumps({"status": m.state, "data": None}).encode()
    ns_name, distro, version, fmt = FAMILIES[m.family]
    base_layer = "sha256:" + sha("base", m.family, m.base)
    app_layer = "sha256:" + sha("layer", m.index)
    features = [{"Name": f"{fmt}-base-{k}", "VersionFormat": fmt, "NamespaceName": ns_name, "AddedBy": base_layer,
                 "Version": f"{k % 9}.{k % 5}.{m.base}", "BaseScores": [], "CVEIds": [], "Vulnerabilities": []}
                for k in range(m.clean_packages)]
    for p in m.packages:
        package = cluster.packages[p]
        advs = [cluster.advisories[a] for a in package.advisories]
        if package.ecosystem >= 0:
            where, layer, source, fmt_ = ns_name, base_layer, {"DistroName": distro, "DistroVersion": version}, fmt
        else:
            eco, database = ECOSYSTEMS[-1 - package.ecosystem]
            where, layer, source, fmt_ = eco, app_layer, {"RepoName": database}, eco
        features.append({
            "Name": package.name, "VersionFormat": fmt_, "NamespaceName": where, "AddedBy": layer,
            "Version": package.version, "BaseScores": [a.score for a in advs], "CVEIds": [a.name for a in advs],
            "Vulnerabilities": [{
                "Severity": a.severity, "NamespaceName": where, "Link": a.link, "FixedBy": a.fixed_by,
                "Description": a.description, "Name": a.name,
                "Metadata": {"UpdatedBy": where, "RepoName": None, "RepoLink": None, "DistroName": None,
                             "DistroVersion": None, **source,
                             "NVD": {"CVSSv3": {"Vectors": a.vector, "Score": a.score}}}} for a in advs]})
    doc = {"status": "scanned", "data": {"Layer": {"Name": app_layer, "ParentName": base_layer,
                                                   "NamespaceName": ns_name, "IndexedByVersion": 4,
                                                   "Features": features}}}
    return 200, json.dumps(doc).encode()
