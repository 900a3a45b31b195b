"""The Registry v2 (OCI distribution) API, for what Clair indexing needs: a manifest's layers,
their URLs, and the Authorization header that opens them.

Auth as container runtimes do it: anonymous first; on a 401 with `WWW-Authenticate: Bearer
realm=…` a pull token from the realm (with the pull secret's Basic credentials, if any),
on `Basic` the pull secret's credentials directly. A realm is the registry's own choice of
token service (Docker Hub's is auth.docker.io), so it gets that registry's credentials, over
https only (plain http only for a registry configured as plain http itself).
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from job.model import ScanRequest, ScanState
from job.registries.credentials import Credential, CredentialStore, describe
from job.registries.failures import BadResponse, ScanFailure, Unauthorized
from job.registries.http import HttpClient, Reply, RetryBudget
from job.registries.refs import api_host
from job.registries.status import state_for_status
from job.registries.tls import Trust

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                         "application/vnd.docker.distribution.manifest.list.v2+json"})
LAYER_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
#: Seconds a pull token lives when the token service does not say (the token spec's default).
_TOKEN_LIFETIME = 60.0
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHALLENGE_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class LayerRef:
    """One layer of a pulled manifest, as Clair's index request names it."""

    digest: str
    #: Where the layer is downloaded from: the registry's blob URL, or a foreign layer's own URL.
    uri: str
    #: Whether `uri` is on the registry (only then does it get the registry's Authorization).
    on_registry: bool


@dataclass(frozen=True, slots=True)
class PulledManifest:
    layers: tuple[LayerRef, ...]
    #: The Authorization header value that opened the manifest; None when it is public.
    authorization: str | None


# --- pure -----------------------------------------------------------------------------------


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """('bearer' | 'basic' | other, {param: value}) of a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def manifest_layers(doc: Any, *, content_type: str) -> list[tuple[str, str, str]]:
    """[(digest, media type, foreign URL or '')] of an image manifest.

    Raises ScanFailure(UNSUPPORTED) for indexes, schema 1 and non-image artifacts, and
    BadResponse for documents of the wrong shape.
    """
    if not isinstance(doc, dict):
        raise BadResponse("manifest is not a JSON object")
    media_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else content_type
    if media_type in INDEX_TYPES or "manifests" in doc:
        raise ScanFailure("image index (multi-platform): the platform manifest the pods run is not known here",
                          state=ScanState.UNSUPPORTED)
    if doc.get("schemaVersion") == 1:
        raise ScanFailure("Docker schema 1 manifest: not supported by Clair", state=ScanState.UNSUPPORTED)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise BadResponse("manifest has no layers list")
    if not layers:
        raise ScanFailure("manifest has no layers", state=ScanState.UNSUPPORTED)
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            raise BadResponse(f"manifest layers[{i}] has no digest")
        digest = layer["digest"]
        if not _DIGEST.match(digest):
            raise BadResponse(f"manifest layers[{i}] has an unsupported digest")
        layer_type = layer.get("mediaType") if isinstance(layer.get("mediaType"), str) else ""
        if layer_type not in LAYER_TYPES:
            raise ScanFailure(f"not a container image (layer type {layer_type[:80] or 'missing'})",
                              state=ScanState.UNSUPPORTED)
        urls = layer.get("urls")
        foreign = next((u for u in urls if isinstance(u, str) and u.startswith(("https://", "http://"))), "") \
            if isinstance(urls, list) else ""
        out.append((digest, layer_type, foreign))
    return out


# --- I/O --------------------------------------------------------------------------------------


class RegistryV2:
    def __init__(self, *, client: HttpClient, store: CredentialStore, trust: Trust) -> None:
        self.client = client
        self.store = store
        self.trust = trust
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    def pull_manifest(self, request: ScanRequest, *, budget: RetryBudget) -> PulledManifest:
        ref = request.ref
        host = api_host(ref.host)
        scheme = self.trust.scheme(host)
        url = f"{scheme}://{host}/v2/{ref.repository}/manifests/{ref.digest}"
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        reply = self.client.request("GET", url, budget=budget, headers=headers)
        authorization: str | None = None
        if reply.status == 401:
            reply, authorization = self._authorize(request, url, headers, reply, budget)
        if reply.status != 200:
            state, detail = state_for_status(reply, "registry")
            raise ScanFailure(f"manifest: {detail}", state=state)
        if "sha256:" + hashlib.sha256(reply.body).hexdigest() != ref.digest:
            raise BadResponse("the registry sent a manifest that does not match its digest")
        layers = manifest_layers(reply.json("manifest"), content_type=reply.headers.get("Content-Type", ""))
        blob_base = f"{scheme}://{host}/v2/{ref.repository}/blobs/"
        return PulledManifest(
            layers=tuple(LayerRef(digest, foreign or blob_base + digest, on_registry=not foreign)
                         for digest, _, foreign in layers),
            authorization=authorization)

    def _authorize(self, request: ScanRequest, url: str, headers: dict[str, str], challenged: Reply,
                   budget: RetryBudget) -> tuple[Reply, str]:
        scheme, params = parse_challenge(challenged.headers.get("WWW-Authenticate", ""))
        credentials = self.store.for_request(request, host=request.ref.host)
        if scheme == "basic":
            if not credentials:
                raise Unauthorized(f"registry requires credentials (HTTP 401) and no pull secret has an entry "
                                   f"for {request.ref.host}")
            attempts: list[tuple[Credential | None, str]] = [(c, c.authorization) for c in credentials]
        elif scheme == "bearer" and params.get("realm"):
            attempts = []
            for credential in credentials or [None]:
                token = self._token(params, request, credential, url, budget)
                if token:
                    attempts.append((credential, "Bearer " + token))
            if not attempts:
                if not credentials:
                    raise Unauthorized("the registry's token service refused an anonymous pull token and no pull "
                                       f"secret has an entry for {request.ref.host}")
                raise Unauthorized(f"the registry's token service refused the credentials of "
                                   f"{describe(credentials)}")
        else:
            raise Unauthorized(f"registry asks for an unsupported authentication ({scheme or 'none'})")
        last = challenged
        for _, authorization in attempts:
            last = self.client.request("GET", url, budget=budget, headers={**headers, "Authorization": authorization})
            if last.status not in (401, 403):
                return last, authorization
        tried = [c for c, _ in attempts if c is not None]
        raise Unauthorized(f"registry refused the credentials (HTTP {last.status})"
                           + (f" of {describe(tried)}" if tried else " (anonymous pull token)"))

    def _token(self, params: dict[str, str], request: ScanRequest, credential: Credential | None, url: str,
               budget: RetryBudget) -> str | None:
        realm = params["realm"]
        registry = urlsplit(url)
        target = urlsplit(realm)
        if target.scheme not in ("https", "http") or not target.netloc:
            raise BadResponse("the registry named an invalid token service")
        if target.scheme == "http" and not (registry.scheme == "http" and target.netloc == registry.netloc):
            raise BadResponse("the registry named a plain-http token service; credentials not sent")
        scope = f"repository:{request.ref.repository}:pull"
        key = (realm, params.get("service", ""), scope, credential.authorization if credential else "")
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        query = urlencode({k: v for k, v in (("service", params.get("service", "")), ("scope", scope)) if v})
        headers = {"Accept": "application/json"}
        if credential is not None:
            headers["Authorization"] = credential.authorization
        reply = self.client.request("GET", f"{realm}{'&' if '?' in realm else '?'}{query}", budget=budget,
                                    label="token service", headers=headers)
        if reply.status in (401, 403):
            return None
        if reply.status != 200:
            state, detail = state_for_status(reply, "token service")
            raise ScanFailure(detail, state=state)
        doc = reply.json("token response")
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse("the token service sent no token")
        lifetime = doc.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else _TOKEN_LIFETIME
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + seconds * 0.8)
        return token
