"""The spec of an ImageManifestVuln (pure): a manifest's vulnerable packages as the CRD holds them,
pruned to the installed schema and shrunk to fit in etcd, with the severity counts of its status.
Which objects exist, and with which pods, is job.desired's work.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Callable, Iterable

from job.codec import encode_json
from job.model import SEVERITIES, SEVERITY_RANK, Feature, ImageRef, ScanResult, Vulnerability

#: etcd refuses requests over 1.5 MiB; stay well below, with room for metadata and labels.
MAX_OBJECT_BYTES = 1_000_000
_COUNT_FIELDS = {name: name[0].lower() + name[1:] + "Count" for name in SEVERITIES}


def format_score(score: float) -> str:
    """Go's "%.1f": round half to even on the exact binary value, as Python's % does."""
    return "%.1f" % score


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """The CRD sets minLength 1 on every string: empty strings and empty lists are left out."""
    if value not in ("", None, [], {}):
        target[key] = value


class Specs:
    """The spec of each manifest, built once and shared by every namespace that runs it, from
    vulnerability and package documents built once too (registries return the same advisory
    objects for every manifest that has them)."""

    def __init__(self, spec_schema: dict[str, Any] | None = None) -> None:
        self.spec_schema = spec_schema
        # Each advisory and package is pruned once, when its document is built, with the schema
        # prune_to_schema would apply to it inside a spec: not again inside every spec that lists it.
        self.feature_schema = _items_schema(_child_schema(spec_schema, "features"))
        self.vulnerability_schema = _items_schema(_child_schema(self.feature_schema, "vulnerabilities"))
        self.vulnerabilities: dict[int, dict[str, Any]] = {}
        self.features: dict[int, dict[str, Any]] = {}
        self.specs: dict[ImageRef, tuple[dict[str, Any], list[str], bytes, dict[str, Any]]] = {}
        self._keep: list[Any] = []  # the objects whose id() keys the caches stay alive meanwhile

    def vulnerability(self, v: Vulnerability) -> dict[str, Any]:
        doc = self.vulnerabilities.get(id(v))
        if doc is None:
            doc = vulnerability_doc(v)
            if self.spec_schema is not None:
                doc = prune_to_schema(doc, self.vulnerability_schema)
            self.vulnerabilities[id(v)] = doc
            self._keep.append(v)
        return doc

    def feature(self, f: Feature) -> dict[str, Any]:
        doc = self.features.get(id(f))
        if doc is None:
            doc = feature_doc(f, vulnerability=self.vulnerability)
            if self.spec_schema is not None:
                doc = _prune_but(doc, self.feature_schema, "vulnerabilities")
            self.features[id(f)] = doc
            self._keep.append(f)
        return doc

    def spec(self, result: ScanResult) -> tuple[dict[str, Any], list[str], bytes, dict[str, Any]]:
        """(spec, shrink steps, canonical JSON of the spec, severity status) of a scanned manifest.
        Kept until forget_specs(): the caller goes manifest by manifest, so that only one
        manifest's canonical JSON (up to a megabyte) is held at a time."""
        found = self.specs.get(result.ref)
        if found is None:
            assert result.report is not None
            features = result.report.vulnerable_features
            spec: dict[str, Any] = {"image": result.ref.image, "manifest": result.ref.digest}
            _put(spec, "namespaceName", result.report.namespace_name)
            spec["features"] = [self.feature(f) for f in features]
            if self.spec_schema is not None:
                spec = _prune_but(spec, self.spec_schema, "features")
            spec_json = canonical_json(spec)  # its length is the size shrink() measures: one encoding
            spec, shrunk = shrink(spec, size=len(spec_json))
            if shrunk:
                spec_json = canonical_json(spec)
            found = self.specs[result.ref] = (spec, shrunk, spec_json, severity_status(features))
        return found

    def forget_specs(self) -> None:
        self.specs.clear()


def prune_to_schema(doc: Any, schema: Any) -> Any:
    """Pure: `doc` as the API server stores it under a structural schema, which drops the fields the
    schema does not name (the operator bundle's CRD has no place for a feature's basescores and
    cveids). Comparing what exists with that, not with what was sent, keeps reruns write-free."""
    if not isinstance(schema, dict):
        return doc
    if isinstance(doc, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return doc
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(properties, dict):
            return {k: prune_to_schema(v, properties[k]) for k, v in doc.items() if k in properties}
        if isinstance(extra, dict):
            return {k: prune_to_schema(v, extra) for k, v in doc.items()}
        return doc if extra is True else {}
    if isinstance(doc, list):
        return [prune_to_schema(v, schema.get("items")) for v in doc]
    return doc


def _child_schema(schema: Any, key: str) -> Any:
    """The schema prune_to_schema prunes an object's `key` with (None: kept as it is, or dropped
    with the whole key)."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return None
    properties, extra = schema.get("properties"), schema.get("additionalProperties")
    if isinstance(properties, dict):
        return properties.get(key)
    return extra if isinstance(extra, dict) else None


def _items_schema(schema: Any) -> Any:
    """The schema prune_to_schema prunes a list's items with."""
    return schema.get("items") if isinstance(schema, dict) else None


_PRUNED = object()


def _prune_but(doc: dict[str, Any], schema: Any, key: str) -> dict[str, Any]:
    """prune_to_schema(doc, schema) when doc[key] is pruned already (with _child_schema(schema,
    key)): the rest is pruned, doc[key] only kept or dropped, in its place."""
    if key not in doc:
        return prune_to_schema(doc, schema)
    pruned = prune_to_schema({k: (_PRUNED if k == key else v) for k, v in doc.items()}, schema)
    return {k: (doc[key] if v is _PRUNED else v) for k, v in pruned.items()}


def vulnerability_doc(v: Vulnerability) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    _put(doc, "name", v.name)
    _put(doc, "namespaceName", v.namespace_name)
    _put(doc, "description", v.description)
    _put(doc, "link", v.link)
    _put(doc, "fixedby", v.fixed_by)
    _put(doc, "severity", v.severity)
    if v.metadata is not None:
        _put(doc, "metadata", json.dumps(v.metadata, separators=(",", ":"), ensure_ascii=False))
    return doc


def feature_doc(f: Feature, *, vulnerability: Callable[[Vulnerability], dict[str, Any]] = vulnerability_doc
                ) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    _put(doc, "name", f.name)
    _put(doc, "versionformat", f.version_format)
    _put(doc, "namespaceName", f.namespace_name)
    _put(doc, "version", f.version)
    _put(doc, "vulnerabilities", [vulnerability(v) for v in f.vulnerabilities])
    _put(doc, "basescores", [format_score(s) for s in f.base_scores])
    _put(doc, "cveids", [c for c in f.cve_ids if c])
    return doc


def severity_status(features: Iterable[Feature]) -> dict[str, Any]:
    """Counts of vulnerability entries per severity (entries, not distinct names), fixable entries,
    and the highest severity; zero counts left out."""
    counts = dict.fromkeys(SEVERITIES, 0)
    fixable = 0
    for feature in features:
        for v in feature.vulnerabilities:
            counts[v.severity if v.severity in counts else "Unknown"] += 1
            fixable += bool(v.fixed_by)
    status: dict[str, Any] = {}
    present = [s for s in SEVERITIES if counts[s]]
    if present:
        status["highestSeverity"] = max(present, key=SEVERITY_RANK.__getitem__)
    for severity in SEVERITIES:
        if counts[severity]:
            status[_COUNT_FIELDS[severity]] = counts[severity]
    if fixable:
        status["fixableCount"] = fixable
    return status


def canonical_json(doc: Any) -> bytes:
    """The JSON the content hashes are taken of: keys sorted, compact, UTF-8 as job.codec.encode_json
    sends it (a lone surrogate, which json accepts from a registry, as "?"). Sorting the keys does
    not change the length: len(canonical_json(doc)) == _size(doc)."""
    return encode_json(doc, sort_keys=True)


def shrink(spec: dict[str, Any], limit: int = MAX_OBJECT_BYTES, *, size: int | None = None
           ) -> tuple[dict[str, Any], list[str]]:
    """Make a too-large spec fit, predictably: descriptions shortened, then dropped, then metadata
    dropped, then vulnerability entries left out from the least severe up, so that every entry of
    a severity that fits is kept before any entry of a lower one. Returns the spec and the steps
    taken; a step `left-out:Critical=3;Low=1334` counts the entries left out per severity. `size`:
    _size(spec), when the caller has it."""
    steps: list[str] = []
    if (_size(spec) if size is None else size) <= limit:
        return spec, steps
    spec = json.loads(json.dumps(spec))

    def each_vuln() -> Iterable[dict[str, Any]]:
        for feature in spec.get("features", []):
            yield from feature.get("vulnerabilities", [])

    for v in each_vuln():
        if len(v.get("description", "")) > 200:
            v["description"] = v["description"][:199] + "…"
    steps.append("descriptions-shortened")
    if _size(spec) > limit:
        for v in each_vuln():
            v.pop("description", None)
        steps[-1] = "descriptions"
    if _size(spec) > limit:
        for v in each_vuln():
            v.pop("metadata", None)
        steps.append("metadata")
    if _size(spec) > limit:
        spec, left_out = _keep_most_severe(spec, limit)
        steps.append("left-out:" + ";".join(f"{s}={n}" for s, n in sorted(
            left_out.items(), key=lambda item: -SEVERITY_RANK.get(item[0], 0))))
    return spec, steps


def _size(doc: Any) -> int:
    """Bytes of `doc` as job.codec.encode_json sends it."""
    return len(encode_json(doc))


def left_out_counts(steps: Iterable[str]) -> dict[str, int]:
    """Pure: {severity: entries left out} from shrink()'s steps (or the shrunk annotation's value)."""
    for step in steps:
        if step.startswith("left-out:"):
            pairs = (item.partition("=") for item in step[len("left-out:"):].split(";") if item)
            return {severity: int(count) for severity, _, count in pairs if count.isdigit()}
    return {}


def _keep_most_severe(spec: dict[str, Any], limit: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Entries added most severe first (in report order within a severity) while the spec still
    fits; an entry too large to fit is left out and the next ones are still tried. Sizes are added
    up exactly as compact JSON encodes them, so only one encoding of each part is made."""
    features = spec.get("features", [])
    base = {k: v for k, v in spec.items() if k != "features"}
    budget = limit - _size(base) - len(',"features":[]')
    # The cost of a feature without its entries: its other fields plus `"vulnerabilities":[]`.
    bare = [_size({k: v for k, v in f.items() if k != "vulnerabilities"}) + len(',"vulnerabilities":[]')
            for f in features]
    entries = [(-SEVERITY_RANK.get(v.get("severity", "Unknown"), 0), fi, vi)
               for fi, f in enumerate(features) for vi, v in enumerate(f.get("vulnerabilities", []))]
    kept: dict[int, list[int]] = {}
    used, left_out = 0, Counter()
    for _, fi, vi in sorted(entries):
        vuln = features[fi]["vulnerabilities"][vi]
        cost = _size(vuln) + (len(kept[fi]) > 0 if fi in kept else bare[fi] + (len(kept) > 0))
        if used + cost <= budget:
            used += cost
            kept.setdefault(fi, []).append(vi)
        else:
            left_out[vuln.get("severity", "Unknown")] += 1
    out = dict(base)
    kept_features = [{**features[fi], "vulnerabilities": [features[fi]["vulnerabilities"][vi]
                                                          for vi in sorted(kept[fi])]} for fi in sorted(kept)]
    if kept_features:
        out["features"] = kept_features
    return out, dict(left_out)
