"""Our ImageManifestVuln CRD is the Container Security Operator's, as far as any reader can tell.

The oracle is the CRD of CSO's operator bundle (../shared/compat/imagemanifestvulns.secscan.
quay.redhat.com.crd.yaml), the one OperatorHub installs. A real API server with that CRD
installed judges a table of objects; the same server with ours installed must judge every object
the same way. Applying ours over an installed CSO CRD must change nothing in it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from controlplane import CRD_NAME, IMV_API, PROJECT_CRD, ControlPlane, unavailable

CSO_CRD = (Path(__file__).resolve().parents[2] / ".." / "shared" / "compat"
           / "imagemanifestvulns.secscan.quay.redhat.com.crd.yaml")
#: Keys the bundle's file puts beside `items` in the `vulnerabilities` schema: no schema
#: keywords, so the API server drops them (and basescores/cveids are pruned from objects).
NOT_KEYWORDS = ("basescores", "cveids")
CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
DIGEST = "sha256:" + "94033a42" * 8


@pytest.fixture
def cso_crd() -> Path:
    if not CSO_CRD.is_file():
        unavailable(f"CSO's CRD, the compatibility oracle, is missing: {CSO_CRD}")
    return CSO_CRD


def full_spec() -> dict:
    return {
        "image": "quay.io/team/app",
        "manifest": DIGEST,
        "namespaceName": "debian:12",
        "features": [{
            "name": "openssl",
            "versionformat": "dpkg",
            "namespaceName": "debian:12",
            "version": "3.0.11-1",
            "vulnerabilities": [{
                "name": "CVE-2024-0727",
                "namespaceName": "debian:12",
                "description": "Processing a maliciously formatted PKCS12 file may crash.",
                "link": "https://security-tracker.debian.org/tracker/CVE-2024-0727",
                "fixedby": "3.0.13-1",
                "severity": "Medium",
                "metadata": '{"UpdatedBy":"debian","RepoName":null}',
            }],
            "basescores": ["5.5"],
            "cveids": ["CVE-2024-0727"],
        }],
    }


def full_status() -> dict:
    return {
        "lastUpdate": "2019-12-27 22:00:48.328470155 +0000 UTC",
        "highestSeverity": "Medium",
        "unknownCount": 0, "negligibleCount": 0, "lowCount": 0, "mediumCount": 1,
        "highCount": 0, "criticalCount": 0, "defcon1Count": 0, "fixableCount": 1,
        "affectedPods": {"shop/web-7d9f": ["cri-o://0123abcd"], "shop/empty": []},
    }


def spec_with(path: tuple, value) -> dict:
    """full_spec() with the value at `path` (keys and list indexes) replaced, or removed
    when `value` is REMOVE."""
    spec = full_spec()
    target = spec
    for step in path[:-1]:
        target = target[step]
    if value is REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return spec


REMOVE = object()
VULN = ("features", 0, "vulnerabilities", 0)


@dataclass(frozen=True)
class Case:
    name: str
    body: dict                       # the object without apiVersion/kind/metadata
    valid: bool                      # what the schema says, read by hand
    through_status: bool = False     # sent as a status update of an existing object
    params: dict = field(default_factory=dict)


CASES = [
    # objects created through the main resource
    Case("full object", {"spec": full_spec(), "status": full_status()}, True),
    Case("empty spec", {"spec": {}}, True),
    Case("image and manifest only", {"spec": {"image": "quay.io/a/b", "manifest": DIGEST}}, True),
    Case("no features key", {"spec": spec_with(("features",), REMOVE)}, True),
    Case("empty features list", {"spec": spec_with(("features",), [])}, True),
    Case("empty basescore string", {"spec": spec_with(("features", 0, "basescores"), [""])}, True),
    # Not in the schema, so pruned whatever their type.
    Case("basescores as numbers", {"spec": spec_with(("features", 0, "basescores"), [5.5])}, True),
    Case("cveids as a string", {"spec": spec_with(("features", 0, "cveids"), "CVE-2024-0727")},
         True),
    Case("unknown spec field is pruned", {"spec": {**full_spec(), "extra": "x"}}, True),
    Case("invalid status is ignored on create",
         {"spec": full_spec(), "status": {"lowCount": -1, "highestSeverity": ""}}, True),
    Case("unknown field, strict validation", {"spec": {**full_spec(), "extra": "x"}}, False,
         params={"fieldValidation": "Strict"}),
    Case("missing spec", {}, False),
    Case("spec is a string", {"spec": "quay.io/a/b"}, False),
    Case("empty image", {"spec": spec_with(("image",), "")}, False),
    Case("empty manifest", {"spec": spec_with(("manifest",), "")}, False),
    Case("empty namespaceName", {"spec": spec_with(("namespaceName",), "")}, False),
    Case("manifest is a number", {"spec": spec_with(("manifest",), 12)}, False),
    Case("features is an object", {"spec": spec_with(("features",), {"name": "openssl"})}, False),
    Case("feature is a string", {"spec": spec_with(("features", 0), "openssl")}, False),
    Case("empty feature name", {"spec": spec_with(("features", 0, "name"), "")}, False),
    Case("empty feature version", {"spec": spec_with(("features", 0, "version"), "")}, False),
    Case("empty versionformat", {"spec": spec_with(("features", 0, "versionformat"), "")}, False),
    Case("empty severity", {"spec": spec_with((*VULN, "severity"), "")}, False),
    Case("empty fixedby", {"spec": spec_with((*VULN, "fixedby"), "")}, False),
    Case("empty link", {"spec": spec_with((*VULN, "link"), "")}, False),
    Case("metadata as an object, not a JSON string",
         {"spec": spec_with((*VULN, "metadata"), {"UpdatedBy": "debian"})}, False),
    Case("vulnerabilities is an object",
         {"spec": spec_with(("features", 0, "vulnerabilities"), {"name": "CVE-1"})}, False),
    # status updates through the status subresource
    Case("full status", {"status": full_status()}, True, through_status=True),
    Case("status with one count", {"status": {"highestSeverity": "Low", "lowCount": 3}}, True,
         through_status=True),
    Case("unknown status field is pruned", {"status": {"lowCount": 1, "note": "x"}}, True,
         through_status=True),
    Case("negative count", {"status": {"lowCount": -1}}, False, through_status=True),
    Case("count as a string", {"status": {"highCount": "3"}}, False, through_status=True),
    Case("fractional count", {"status": {"fixableCount": 1.5}}, False, through_status=True),
    Case("empty highestSeverity", {"status": {"highestSeverity": ""}}, False, through_status=True),
    Case("empty lastUpdate", {"status": {"lastUpdate": ""}}, False, through_status=True),
    Case("affected pod with a string, not a list",
         {"status": {"affectedPods": {"shop/web": "cri-o://0123"}}}, False, through_status=True),
    Case("affected pod with a number in its list",
         {"status": {"affectedPods": {"shop/web": [7]}}}, False, through_status=True),
    Case("affectedPods is a list", {"status": {"affectedPods": ["shop/web"]}}, False,
         through_status=True),
]


def judge(cp: ControlPlane, namespace: str) -> dict[str, tuple]:
    """How the installed CRD judges every case: (HTTP status, spec, status) as the server would
    store them, or (HTTP status, reason, fields named in the causes); nothing is stored
    (dryRun=All)."""
    objects = f"{IMV_API}/namespaces/{namespace}/imagemanifestvulns"
    base = "base-" + DIGEST.replace(":", ".")
    cp.call("POST", objects, json={
        "apiVersion": "secscan.quay.redhat.com/v1alpha1", "kind": "ImageManifestVuln",
        "metadata": {"name": base}, "spec": full_spec()})
    outcomes = {}
    for case in CASES:
        params = {"dryRun": "All", **case.params}
        if case.through_status:
            response = cp.request(
                "PATCH", f"{objects}/{base}/status", json=case.body, params=params,
                headers={"Content-Type": "application/merge-patch+json"})
        else:
            body = {"apiVersion": "secscan.quay.redhat.com/v1alpha1", "kind": "ImageManifestVuln",
                    "metadata": {"name": "case"}, **copy.deepcopy(case.body)}
            response = cp.request("POST", objects, json=body, params=params)
        answer = response.json()
        if response.ok:
            # What would be stored: shows which fields were pruned.
            outcomes[case.name] = (response.status_code, answer.get("spec"), answer.get("status"))
        else:
            causes = answer.get("details", {}).get("causes", [])
            outcomes[case.name] = (response.status_code, answer.get("reason"),
                                   tuple(sorted(c.get("field", "") for c in causes)))
    return outcomes


def delete_crd(cp: ControlPlane) -> None:
    """Delete the installed CRD and wait until it and its objects are gone."""
    cp.request("DELETE", CRD_PATH)
    deadline = time.monotonic() + 60
    while cp.request("GET", CRD_PATH).status_code != 404:
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {CRD_NAME} still present 60s after its deletion")
        time.sleep(0.1)


def install(cp: ControlPlane, crd_file: Path) -> dict:
    cp.apply_yaml(crd_file)
    return cp.wait_crd_established(CRD_NAME)


def test_our_crd_has_csos_schema_names_and_versions(cso_crd):
    ours, theirs = (yaml.safe_load(p.read_text()) for p in (PROJECT_CRD, cso_crd))
    vulns = theirs["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["features"]["items"]["properties"]["vulnerabilities"]
    for key in NOT_KEYWORDS:
        del vulns[key]
    assert ours["spec"]["names"]["shortNames"] == ["vuln"]
    assert ours["metadata"]["name"] == theirs["metadata"]["name"] == CRD_NAME
    assert ours["apiVersion"] == theirs["apiVersion"]
    for key in ("group", "scope", "names"):
        assert ours["spec"][key] == theirs["spec"][key], key
    assert [v["name"] for v in ours["spec"]["versions"]] == ["v1alpha1"]
    for mine, cso in zip(ours["spec"]["versions"], theirs["spec"]["versions"], strict=True):
        assert mine["schema"]["openAPIV3Schema"] == cso["schema"]["openAPIV3Schema"]
        for key in ("name", "served", "storage", "subresources"):
            assert mine.get(key) == cso.get(key), key
    assert ours["spec"] == theirs["spec"]  # nothing else either


@pytest.mark.controlplane
def test_our_crd_judges_objects_exactly_as_csos(control_plane: ControlPlane, namespace, cso_crd):
    objects = f"{IMV_API}/namespaces/{namespace}/imagemanifestvulns"
    ours_installed = True
    try:
        # 1. CSO's CRD, as on a cluster where the operator is installed.
        delete_crd(control_plane)
        ours_installed = False
        stored = install(control_plane, cso_crd)
        generation = stored["metadata"]["generation"]
        cso_outcomes = judge(control_plane, namespace)
        assert {name: out[0] < 300 for name, out in cso_outcomes.items()} == {
            case.name: case.valid for case in CASES
        }, "the table's expectations do not match what CSO's CRD accepts"

        existing = control_plane.call("POST", objects, json={
            "apiVersion": "secscan.quay.redhat.com/v1alpha1", "kind": "ImageManifestVuln",
            "metadata": {"name": DIGEST.replace(":", ".")}, "spec": full_spec()})
        existing = control_plane.call(
            "PUT", f"{objects}/{existing['metadata']['name']}/status",
            json={**existing, "status": full_status()})

        # 2. Ours applied over it: the server sees no change at all, the objects stay.
        crd = install(control_plane, PROJECT_CRD)
        assert crd["metadata"]["generation"] == generation, \
            "applying our CRD over CSO's changed its spec"
        assert control_plane.call("GET", f"{objects}/{existing['metadata']['name']}") == existing

        # 3. Ours alone, installed fresh, judges every case the same way.
        delete_crd(control_plane)
        assert install(control_plane, PROJECT_CRD)["spec"] == stored["spec"], \
            "the API server stores our CRD differently from the bundle's"
        ours_installed = True
        assert judge(control_plane, namespace) == cso_outcomes, \
            "our CRD judges some objects differently from CSO's"
    finally:
        if not ours_installed:
            delete_crd(control_plane)
            install(control_plane, PROJECT_CRD)
