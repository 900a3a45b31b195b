"""Which pull secret opens which registry, matched as container runtimes match them."""
from __future__ import annotations

import base64
import json

import pytest

from job.log import RunLog
from job.model import ImageRef, ScanRequest
from job.registries.credentials import Credential, CredentialStore, docker_config_entries, match_entry, normalize_key

DIGEST = "sha256:" + "e" * 64


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def dockerconfigjson(auths: dict) -> dict:
    raw = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
    return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": raw}}


def dockercfg(entries: dict) -> dict:
    return {"type": "kubernetes.io/dockercfg", "data": {".dockercfg": base64.b64encode(json.dumps(entries).encode())
                                                        .decode()}}


def auth_field(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_dockerconfigjson_auth_and_username_password_and_registrytoken():
    entries = docker_config_entries(dockerconfigjson({
        "quay.io": {"auth": auth_field("robot+ci", "s3cret:with:colons")},
        "registry.local:5000": {"username": "u", "password": "p"},
        "tokens.example.com": {"registrytoken": "abc"},
        "broken.example.com": {"auth": "!!!"},
        "empty.example.com": {},
    }))
    assert entries == {"quay.io": basic("robot+ci", "s3cret:with:colons"), "registry.local:5000": basic("u", "p"),
                       "tokens.example.com": "Bearer abc"}


def test_dockercfg_is_read_too():
    assert docker_config_entries(dockercfg({"https://index.docker.io/v1/": {"auth": auth_field("a", "b")}})) == {
        "https://index.docker.io/v1/": basic("a", "b")}


@pytest.mark.parametrize("secret", [None, {}, {"data": None}, {"data": {".dockerconfigjson": "%%%"}},
                                    {"data": {".dockerconfigjson": base64.b64encode(b"[1]").decode()}},
                                    {"data": {".dockerconfigjson": base64.b64encode(b"not json").decode()}}])
def test_unusable_secrets_give_nothing(secret):
    assert docker_config_entries(secret) == {}


@pytest.mark.parametrize("key, normal", [
    ("https://index.docker.io/v1/", ("docker.io", "")),
    ("index.docker.io", ("docker.io", "")),
    ("registry-1.docker.io", ("docker.io", "")),
    ("docker.io", ("docker.io", "")),
    ("http://Registry.Local:5000/v2/", ("registry.local:5000", "")),
    ("quay.io/org/app", ("quay.io", "org/app")),
])
def test_keys_are_normalised(key, normal):
    assert normalize_key(key) == normal


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io",
                                 "registry-1.docker.io", "https://registry-1.docker.io/v2/"])
@pytest.mark.parametrize("image_host", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_names_are_one_registry(key, image_host):
    assert match_entry({key: "hub"}, image_host, "library/nginx") == "hub"


@pytest.mark.parametrize("key, host, repository, matches", [
    ("quay.io", "quay.io", "org/app", True),
    ("https://quay.io", "quay.io", "org/app", True),
    ("quay.io", "QUAY.IO", "org/app", True),
    ("quay.io", "quay.io:443", "org/app", False),  # ports must be equal
    ("registry.local:5000", "registry.local:5000", "x/y", True),
    ("registry.local:5000", "registry.local", "x/y", False),
    ("*.example.com", "reg.example.com", "x/y", True),
    ("*.example.com", "a.b.example.com", "x/y", False),  # one label per *
    ("*.example.com", "example.com", "x/y", False),
    ("quay.io/org", "quay.io", "org/app", True),
    ("quay.io/org", "quay.io", "organisation/app", False),
    ("quay.io/org/app", "quay.io", "org/app", True),
    ("docker.io", "quay.io", "org/app", False),
    ("evil.quay.io", "quay.io", "org/app", False),
])
def test_host_and_path_matching(key, host, repository, matches):
    assert (match_entry({key: "x"}, host, repository) == "x") is matches


def test_most_specific_key_of_a_secret_wins():
    entries = {"quay.io": "host", "quay.io/org": "org", "quay.io/org/app": "repo", "*.io": "glob"}
    assert match_entry(entries, "quay.io", "org/app") == "repo"
    assert match_entry(entries, "quay.io", "org/other") == "org"
    assert match_entry(entries, "quay.io", "else/x") == "host"
    assert match_entry({"*.io": "glob", "quay.io": "exact"}, "quay.io", "a/b") == "exact"


class Secrets:
    def __init__(self, secrets: dict, fail: set | None = None) -> None:
        self.secrets = secrets
        self.fail = fail or set()
        self.reads: list[tuple[str, str]] = []

    def get_secret(self, namespace: str, name: str):
        self.reads.append((namespace, name))
        if (namespace, name) in self.fail:
            raise PermissionError("secrets is forbidden: User cannot get resource")
        return self.secrets.get((namespace, name))


class Recorder(RunLog):
    def __init__(self) -> None:
        super().__init__(progress="never")
        self.lines: list[tuple[str, str]] = []

    def _emit(self, level, event, message, fields) -> None:
        self.lines.append((level, message))


def request(*secrets: tuple[str, str], host: str = "quay.io") -> ScanRequest:
    return ScanRequest(ImageRef(host, "org/app", DIGEST), tuple(secrets))


def test_order_is_pod_then_service_account_then_global_and_reads_are_cached():
    source = Secrets({
        ("ns", "pod-secret"): dockerconfigjson({"other.io": {"auth": auth_field("o", "o")}}),
        ("ns", "sa-secret"): dockerconfigjson({"quay.io": {"auth": auth_field("sa", "1")}}),
        ("openshift-config", "pull-secret"): dockerconfigjson({"quay.io": {"auth": auth_field("global", "2")}}),
    })
    store = CredentialStore(source, global_pull_secret="openshift-config/pull-secret", log=Recorder())
    found = store.for_request(request(("ns", "pod-secret"), ("ns", "sa-secret")), host="quay.io")
    assert [(c.authorization, c.source) for c in found] == [
        (basic("sa", "1"), "pull secret ns/sa-secret"),
        (basic("global", "2"), "pull secret openshift-config/pull-secret")]
    store.for_request(request(("ns", "pod-secret"), ("ns", "sa-secret")), host="quay.io")
    assert sorted(source.reads) == sorted({("ns", "pod-secret"), ("ns", "sa-secret"),
                                           ("openshift-config", "pull-secret")})


def test_missing_global_secret_is_fine_and_silent_and_no_source_means_no_credentials():
    log = Recorder()
    store = CredentialStore(Secrets({}), global_pull_secret="openshift-config/pull-secret", log=log)
    assert store.for_request(request(), host="quay.io") == []
    assert log.lines == []
    no_cluster = CredentialStore(None, global_pull_secret="a/b", log=log)
    assert no_cluster.for_request(request(("a", "b")), host="quay.io") == []


def test_an_unreadable_secret_is_warned_about_once_without_its_content():
    log = Recorder()
    source = Secrets({("ns", "s"): dockerconfigjson({"quay.io": {"auth": auth_field("u", "topsecret")}})},
                     fail={("ns", "s")})
    store = CredentialStore(source, global_pull_secret="", log=log)
    assert store.for_request(request(("ns", "s")), host="quay.io") == []
    assert store.for_request(request(("ns", "s")), host="quay.io") == []
    assert [level for level, _ in log.lines] == ["warning"]
    assert "ns/s" in log.lines[0][1] and "topsecret" not in log.lines[0][1]


def test_nothing_is_read_until_asked():
    source = Secrets({})
    CredentialStore(source, global_pull_secret="a/b", log=Recorder())
    assert source.reads == []


def test_credential_repr_hides_the_secret():
    credential = Credential(basic("u", "hunter2"), "pull secret ns/s")
    assert "hunter2" not in repr(credential) and basic("u", "hunter2") not in repr(credential)
    assert "ns/s" in repr(credential)
