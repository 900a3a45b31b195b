"""Clair indexing against a real OCI registry: Debian's `docker-registry` (the CNCF distribution
server) with TLS and htpasswd auth. An image is pushed to it with plain Registry v2 calls; the
job must hand Clair layer URIs and an Authorization header that really open those layers."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests
from registry_sim import ClairRole, RecordingLog, compat_bytes, registry_settings, sim_ca, sims  # noqa: F401

from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests

REGISTRY_BINARY = "/usr/bin/docker-registry"
USER, PASSWORD = "puller", "pull-pw-4711"
PSK = b"0123456789abcdef0123456789abcdef"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"


def _missing(what: str) -> None:
    message = f"{what} is not installed (tests/system-deps.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, url: str, ca_file: str) -> None:
        self.url = url
        self.host = url.removeprefix("https://")
        self.http = requests.Session()
        self.http.auth = (USER, PASSWORD)
        self.verify = ca_file

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.http.post(f"{self.url}/v2/{repo}/blobs/uploads/", verify=self.verify, timeout=10)
        assert started.status_code == 202, started.text
        location = requests.compat.urljoin(self.url, started.headers["Location"])
        done = self.http.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", data=data,
                             headers={"Content-Type": "application/octet-stream"}, verify=self.verify, timeout=10)
        assert done.status_code == 201, done.text
        return digest

    def push_image(self, repo: str, tag: str, media_type: str, files: dict[str, bytes]) -> tuple[str, list[str]]:
        layers = []
        for name, content in files.items():
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            layers.append(buffer.getvalue())
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        oci = media_type == OCI
        manifest = {"schemaVersion": 2, "mediaType": media_type,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci else
                               "application/vnd.docker.container.image.v1+json",
                               "size": len(config), "digest": self.push_blob(repo, config)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip" if oci else
                                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                "size": len(layer), "digest": self.push_blob(repo, layer)} for layer in layers]}
        body = json.dumps(manifest).encode()
        put = self.http.put(f"{self.url}/v2/{repo}/manifests/{tag}", data=body,
                            headers={"Content-Type": media_type}, verify=self.verify, timeout=10)
        assert put.status_code == 201, put.text
        assert put.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(body).hexdigest()
        return put.headers["Docker-Content-Digest"], [layer["digest"] for layer in manifest["layers"]]


@pytest.fixture(scope="module")
def oci_registry(sim_ca, tmp_path_factory):
    if not Path(REGISTRY_BINARY).exists():
        _missing(REGISTRY_BINARY)
    if shutil.which("htpasswd") is None:
        _missing("htpasswd (apache2-utils)")
    ca, ca_file = sim_ca
    work = tmp_path_factory.mktemp("oci-registry")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(work / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(work / "cert.pem"))
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True)
    (work / "htpasswd").write_text(htpasswd.stdout)
    port = _free_port()
    (work / "config.yml").write_text(f"""\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {work / 'data'}
http:
  addr: 127.0.0.1:{port}
  secret: imvjob-test-secret
  tls:
    certificate: {work / 'cert.pem'}
    key: {work / 'key.pem'}
auth:
  htpasswd:
    realm: imvjob-test
    path: {work / 'htpasswd'}
""")
    log = open(work / "registry.log", "wb")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(work / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/v2/", verify=ca_file, timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: {(work / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield Registry(url, ca_file)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class Secrets(dict):
    def get_secret(self, namespace: str, name: str):
        return self.get((namespace, name))


def _pull_secret(host: str) -> dict:
    doc = {"auths": {f"https://{host}": {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}
    return {"data": {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode()).decode()}}


@pytest.mark.parametrize("media_type", [DOCKER_V2, OCI])
def test_clair_gets_layer_uris_and_credentials_that_open_the_real_registry(oci_registry, sims, registry_settings,
                                                                           tmp_path, media_type):
    repo = f"team/app-{media_type.split('.')[2]}"
    digest, layers = oci_registry.push_image(repo, "v1", media_type, {
        "etc/os-release": b'ID=alpine\nVERSION_ID=3.7.3\n', "usr/bin/tool": b"#!/bin/sh\necho hi\n"})
    clair_host = sims()
    clair = ClairRole(clair_host, psk=PSK)
    clair.report_after_index = compat_bytes("clair", "vulnerability_report.json")
    psk_file = tmp_path / "psk"
    psk_file.write_text(base64.b64encode(PSK).decode())
    ref = ImageRef(oci_registry.host, repo, digest)
    settings = registry_settings(clair_url=clair_host.url, clair_host=("127.0.0.1:*",), clair_psk_file=str(psk_file))
    secrets = Secrets({("ns", "pull"): _pull_secret(oci_registry.host)})
    results = scan_manifests([ScanRequest(ref, (("ns", "pull"),))], settings, secrets=secrets, log=RecordingLog())

    assert results[ref].state is ScanState.SCANNED
    (indexed,) = clair.indexed
    assert indexed["hash"] == digest
    assert [layer["hash"] for layer in indexed["layers"]] == layers
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for layer in indexed["layers"]:
        assert layer["uri"] == f"{oci_registry.url}/v2/{repo}/blobs/{layer['hash']}"
        assert layer["headers"] == {"Authorization": [basic]}
        # What Clair will do: fetch the layer with exactly these headers.
        opened = requests.get(layer["uri"], headers={k: v[0] for k, v in layer["headers"].items()},
                              verify=oci_registry.verify, timeout=10)
        assert opened.status_code == 200
        assert "sha256:" + hashlib.sha256(opened.content).hexdigest() == layer["hash"]
        assert requests.get(layer["uri"], verify=oci_registry.verify, timeout=10).status_code == 401


def test_a_private_registry_without_a_pull_secret_is_unauthorized(oci_registry, sims, registry_settings, tmp_path):
    digest, _ = oci_registry.push_image("team/secret", "v1", DOCKER_V2, {"etc/os-release": b"ID=debian\n"})
    clair_host = sims()
    clair = ClairRole(clair_host, psk=PSK)
    psk_file = tmp_path / "psk"
    psk_file.write_text(base64.b64encode(PSK).decode())
    ref = ImageRef(oci_registry.host, "team/secret", digest)
    settings = registry_settings(clair_url=clair_host.url, clair_host=("127.0.0.1:*",), clair_psk_file=str(psk_file))
    result = scan_manifests([ScanRequest(ref)], settings, secrets=Secrets(), log=RecordingLog())[ref]
    assert (result.state, result.detail) == (
        ScanState.UNAUTHORIZED, f"registry requires credentials (HTTP 401) and no pull secret has an entry for "
                                f"{oci_registry.host}")
    assert clair.indexed == []
