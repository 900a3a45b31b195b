"""Specs built for an installed CRD: each advisory and package pruned once, when its document is
built, gives exactly the spec that pruning each whole spec gives, whatever the schema's shape."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from job.imv_spec import Specs, prune_to_schema
from job.model import Feature, Vulnerability
from tests.factories import make_feature, make_ref, make_result, make_vuln

ROOT = Path(__file__).resolve().parents[2]


def _crd_spec_schema() -> dict:
    crd = yaml.safe_load((ROOT / "imagemanifestvuln.crd.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _obj(**properties) -> dict:
    return {"type": "object", "properties": properties}


def _list(items) -> dict:
    return {"type": "array", "items": items}


VULN_NAME = _obj(name={"type": "string"}, severity={"type": "string"})
SCHEMAS = {
    "the CRD shipped": _crd_spec_schema(),
    "no basescores nor cveids (the operator bundle's)": _obj(
        image={"type": "string"}, manifest={"type": "string"}, namespaceName={"type": "string"},
        features=_list(_obj(name={"type": "string"}, version={"type": "string"}, vulnerabilities=_list(VULN_NAME)))),
    "spec kept whole": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "features kept whole": _obj(image={"type": "string"}, features={"type": "array"}),
    "features of preserved objects": _obj(features=_list({"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True})),
    "vulnerabilities as a map of anything": _obj(features=_list(_obj(
        name={"type": "string"}, vulnerabilities={"type": "array", "items": {"type": "object",
                                                                             "additionalProperties": True}}))),
    "spec as additionalProperties": {"type": "object", "additionalProperties": _list(_obj(name={"type": "string"}))},
    "spec without features": _obj(image={"type": "string"}, manifest={"type": "string"}),
    "spec of no properties": {"type": "object"},
    "spec that is not an object": "x",
    "items that are not objects": _obj(features={"type": "array", "items": "x"}),
}


def _results():
    shared = make_vuln("CVE-2024-0001", "Critical", fixed_by="3.0.2", cvss=9.8, description="d")
    base = make_feature("openssl", "3.0.1", shared, make_vuln("CVE-2024-0002", "Low"))
    scored = Feature(name="zlib", version="1.2", version_format="rpm", namespace_name="rhel:9",
                     base_scores=(7.5,), cve_ids=("CVE-2024-0003",),
                     vulnerabilities=(Vulnerability("CVE-2024-0003", "High", metadata={"UpdatedBy": "x"}), shared))
    return [make_result(make_ref(f"team/app{i}"), base, *([scored] if i % 2 else [])) for i in range(4)]


@pytest.mark.parametrize("name", SCHEMAS)
def test_specs_pruned_part_by_part_are_specs_pruned_whole(name: str) -> None:
    schema = SCHEMAS[name]
    whole, by_part = Specs(None), Specs(schema)
    for result in _results():
        spec, shrunk, spec_json, counts = by_part.spec(result)
        expected = prune_to_schema(whole.spec(result)[0], schema)
        assert spec == expected and list(spec) == list(expected)  # the same fields, in the same order
        assert spec_json == Specs(schema).spec(result)[2]  # the hashes do not depend on what was built before
        assert shrunk == [] and counts == whole.spec(result)[3]
