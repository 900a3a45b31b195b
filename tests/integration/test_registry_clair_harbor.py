"""Clair v4 and Harbor backends against simulated services (real sample reports)."""
from __future__ import annotations

import base64
import hashlib
import json

from registry_sim import (ClairRole, HarborRole, RecordingLog, TokenRegistryRole, compat_bytes, digest,  # noqa: F401
                          registry_settings, sim_ca, sims)

from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests

PSK = b"0123456789abcdef0123456789abcdef"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def psk_file(tmp_path, key: bytes = PSK) -> str:
    path = tmp_path / "clair-psk"
    path.write_text(base64.b64encode(key).decode())
    return str(path)


def pull_secret(host: str, user: str, password: str) -> dict:
    doc = {"auths": {host: {"username": user, "password": password}}}
    return {"data": {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode()).decode()}}


class Secrets(dict):
    def get_secret(self, namespace: str, name: str):
        return self.get((namespace, name))


def image_manifest(layers: list[dict]) -> tuple[str, bytes]:
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_V2,
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                  "digest": digest("config")},
                       "layers": layers}, indent=2).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest(), body


def test_clair_report_that_exists_is_one_request(sims, registry_settings, tmp_path):
    clair_host = sims()
    clair = ClairRole(clair_host, psk=PSK)
    d = "sha256:4b42c2e36b0bedf017e14dc270f315e627a2a0030f453687a06375fa88694298"
    clair.reports[d] = compat_bytes("clair", "vulnerability_report.json")
    ref = ImageRef("registry.corp.example", "team/app", d)
    settings = registry_settings(clair_url=clair_host.url, clair_host=("*.corp.example",),
                                 clair_psk_file=psk_file(tmp_path))
    results = scan_manifests([ScanRequest(ref)], settings, secrets=None, log=RecordingLog())
    result = results[ref]
    assert (result.state, result.backend) == (ScanState.SCANNED, "clair")
    assert (len(result.report.features), len(result.report.vulnerable_features)) == (57, 7)
    assert len(clair_host.seen) == 1 and clair.jwt_errors == []


def test_clair_indexes_an_unknown_manifest_with_layers_fetched_by_token(sims, registry_settings, tmp_path):
    clair_host, registry = sims(), sims()
    clair = ClairRole(clair_host, psk=PSK)
    clair.report_after_index = compat_bytes("clair", "vulnerability_report.json")
    reg = TokenRegistryRole(registry, user="puller", password="pull-pw")
    layers = [{"mediaType": GZIP_LAYER, "size": 10, "digest": digest("layer", 1)},
              {"mediaType": GZIP_LAYER, "size": 10, "digest": digest("layer", 2)},
              {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 10,
               "digest": digest("layer", 3), "urls": ["https://cdn.example.com/layer3"]}]
    d, body = image_manifest(layers)
    reg.manifests[("team/app", d)] = (DOCKER_V2, body)
    ref = ImageRef(registry.host, "team/app", d)
    secrets = Secrets({("ns", "pull"): pull_secret(registry.host, "puller", "pull-pw")})
    settings = registry_settings(clair_url=clair_host.url, clair_host=(registry.host,),
                                 clair_psk_file=psk_file(tmp_path))
    results = scan_manifests([ScanRequest(ref, (("ns", "pull"),))], settings, secrets=secrets, log=RecordingLog())

    assert results[ref].state is ScanState.SCANNED
    assert len(results[ref].report.features) == 57
    assert [(s.method, s.path.split("/")[1]) for s in clair_host.seen] == [
        ("GET", "matcher"), ("POST", "indexer"), ("GET", "matcher")]
    (indexed,) = clair.indexed
    (token,) = reg.tokens
    blob = f"{registry.url}/v2/team/app/blobs/"
    bearer = {"Authorization": [f"Bearer {token}"]}
    assert indexed == {"hash": d, "layers": [
        {"hash": digest("layer", 1), "uri": blob + digest("layer", 1), "headers": bearer},
        {"hash": digest("layer", 2), "uri": blob + digest("layer", 2), "headers": bearer},
        {"hash": digest("layer", 3), "uri": "https://cdn.example.com/layer3", "headers": {}}]}
    # The pull secret's password went to the registry's token service, and nowhere else.
    password_header = "Basic " + base64.b64encode(b"puller:pull-pw").decode()
    assert [s.authorization for s in registry.requests("GET", "/token")] == [password_header]
    assert all(password_header not in (s.authorization or "") and b"pull-pw" not in s.body for s in clair_host.seen)
    assert clair.jwt_errors == []


def test_clair_states(sims, registry_settings, tmp_path):
    clair_host, registry = sims(), sims()
    clair = ClairRole(clair_host, psk=PSK)
    reg = TokenRegistryRole(registry, user="u", password="p")
    secrets = Secrets({("ns", "pull"): pull_secret(registry.host, "u", "p")})
    d, body = image_manifest([{"mediaType": GZIP_LAYER, "size": 1, "digest": digest("l")}])
    reg.manifests[("team/app", d)] = (DOCKER_V2, body)
    index_body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": [{"digest": d, "platform": {"os": "linux"}}]}).encode()
    index_digest = "sha256:" + hashlib.sha256(index_body).hexdigest()
    reg.manifests[("team/app", index_digest)] = ("application/vnd.oci.image.index.v1+json", index_body)
    liar = digest("liar")
    reg.manifests[("team/app", liar)] = (DOCKER_V2, body)

    def run(ref_digest, **changes):
        ref = ImageRef(registry.host, "team/app", ref_digest)
        settings = registry_settings(clair_url=clair_host.url, clair_host=(registry.host,),
                                     clair_psk_file=psk_file(tmp_path, changes.pop("key", PSK)), **changes)
        result = scan_manifests([ScanRequest(ref, (("ns", "pull"),))], settings, secrets=secrets,
                                log=RecordingLog())[ref]
        return result.state, result.detail

    clair.index_result = "IndexError"
    assert run(d) == (ScanState.FAILED, "Clair could not index the manifest: IndexError")
    clair.index_result = "FetchingLayers"
    assert run(d) == (ScanState.QUEUED, "Clair is indexing the manifest (FetchingLayers)")
    clair.index_result = "IndexFinished"  # but no report appears
    assert run(d) == (ScanState.QUEUED, "Clair has not finished indexing the manifest")
    assert run(index_digest) == (ScanState.UNSUPPORTED, "image index (multi-platform): the platform manifest the "
                                                        "pods run is not known here")
    assert run(liar) == (ScanState.ERROR, "the registry sent a manifest that does not match its digest")
    assert run(digest("absent")) == (ScanState.NOT_FOUND, "manifest: registry does not know this manifest (HTTP 404)")
    assert run(d, key=b"another key of thirty-two bytes!") == (
        ScanState.UNAUTHORIZED, "Clair refused the job's token (HTTP 401); check the PSK and issuer")
    assert run(d, clair_issuer="someone-else")[0] is ScanState.UNAUTHORIZED


def test_clair_without_pull_credentials_for_a_private_registry(sims, registry_settings, tmp_path):
    clair_host, registry = sims(), sims()
    ClairRole(clair_host, psk=PSK)
    TokenRegistryRole(registry, user="u", password="p")
    ref = ImageRef(registry.host, "team/app", digest(1))
    settings = registry_settings(clair_url=clair_host.url, clair_host=(registry.host,),
                                 clair_psk_file=psk_file(tmp_path))
    result = scan_manifests([ScanRequest(ref)], settings, secrets=Secrets(), log=RecordingLog())[ref]
    assert (result.state, result.detail) == (
        ScanState.UNAUTHORIZED, "the registry's token service refused an anonymous pull token and no pull secret "
                                f"has an entry for {registry.host}")


def test_harbor_report_with_a_nested_repository(sims, registry_settings):
    host = sims()
    harbor = HarborRole(host)
    harbor.accepted_auth = {"Basic " + base64.b64encode(b"robot$ci:pw").decode()}
    harbor.reports[("proj", "team%252Fapp", digest(1))] = compat_bytes("harbor", "additions_vulnerabilities.json")
    harbor.reports[("proj", "team%252Fapp", digest(2))] = b"{}"
    secrets = Secrets({("ns", "pull"): pull_secret(host.host, "robot$ci", "pw")})
    refs = [ImageRef(host.host, "proj/team/app", digest(i)) for i in (1, 2, 3)]
    results = scan_manifests([ScanRequest(r, (("ns", "pull"),)) for r in refs],
                             registry_settings(harbor_host=(host.host,)), secrets=secrets, log=RecordingLog())
    scanned, empty, missing = (results[r] for r in refs)
    assert (scanned.state, scanned.backend) == (ScanState.SCANNED, "harbor")
    assert [(f.name, len(f.vulnerabilities)) for f in scanned.report.features] == [("bash", 1)]
    assert (empty.state, empty.detail) == (ScanState.NOT_FOUND, "Harbor holds no vulnerability report for this "
                                                                "artifact (not scanned there yet)")
    assert (missing.state, missing.detail) == (ScanState.NOT_FOUND, "Harbor does not know this manifest (HTTP 404)")
    assert not host.requests("GET", r"/\.well-known/.*")  # a configured Harbor is not probed for Quay
    assert all(s.headers.get("x-accept-vulnerabilities", "").startswith("application/vnd.security.vulnerability")
               for s in host.seen)
