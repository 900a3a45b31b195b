"""Trust per host, reference checks, manifests' layers, auth challenges, and excerpts."""
from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from job.certs import read_extra_certs
from job.errors import ConfigError
from job.model import ImageRef, ScanState
from job.registries.distribution import manifest_layers, parse_challenge
from job.registries.failures import BadResponse, ScanFailure, excerpt
from job.registries.refs import api_host, host_matches, ref_problem
from job.registries.tls import Trust, system_ca_file
from tests.planted import fifo, peak_while, sparse

DIGEST = "sha256:" + "f" * 64
LAYER = "sha256:" + "1" * 64


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_extra_certs_are_added_to_the_system_store_and_the_bundle_is_removed(pem: Path):
    trust = Trust(extra_certs=str(pem), insecure_registry=())
    bundle = Path(trust.ca_file)
    text = bundle.read_bytes()
    assert text.startswith(Path(system_ca_file()).read_bytes().rstrip(b"\n"))
    assert pem.read_bytes().strip() in text
    assert trust.verify("quay.io") == str(bundle)
    trust.close()
    assert not bundle.exists()


def test_without_extra_certs_the_system_store_is_used():
    trust = Trust(extra_certs="", insecure_registry=())
    assert trust.verify("quay.io") == system_ca_file()


def test_a_folder_of_certs_reads_every_file_that_holds_one(tmp_path: Path, pem: Path):
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "a.crt").write_bytes(pem.read_bytes())
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    (folder / "quay-ca").write_bytes(other.read_bytes())  # CSO's Secret keys need no suffix
    (folder / "README").write_text("not a cert")
    (folder / "..data").mkdir()  # what a mounted Secret or ConfigMap volume holds besides its keys
    data = read_extra_certs(str(folder))
    assert data.count(b"-----BEGIN CERTIFICATE-----") == 2


@pytest.mark.parametrize("content, words", [(b"hello", "holds no PEM certificate"),
                                            (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                             "not a valid PEM certificate")])
def test_bad_extra_certs_are_configuration_errors(tmp_path: Path, content: bytes, words: str):
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        read_extra_certs(str(path))


@pytest.mark.parametrize("in_folder", [False, True])
def test_huge_extra_certs_are_an_error_not_read_whole(tmp_path: Path, in_folder: bool):
    folder = tmp_path / "certs"
    folder.mkdir()
    sparse(folder / "ca.pem")

    def read() -> None:
        with pytest.raises(ConfigError, match="ca.pem is larger than 16 MiB"):
            read_extra_certs(str(folder if in_folder else folder / "ca.pem"))

    _, peak = peak_while(read)
    assert peak < 64 << 20, f"reading held {peak >> 20} MiB"


@pytest.mark.timeout(30)
def test_a_fifo_as_extra_certs_is_said_so_not_waited_for(tmp_path: Path):
    fifo(tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match="FIFO"):
        read_extra_certs(str(tmp_path / "ca.pem"))
    assert read_extra_certs(str(tmp_path)) == b""  # in a folder: not a file that holds one


def test_missing_extra_certs_is_an_error_an_empty_folder_means_none(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        read_extra_certs(str(tmp_path / "nope"))
    assert read_extra_certs(str(tmp_path)) == b""
    trust = Trust(extra_certs=str(tmp_path), insecure_registry=())
    assert trust.verify("quay.io") == system_ca_file()


def test_insecure_hosts_only_are_unverified_and_http_entries_mean_plain_http():
    trust = Trust(extra_certs="", insecure_registry=("Reg.Local:5000", "http://plain.local", "https://self.local/"))
    assert trust.verify("reg.local:5000") is False and trust.verify("self.local") is False
    assert trust.verify("quay.io") == system_ca_file()
    assert trust.scheme("plain.local") == "http" and trust.scheme("reg.local:5000") == "https"
    assert trust.unverified_hosts == ["plain.local", "reg.local:5000", "self.local"]


@pytest.mark.parametrize("ref, words", [
    (ImageRef("quay.io", "org/app", DIGEST), ""),
    (ImageRef("127.0.0.1:5000", "a/b/c", DIGEST), ""),
    (ImageRef("quay.io/evil", "org/app", DIGEST), "invalid registry host"),
    (ImageRef("quay.io", "../../admin", DIGEST), "invalid repository name"),
    (ImageRef("quay.io", "org/app?x=1", DIGEST), "invalid repository name"),
    (ImageRef("quay.io", "Org/App", DIGEST), "invalid repository name"),
    (ImageRef("quay.io", "org/app", "sha256:../../etc/passwd"), "invalid or unsupported digest"),
    (ImageRef("quay.io", "org/app", "sha512:" + "a" * 128), "invalid or unsupported digest"),
])
def test_references_are_checked_before_they_go_into_urls_or_file_names(ref, words):
    problem = ref_problem(ref)
    assert (words in problem) if words else problem == ""


def test_docker_hub_api_host_and_host_globs():
    assert api_host("docker.io") == api_host("index.docker.io") == "registry-1.docker.io"
    assert api_host("Quay.IO") == "quay.io"
    assert host_matches("registry.corp.example:5000", ["*.corp.example:*"])
    assert not host_matches("quay.io", ["*.corp.example"])
    assert not host_matches("quay.io", ["", "  "])


def test_challenges():
    assert parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:library/nginx:pull"') == (
        "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                   "scope": "repository:library/nginx:pull"})
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert parse_challenge("") == ("", {})


def _manifest(media_type: str, layer_type: str, **extra) -> dict:
    return {"schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": LAYER},
            "layers": [{"mediaType": layer_type, "digest": LAYER, "size": 1, **extra}]}


def test_docker_and_oci_manifests_give_their_layers():
    docker = _manifest("application/vnd.docker.distribution.manifest.v2+json",
                       "application/vnd.docker.image.rootfs.diff.tar.gzip")
    oci = _manifest("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.layer.v1.tar+zstd")
    foreign = _manifest("application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                        urls=["https://go.microsoft.com/layer.tar.gz"])
    assert manifest_layers(docker, content_type="") == [(LAYER, "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                                         "")]
    assert manifest_layers(oci, content_type="")[0][1] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert manifest_layers(foreign, content_type="")[0][2] == "https://go.microsoft.com/layer.tar.gz"


@pytest.mark.parametrize("doc, content_type, state, words", [
    ({"schemaVersion": 2, "manifests": []}, "application/vnd.oci.image.index.v1+json", ScanState.UNSUPPORTED,
     "image index"),
    ({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"}, "",
     ScanState.UNSUPPORTED, "image index"),
    ({"schemaVersion": 1, "fsLayers": []}, "", ScanState.UNSUPPORTED, "schema 1"),
    (_manifest("application/vnd.oci.image.manifest.v1+json", "application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
     "", ScanState.UNSUPPORTED, "not a container image"),
    ({"schemaVersion": 2, "layers": []}, "", ScanState.UNSUPPORTED, "no layers"),
    ({"schemaVersion": 2}, "", ScanState.ERROR, "no layers list"),
    ({"schemaVersion": 2, "layers": [{"digest": "md5:x"}]}, "", ScanState.ERROR, "unsupported digest"),
    ([], "", ScanState.ERROR, "not a JSON object"),
])
def test_manifests_that_clair_cannot_index(doc, content_type, state, words):
    with pytest.raises(ScanFailure) as failure:
        manifest_layers(doc, content_type=content_type)
    assert failure.value.state is state and words in failure.value.detail
    assert isinstance(failure.value, BadResponse) is (state is ScanState.ERROR)


def test_excerpts_are_short_single_line_and_without_markup():
    page = b"<html><head><title>502 Bad Gateway</title></head>\n<body>\n<h1>Bad   Gateway</h1>\x00</body></html>"
    assert excerpt(page) == "502 Bad Gateway Bad Gateway ?"
    long = excerpt("x" * 1000)
    assert len(long) == 120 and long.endswith("…")
    assert excerpt(b"") == "(empty)"
    assert excerpt(b"\xff\xfe bad bytes") == "\ufffd\ufffd bad bytes"
