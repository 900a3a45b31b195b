"""Plain data that flows between the stages.

Frozen dataclasses with slots: cheap to hold 50,000 pods, safe to share between threads.
Every stage takes and returns these; none of them carries I/O.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

#: The ImageManifestVuln's API group, version, resource and kind (docs/compatibility.md): named here
#: once, for the objects the job writes (job.desired, job.apply) and the paths it asks (job.kube).
IMV_GROUP = "secscan.quay.redhat.com"
IMV_VERSION = "v1alpha1"
IMV_PLURAL = "imagemanifestvulns"
IMV_KIND = "ImageManifestVuln"
IMV_API_VERSION = f"{IMV_GROUP}/{IMV_VERSION}"

#: ImageManifestVuln severities, lowest to highest (docs/compatibility.md).
SEVERITIES: tuple[str, ...] = ("Unknown", "Negligible", "Low", "Medium", "High", "Critical", "Defcon1")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}


def normalize_severity(value: object) -> str:
    """Map a registry's severity word to one of SEVERITIES (case-insensitive); else Unknown."""
    if isinstance(value, str):
        word = value.strip().lower()
        for name in SEVERITIES:
            if name.lower() == word:
                return name
        if word in ("important",):  # Red Hat's word for High
            return "High"
        if word in ("moderate",):
            return "Medium"
        if word in ("none", "info", "informational"):
            return "Negligible"
    return "Unknown"


def cvss_score(value: Any) -> float | None:
    """A CVSS base score from a registry: a number from 0 to 10, or its text (Quay's may be ""); None
    for anything else. JSON numbers have no bound: a 400-digit integer fits no float, and NaN would
    sort the reports differently from run to run."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        score = float(value)
    except OverflowError:
        return None
    return score if 0.0 <= score <= 10.0 else None  # NaN is neither


def severity_from_cvss(score: float | None) -> str:
    """CVSS v3 qualitative rating. 10.0 is Critical (Quay wrongly maps it to Unknown)."""
    if score is None:
        return "Unknown"
    if score >= 9.0:
        return "Critical"
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    if score > 0.0:
        return "Low"
    return "Negligible"


@dataclass(frozen=True, slots=True, order=True)
class ImageRef:
    """One image manifest in one repository of one registry."""

    host: str  # "quay.io", "docker.io", "registry.local:5000"
    repository: str  # "ns/repo", "library/nginx"
    digest: str  # "sha256:<64 hex>"

    @property
    def image(self) -> str:
        """spec.image: host and repository path, no tag, no digest."""
        return f"{self.host}/{self.repository}"

    @property
    def name(self) -> str:
        """metadata.name of the ImageManifestVuln: the digest with ':' replaced by '.'."""
        return self.digest.replace(":", ".")

    def __str__(self) -> str:
        return f"{self.image}@{self.digest}"


class ContainerKind(str, enum.Enum):
    CONTAINER = "container"
    INIT = "init"
    EPHEMERAL = "ephemeral"


@dataclass(frozen=True, slots=True)
class Workload:
    """The top owner of a pod: Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet or Pod."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a running pod, as its status reports it."""

    name: str
    kind: ContainerKind
    image: str  # the reference the pod spec asked for
    container_id: str  # "cri-o://…", "containerd://…"; may be "" before it started
    ref: ImageRef | None  # None when the manifest could not be determined
    problem: str = ""  # why ref is None, in plain words


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    uid: str
    workload: Workload
    service_account: str
    pull_secrets: tuple[str, ...]
    containers: tuple[Container, ...]

    @property
    def key(self) -> str:
        """The label name / affectedPods key: "<namespace>/<pod>"."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the input that was reported and skipped (a malformed pod, an unparsable imageID)."""

    where: str  # "ns/pod", "ns/pod container c", "registry quay.io"
    message: str


@dataclass(slots=True)
class Snapshot:
    """Every running pod the run looks at, taken in one paginated LIST."""

    taken_at: str  # RFC 3339 UTC
    cluster: str
    pods: list[Pod]
    namespaces: dict[str, Namespace]
    problems: list[Problem]
    source: str = "cluster"  # "cluster" or the path of a pod list file
    pages: int = 0
    #: Namespaces that were selected for the run; None means all namespaces.
    scope: tuple[str, ...] | None = None
    #: The label selector that narrowed the LIST: a pod it did not list is not known to be gone.
    selector: str = ""
    #: What the run saw but could not read in full, so nothing of it may be removed: pod keys
    #: ("ns/pod": a malformed pod, a container whose manifest is unknown), namespaces (an item
    #: without a name) and "*" (an item without a namespace, a pod list that is not whole).
    unsure: set[str] = field(default_factory=set)

    def refs(self) -> list[ImageRef]:
        """Distinct manifests that running containers use, sorted."""
        return sorted({c.ref for p in self.pods for c in p.containers if c.ref is not None})


# --- scan results --------------------------------------------------------------------


class ScanState(str, enum.Enum):
    SCANNED = "scanned"
    QUEUED = "queued"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"  # the scan failed at the registry
    NOT_FOUND = "not found"
    NO_API = "no security API"
    UNAUTHORIZED = "unauthorized"
    UNREACHABLE = "unreachable"
    ERROR = "error"

    @property
    def is_job_error(self) -> bool:
        """Errors of the job's own making or reach: exit 2, the objects are kept as they were."""
        return self in (ScanState.UNAUTHORIZED, ScanState.UNREACHABLE, ScanState.ERROR)


@dataclass(frozen=True, slots=True)
class Vulnerability:
    name: str
    severity: str  # one of SEVERITIES
    namespace_name: str = ""
    description: str = ""
    link: str = ""  # may hold several URLs separated by spaces
    fixed_by: str = ""
    metadata: dict[str, Any] | None = None  # the registry's raw Metadata object
    cvss_score: float | None = None
    cvss_vector: str = ""


@dataclass(frozen=True, slots=True)
class Feature:
    """A package in the image, with its vulnerabilities."""

    name: str
    version: str
    version_format: str = ""
    namespace_name: str = ""
    added_by: str = ""
    base_scores: tuple[float, ...] = ()
    cve_ids: tuple[str, ...] = ()
    vulnerabilities: tuple[Vulnerability, ...] = ()


@dataclass(frozen=True, slots=True)
class VulnReport:
    """A manifest's vulnerability report in Quay's shape, whichever backend produced it."""

    namespace_name: str  # the scanned layer's NamespaceName, e.g. "debian:12"
    features: tuple[Feature, ...]

    @property
    def vulnerable_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.vulnerabilities)


@dataclass(frozen=True, slots=True)
class ScanResult:
    ref: ImageRef
    state: ScanState
    report: VulnReport | None = None  # set only when state is SCANNED
    detail: str = ""  # the reason, in plain words, when not SCANNED
    backend: str = ""  # "quay", "clair", "harbor", "offline"
    page_url: str = ""  # the image's own vulnerability page on its registry, when known


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """One distinct manifest to ask about, with the pull secrets that may open its registry."""

    ref: ImageRef
    #: (namespace, secret name) pairs: the pods' imagePullSecrets, then their ServiceAccounts'.
    pull_secrets: tuple[tuple[str, str], ...] = ()


# --- apply outcome -------------------------------------------------------------------------


@dataclass(slots=True)
class ApplyOutcome:
    """What the apply stage did (or would do, with --check). Object keys are "namespace/name"."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Objects left as they were because their manifest's scan failed this run.
    kept: list[str] = field(default_factory=list)
    #: ImageManifestVulns without our label, left alone (no --adopt).
    unmanaged: list[str] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)
    #: Per-object diffs, when asked for (--diff).
    diffs: dict[str, str] = field(default_factory=dict)
    #: Objects shrunk to fit etcd: {key: {severity: entries left out}} (the reports list them all).
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)
    dry_run: bool = False
    #: Where the objects went: "cluster" or the path of the YAML file written offline.
    target: str = "cluster"
