"""The calls the stages make on the cluster: what job.kube.Kube offers them, and what a test's fake
offers instead. Plain JSON data in and out (job.kube decodes it); no Kubernetes client types.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable, Iterator, Protocol

from job.model import Namespace


class Cluster(Protocol):
    #: The name of the kubeconfig context (or the API server's URL): the cluster's name in reports.
    cluster_name: str
    #: The namespace the job runs in (in-cluster), or its context's: where the apply Lease lives.
    own_namespace: str

    # --- snapshot: pods, namespaces, the owners the pods name

    #: `decode`: of each page's JSON (job.pods.decode_pod_page: only the fields the snapshot reads).
    def list_pods(self, *, namespace: str | None, selector: str, page_size: int,
                  decode: Callable[[bytes], Any] = ...) -> Iterator[list[dict]]: ...

    def list_namespaces(self, *, names: tuple[str, ...] = ()) -> list[Namespace]: ...

    def list_metadata(self, kind: str, *, namespaces: tuple[str, ...] = ()) -> list[dict]: ...

    # --- scan: the pull secrets of the pods and of their ServiceAccounts

    def list_service_accounts(self, *, namespaces: tuple[str, ...] = ()) -> list[dict]: ...

    def get_secret(self, namespace: str, name: str) -> dict | None: ...

    # --- apply: the ImageManifestVulns, under the apply Lease

    def imv_spec_schema(self) -> dict | None: ...

    def list_imv_metadata(self, *, namespace: str | None = None, page_size: int = 500) -> list[dict]: ...

    def get_imv(self, namespace: str, name: str) -> dict: ...

    def create_imv(self, obj: dict, *, dry_run: bool) -> dict: ...

    def patch_imv(self, namespace: str, name: str, patch: dict, *, dry_run: bool) -> dict: ...

    def update_imv_status(self, obj: dict, *, dry_run: bool) -> dict: ...

    def delete_imv(self, namespace: str, name: str, *, dry_run: bool, resource_version: str = "") -> None: ...

    def lease(self, *, namespace: str, name: str, wait: float, duration: int = 60) -> AbstractContextManager[Any]: ...
