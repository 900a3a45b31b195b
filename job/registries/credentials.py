"""Pull credentials: which pull secret opens which registry, matched as container runtimes do.

The pure part reads `.dockerconfigjson` / `.dockercfg` and matches its keys against a registry
host and repository the way the kubelet's keyring does: scheme and `/v1/` `/v2/` suffixes
ignored, Docker Hub's names (`docker.io`, `index.docker.io`, `registry-1.docker.io`,
`https://index.docker.io/v1/`) equivalent, `*` globs per DNS label, ports exact, a key with a
path matching only repositories under it, the most specific key of a secret first.

CredentialStore is the run's reader: a Secret is read only when a request needs it, once per
run, whoever asks. Nothing here logs or returns a secret's content except inside Credential,
whose repr hides it.
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol, Sequence

from job.log import RunLog
from job.model import ScanRequest
from job.registries.once import Once

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})


class SecretSource(Protocol):
    def get_secret(self, namespace: str, name: str) -> dict | None: ...


@dataclass(frozen=True, slots=True)
class Credential:
    """An Authorization header value and where it came from (the source is safe to show)."""

    authorization: str = field(repr=False)
    source: str


# --- pure: docker config files ------------------------------------------------------------


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _entry_authorization(entry: Any) -> str | None:
    """The Authorization value of one docker config entry, or None when it has no usable secret."""
    if not isinstance(entry, dict):
        return None
    auth = entry.get("auth")
    if isinstance(auth, str) and auth.strip():
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if ":" in decoded:
            user, _, password = decoded.partition(":")
            return _basic(user, password)
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and username and isinstance(password, str):
        return _basic(username, password)
    token = entry.get("registrytoken")
    if isinstance(token, str) and token.strip():
        return "Bearer " + token.strip()
    return None


def docker_config_entries(secret: Any) -> dict[str, str]:
    """{registry key: Authorization value} of a Secret's `.dockerconfigjson` or `.dockercfg`."""
    if not isinstance(secret, dict):
        return {}
    data = secret.get("data")
    if not isinstance(data, dict):
        return {}
    out: dict[str, str] = {}
    for name, wrapped in ((".dockerconfigjson", True), (".dockercfg", False)):
        raw = data.get(name)
        if not isinstance(raw, str):
            continue
        try:
            doc = json.loads(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            continue
        auths = doc.get("auths") if wrapped and isinstance(doc, dict) else doc
        if not isinstance(auths, dict):
            continue
        for key, entry in auths.items():
            authorization = _entry_authorization(entry)
            if isinstance(key, str) and authorization:
                out.setdefault(key, authorization)
    return out


def normalize_key(key: str) -> tuple[str, str]:
    """(host, path) of a docker config key or an image host: no scheme, no API suffix, lower-case
    host, Docker Hub's aliases as 'docker.io'."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.lower().startswith(scheme):
            key = key[len(scheme):]
    host, _, path = key.partition("/")
    path = path.strip("/")
    if path in ("v1", "v2"):  # the API version of `https://index.docker.io/v1/`, not a repository
        path = ""
    host = host.lower()
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
    return host, path


def _host_matches(pattern: str, host: str) -> bool:
    """Kubelet rules: same number of DNS labels, each label glob-matched; ports equal."""
    pattern_name, _, pattern_port = pattern.partition(":")
    name, _, port = host.partition(":")
    if pattern_port != port:
        return False
    pattern_labels, labels = pattern_name.split("."), name.split(".")
    if len(pattern_labels) != len(labels):
        return False
    return all(fnmatch.fnmatchcase(label, p) for p, label in zip(pattern_labels, labels))


def _path_matches(prefix: str, repository: str) -> bool:
    return not prefix or repository == prefix or repository.startswith(prefix + "/")


def match_entry(entries: dict[str, str], host: str, repository: str) -> str | None:
    """The Authorization value of the most specific key that matches host/repository, or None."""
    target_host, _ = normalize_key(host)
    best: tuple[tuple[int, int, int], str] | None = None
    for key, authorization in entries.items():
        key_host, key_path = normalize_key(key)
        if not _host_matches(key_host, target_host) or not _path_matches(key_path, repository):
            continue
        # A longer path, then a host without globs, then a longer host is more specific.
        rank = (len(key_path), 0 if "*" in key_host else 1, len(key_host))
        if best is None or rank > best[0]:
            best = (rank, authorization)
    return best[1] if best else None


# --- the run's reader -------------------------------------------------------------------


class CredentialStore:
    """Pull credentials for a request: its pods' and ServiceAccounts' pull secrets (already in
    ScanRequest.pull_secrets, in that order), then the global pull secret."""

    def __init__(self, secrets: SecretSource | None, *, global_pull_secret: str, log: RunLog) -> None:
        self._secrets = secrets
        self._log = log
        self._global: tuple[str, str] | None = None
        if global_pull_secret.strip():
            namespace, _, name = global_pull_secret.strip().partition("/")
            if namespace and name:
                self._global = (namespace, name)
        self._once: Once[dict[str, str]] = Once()

    def _entries(self, namespace: str, name: str) -> dict[str, str]:
        def read() -> dict[str, str]:
            if self._secrets is None:
                return {}
            try:
                secret = self._secrets.get_secret(namespace, name)
            except Exception as exc:  # noqa: BLE001 - a secret we cannot read is one we do not have
                # The message names the secret, never its content.
                self._log.warn(f"cannot read pull secret {namespace}/{name}: {type(exc).__name__}: "
                               f"{str(exc)[:120]}")
                return {}
            return docker_config_entries(secret)

        return self._once.get((namespace, name), read)

    def secret_names(self, request: ScanRequest) -> Sequence[tuple[str, str]]:
        names = list(dict.fromkeys(request.pull_secrets))
        if self._global is not None and self._global not in names:
            names.append(self._global)
        return names

    def for_request(self, request: ScanRequest, *, host: str) -> list[Credential]:
        """Matching credentials for `host`, most likely first; one per secret, no repeats."""
        out: list[Credential] = []
        seen: set[str] = set()
        for namespace, name in self.secret_names(request):
            authorization = match_entry(self._entries(namespace, name), host, request.ref.repository)
            if authorization and authorization not in seen:
                seen.add(authorization)
                out.append(Credential(authorization, f"pull secret {namespace}/{name}"))
        return out


def describe(credentials: Iterable[Credential]) -> str:
    return ", ".join(c.source for c in credentials)
