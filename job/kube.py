"""The one module that talks to the Kubernetes API. It returns plain JSON data, never model classes.

Configuration (kubeconfig, contexts, exec/OIDC token refresh, in-cluster ServiceAccount) comes from
the kubernetes client's config loader; the requests themselves go through one pooled requests
session, so that pages of 500 pods are parsed straight from JSON and every call is counted.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import random
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from job.codec import decode_json, encode_json, strings_only
from job.errors import ConfigError, Conflict, Forbidden, Invalid, KubeError, NotFound
from job.lease import Lease
from job.retry_after import parse_retry_after
from job.model import IMV_GROUP, IMV_PLURAL, IMV_VERSION, Namespace
from job.settings import Settings
from job.writers import FIELD_MANAGER, writers

IMV_API = f"/apis/{IMV_GROUP}/{IMV_VERSION}"
_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#: Writes are answered with the object's metadata only (all a write needs back: the new
#: resourceVersion), not the whole object of up to a megabyte, encoded by the API server and
#: decoded here for nothing. A server that cannot do that sends the whole object.
_IMV_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations")
_WRITE_ANSWER = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
_OWNER_PATHS = {"ReplicaSet": "/apis/apps/v1/replicasets", "Job": "/apis/batch/v1/jobs",
                "ReplicationController": "/api/v1/replicationcontrollers"}
_ERRORS = {404: NotFound, 409: Conflict, 422: Invalid, 403: Forbidden}
_RETRIABLE = {429, 500, 502, 503, 504}


class RateLimiter:
    """Token bucket for writes: at most `qps` per second on average, bursts of `burst`."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps, self.burst = qps, max(1, burst)
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.qps <= 0:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                delay = (1 - self._tokens) / self.qps
            time.sleep(delay)


@dataclass
class _Auth:
    server: str
    verify: Any
    cert: tuple[str, str] | None
    proxies: dict[str, str] | None
    config: Any  # kubernetes.client.Configuration, for token refresh
    #: The kubeconfig's tls-server-name: the name the certificate is checked against, and sent as SNI.
    server_name: str = ""

    def headers(self) -> dict[str, str]:
        token = self.config.get_api_key_with_prefix("BearerToken") if self.config is not None else None
        return {"Authorization": token} if token else {}


class _ServerNameAdapter(HTTPAdapter):
    """Checks the API server's certificate against `server_name`, not the URL's host (proxied too)."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        self.server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs, server_hostname=self.server_name, assert_hostname=self.server_name)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, **kwargs, server_hostname=self.server_name,
                                         assert_hostname=self.server_name)


class Kube:
    """A small REST client. Counts requests by verb and bytes sent, for the recap and the benchmark."""

    def __init__(self, auth: _Auth, *, cluster_name: str, own_namespace: str, settings: Settings) -> None:
        self.auth = auth
        self.cluster_name = cluster_name
        self.own_namespace = own_namespace
        self.session = requests.Session()
        self.session.trust_env = auth.proxies is None
        pool = max(10, settings.write_concurrency + 4)
        self.session.mount("https://", _ServerNameAdapter(auth.server_name, pool_connections=4, pool_maxsize=pool)
                           if auth.server_name else HTTPAdapter(pool_connections=4, pool_maxsize=pool))
        self.session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=pool))
        self.writes = RateLimiter(settings.qps, burst=max(1, int(settings.qps)))
        self.stats: collections.Counter[str] = collections.Counter()
        self.bytes_sent = 0
        self._stats_lock = threading.Lock()

    # --- transport ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json", accept: str = "application/json",
                verb: str = "", timeout: float = 60.0, decode: Callable[[bytes], Any] = decode_json) -> Any:
        """One API call with bounded retries on 429/5xx and connection errors; JSON in, JSON out (by `decode`)."""
        verb = verb or method.lower()
        data = None if body is None else encode_json(body)
        if method != "GET":
            self.writes.wait()
        attempt = 0
        while True:
            attempt += 1
            with self._stats_lock:
                self.stats[verb] += 1
                self.bytes_sent += len(data or b"")
            try:
                resp = self.session.request(
                    method, self.auth.server + path, params=params, data=data, timeout=(10, timeout),
                    headers={"Accept": accept, "Content-Type": content_type, **self.auth.headers()},
                    verify=self.auth.verify, cert=self.auth.cert, proxies=self.auth.proxies)
            except requests.RequestException as exc:
                if attempt < 5:
                    time.sleep(min(8.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0))
                    continue
                raise KubeError(f"{method} {path}: cannot reach the API server: {exc}") from exc
            if resp.status_code in _RETRIABLE and attempt < 5:
                delay = parse_retry_after(resp.headers.get("Retry-After"))
                delay = 0.25 * 2 ** attempt if delay is None else delay
                time.sleep(min(10.0, delay) * random.uniform(0.8, 1.0))
                continue
            if resp.status_code >= 400:
                raise self._error(method, path, resp)
            if not resp.content:
                return None
            try:
                return decode(resp.content)
            except ValueError as exc:
                raise KubeError(f"{method} {path}: the API server answered with no JSON") from exc

    @staticmethod
    def _error(method: str, path: str, resp: requests.Response) -> KubeError:
        try:
            status = decode_json(resp.content)
        except ValueError:
            status = None
        if isinstance(status, dict):
            message, reason = str(status.get("message", ""))[:1000], str(status.get("reason", ""))[:100]
        else:
            message, reason = resp.text[:200], ""
        cls = _ERRORS.get(resp.status_code, KubeError)
        return cls(f"{method} {path}: {resp.status_code} {message or resp.reason}", status=resp.status_code,
                   reason=reason)

    def list_pages(self, path: str, *, params: dict[str, Any] | None = None, page_size: int = 500,
                   accept: str = "application/json", decode: Callable[[bytes], Any] = decode_json
                   ) -> Iterator[list[dict]]:
        """A paginated LIST (limit + continue): one consistent snapshot, yielded page by page."""
        query = dict(params or {})
        query["limit"] = page_size
        while True:
            doc = self.request("GET", path, params=query, accept=accept, verb="list", decode=decode)
            items = doc.get("items") if isinstance(doc, dict) else None
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if not isinstance(doc, dict) or not isinstance(items, (list, type(None))) \
                    or not isinstance(meta, (dict, type(None))):
                raise KubeError(f"GET {path}: the API server answered with something that is not a list")
            yield items or []
            token = (meta or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    # --- reads -------------------------------------------------------------------------------

    def list_pods(self, *, namespace: str | None, selector: str, page_size: int,
                  decode: Callable[[bytes], Any] = decode_json) -> Iterator[list[dict]]:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        params = {"fieldSelector": "status.phase=Running"}
        if selector:
            params["labelSelector"] = selector
        return self.list_pages(path, params=params, page_size=page_size, decode=decode)

    def list_namespaces(self, *, names: tuple[str, ...] = ()) -> list[Namespace]:
        """All namespaces; with `names`, just those (a GET each: the job may not be allowed to list)."""
        items: list[dict] = []
        if names:
            for name in names:
                try:
                    items.append(self.request("GET", f"/api/v1/namespaces/{quote(name)}"))
                except (NotFound, Forbidden):
                    items.append({"metadata": {"name": name}})
        else:
            for page in self.list_pages("/api/v1/namespaces"):
                items.extend(page)
        out = []
        for item in items:  # typed by the API server; anything else is passed over, never a crash
            meta = item.get("metadata") if isinstance(item, dict) else None
            name = meta.get("name") if isinstance(meta, dict) else None
            if isinstance(name, str) and name:
                out.append(Namespace(name, dict(strings_only(meta.get("labels"))[0]),
                                     dict(strings_only(meta.get("annotations"))[0])))
        return out

    def list_metadata(self, kind: str, *, namespaces: tuple[str, ...] = ()) -> list[dict]:
        """Metadata only (PartialObjectMetadata) of ReplicaSets, Jobs or ReplicationControllers."""
        base = _OWNER_PATHS[kind]
        paths = [base.replace(base.rsplit("/", 1)[1], f"namespaces/{quote(ns)}/{base.rsplit('/', 1)[1]}")
                 for ns in namespaces] if namespaces else [base]
        out: list[dict] = []
        for path in paths:
            for page in self.list_pages(path, accept=_METADATA_ONLY):
                for item in page:
                    if isinstance(item, dict):  # the rest: job.pods.owner_index passes it over
                        item["kind"] = kind
                        out.append(item)
        return out

    def get_secret(self, namespace: str, name: str) -> dict | None:
        try:
            return self.request("GET", f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}")
        except (NotFound, Forbidden):
            return None

    def list_service_accounts(self, *, namespaces: tuple[str, ...] = ()) -> list[dict]:
        """ServiceAccounts (for their imagePullSecrets): one paginated LIST, or one per namespace."""
        paths = [f"/api/v1/namespaces/{quote(ns)}/serviceaccounts" for ns in namespaces] or ["/api/v1/serviceaccounts"]
        return [item for path in paths for page in self.list_pages(path) for item in page]

    # --- ImageManifestVulns --------------------------------------------------------------------

    @staticmethod
    def imv_path(namespace: str | None, name: str = "", sub: str = "") -> str:
        path = IMV_API + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{IMV_PLURAL}"
        if name:
            path += f"/{quote(name)}"
        if sub:
            path += f"/{sub}"
        return path

    def list_imv_metadata(self, *, namespace: str | None = None, page_size: int = 500) -> list[dict]:
        """Every ImageManifestVuln's metadata (names, labels, annotations, generation), without the
        large spec. Only those fields are kept, page by page, managedFields as a small summary of
        who wrote what (job.writers): they alone are most of each item, and a large cluster has
        tens of thousands of items."""
        out: list[dict] = []
        for page in self.list_pages(self.imv_path(namespace), page_size=page_size, accept=_METADATA_ONLY):
            for item in page:
                meta = item.get("metadata") if isinstance(item, dict) else None
                if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) and meta[k]
                                                         for k in ("name", "namespace")):
                    continue  # what cannot be named is never written to nor deleted
                kept = {k: meta[k] for k in _IMV_METADATA if k in meta}
                for key in ("labels", "annotations"):
                    if key in kept:
                        kept[key] = strings_only(kept[key])[0]
                kept["writers"] = writers(meta.get("managedFields"))
                out.append({"metadata": kept})
        return out

    def imv_spec_schema(self) -> dict | None:
        """The installed CRD's schema of spec (None when it cannot be read): the API server prunes
        what it does not name."""
        try:
            crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{IMV_PLURAL}.{IMV_GROUP}",
                               verb="get-crd")
        except KubeError:
            return None
        def field(doc: Any, key: str) -> Any:  # what the server sent may be of any shape
            return doc.get(key) if isinstance(doc, dict) else None

        versions = field(field(crd, "spec"), "versions")
        for version in versions if isinstance(versions, list) else []:
            if field(version, "name") == IMV_VERSION:
                spec = field(field(field(field(version, "schema"), "openAPIV3Schema"), "properties"), "spec")
                return spec if isinstance(spec, dict) else None
        return None

    def get_imv(self, namespace: str, name: str) -> dict:
        return self.request("GET", self.imv_path(namespace, name))

    # Writes return {"metadata": …} (the written object's metadata), not the whole object.

    def create_imv(self, obj: dict, *, dry_run: bool) -> dict:
        return self.request("POST", self.imv_path(obj["metadata"]["namespace"]), body=obj,
                            params=_dry(dry_run), verb="create", accept=_WRITE_ANSWER)

    def patch_imv(self, namespace: str, name: str, patch: dict, *, dry_run: bool) -> dict:
        """A JSON merge patch of labels, annotations and spec: of what changed, not the whole object."""
        return self.request("PATCH", self.imv_path(namespace, name), body=patch, params=_dry(dry_run),
                            content_type="application/merge-patch+json", verb="patch", accept=_WRITE_ANSWER)

    def update_imv_status(self, obj: dict, *, dry_run: bool) -> dict:
        meta = obj["metadata"]
        return self.request("PUT", self.imv_path(meta["namespace"], meta["name"], "status"), body=obj,
                            params=_dry(dry_run), verb="update-status", accept=_WRITE_ANSWER)

    def delete_imv(self, namespace: str, name: str, *, dry_run: bool, resource_version: str = "") -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if resource_version:
            body["preconditions"] = {"resourceVersion": resource_version}
        try:
            self.request("DELETE", self.imv_path(namespace, name), params={"dryRun": "All"} if dry_run else None,
                         body=body, verb="delete")
        except NotFound:
            pass  # already gone: that is what we wanted

    # --- the apply Lease -------------------------------------------------------------------------

    def lease(self, *, namespace: str, name: str, wait: float, duration: int = 60) -> Lease:
        return Lease(self, namespace=namespace, name=name, wait=wait, duration=duration)


def _dry(dry_run: bool) -> dict[str, str]:
    """Every write names the job as its field manager: managedFields then tell its writes from others'."""
    return {"fieldManager": FIELD_MANAGER, **({"dryRun": "All"} if dry_run else {})}


# --- connecting ----------------------------------------------------------------------------------


class _ApiClient:
    """What kubernetes.config gets as ApiClient: it builds one only to refresh an OIDC token, and then
    has the client's whole package imported."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client import ApiClient

        return ApiClient(*args, **kwargs)


def _cluster_of(kconfig: Any, config_file: str | None, context: dict | None) -> dict:
    """The kubeconfig's entry of the context's cluster ({} when there is none)."""
    name = ((context or {}).get("context") or {}).get("cluster")
    merged = kconfig.kube_config.KubeConfigMerger(config_file or kconfig.KUBE_CONFIG_DEFAULT_LOCATION).config
    clusters = merged.value.get("clusters") if merged is not None and isinstance(merged.value, dict) else None
    for entry in clusters if isinstance(clusters, list) else []:
        entry = getattr(entry, "value", entry)  # the merger wraps each file's entries
        if isinstance(entry, dict) and entry.get("name") == name:
            cluster = getattr(entry.get("cluster"), "value", entry.get("cluster"))
            return cluster if isinstance(cluster, dict) else {}
    return {}


def _proxy_url(value: Any) -> str:
    """A cluster's proxy-url, checked: an http or https URL ('' when none is set)."""
    if value in (None, ""):
        return ""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself is not repeated: it may hold the proxy's password.
        raise ValueError("the cluster's proxy-url is not an http or https URL (socks5 proxies are not supported)")
    return value


def _config_loader() -> tuple[Any, Any]:
    """kubernetes.config and the client's Configuration class, without the client's API and model
    classes (about 37 MB held for the whole run, for nothing: the job sends its requests itself).
    Both packages' __init__ import all of those; kubernetes.config needs of the client only
    Configuration (and ApiClient to refresh an OIDC token). So its modules are imported under bare
    parent packages, removed right after: a later `import kubernetes` gets the whole package, and
    shares these modules. A client whose layout differs is imported whole, as before."""
    spec = importlib.util.find_spec("kubernetes") if "kubernetes" not in sys.modules else None
    if spec is not None and spec.origin:
        before, root = set(sys.modules), Path(spec.origin).parent
        bare = {name: types.ModuleType(name) for name in ("kubernetes", "kubernetes.client")}
        bare["kubernetes"].__path__, bare["kubernetes.client"].__path__ = [str(root)], [str(root / "client")]
        sys.modules.update(bare)
        try:
            from kubernetes.client.configuration import Configuration

            bare["kubernetes.client"].Configuration, bare["kubernetes.client"].ApiClient = Configuration, _ApiClient
            from kubernetes import config

            return config, Configuration
        except ImportError:
            for name in set(sys.modules) - before:
                if name.partition(".")[0] == "kubernetes":
                    del sys.modules[name]
        finally:
            for name, module in bare.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
    from kubernetes import client, config

    return config, client.Configuration


def connect(settings: Settings) -> Kube:
    """Kubeconfig (--kubeconfig/--context, KUBECONFIG, ~/.kube/config) or the in-cluster ServiceAccount."""
    kconfig, configuration = _config_loader()
    cfg = configuration()
    context_name, own_namespace = "", ""
    in_cluster = not settings.kubeconfig and "KUBERNETES_SERVICE_HOST" in os.environ \
        and os.path.exists(f"{_SA_DIR}/token")
    try:
        if in_cluster:
            kconfig.load_incluster_config(client_configuration=cfg)
            context_name = "in-cluster"
            with open(f"{_SA_DIR}/namespace", encoding="utf-8") as fh:
                own_namespace = fh.read().strip()
        else:
            config_file = settings.kubeconfig or None
            kconfig.load_kube_config(config_file=config_file, context=settings.context or None,
                                     client_configuration=cfg)
            contexts, active = kconfig.list_kube_config_contexts(config_file=config_file)
            chosen = next((c for c in contexts if c["name"] == settings.context), active) if settings.context \
                else active
            context_name = (chosen or {}).get("name", "")
            own_namespace = ((chosen or {}).get("context") or {}).get("namespace", "")
            # The client's loader reads neither proxy-url nor, for a session of our own, tls-server-name.
            cluster = _cluster_of(kconfig, config_file, chosen)
            cfg.proxy = _proxy_url(cluster.get("proxy-url")) or cfg.proxy
    except (kconfig.ConfigException, OSError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot load Kubernetes configuration: {exc}") from exc
    verify: Any = cfg.ssl_ca_cert or True
    if not cfg.verify_ssl:
        verify = False
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
    # As kubectl: a proxy-url carries every request, whatever HTTPS_PROXY and NO_PROXY say.
    proxies = {"https": cfg.proxy, "http": cfg.proxy} if cfg.proxy else None
    server_name = getattr(cfg, "tls_server_name", None) or ""
    auth = _Auth(server=cfg.host.rstrip("/"), verify=verify, cert=cert, proxies=proxies, config=cfg,
                 server_name=server_name if isinstance(server_name, str) else "")
    return Kube(auth, cluster_name=context_name or cfg.host, own_namespace=own_namespace or "default",
                settings=settings)
