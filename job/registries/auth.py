"""Anonymous first, credentials when a host asks for them.

A request goes out without credentials; after a 401/403 it is sent again with the request's
credentials, one after the other, until one is accepted. A host that asked once gets the
first credential up front from then on, so a private registry costs one extra request per run,
not one per manifest. Credentials are only ever sent to the host they were chosen for.
"""
from __future__ import annotations

import threading
from typing import Mapping, Sequence

from job.model import ScanRequest
from job.registries.credentials import Credential, CredentialStore, describe
from job.registries.failures import Unauthorized
from job.registries.http import HttpClient, Reply, RetryBudget

AUTH_STATUSES = frozenset({401, 403})


class AuthFlow:
    def __init__(self, client: HttpClient, store: CredentialStore) -> None:
        self.client = client
        self.store = store
        self._lock = threading.Lock()
        self._demanding: set[str] = set()

    def demands_auth(self, host: str) -> bool:
        with self._lock:
            return host in self._demanding

    def _mark(self, host: str) -> None:
        with self._lock:
            self._demanding.add(host)

    def get(self, url: str, *, request: ScanRequest, host: str, budget: RetryBudget, label: str,
            headers: Mapping[str, str] | None = None, first: Sequence[Credential] = (),
            definite: frozenset[int] = frozenset()) -> Reply:
        """GET url (on `host`), adding credentials as needed: `first` (e.g. a configured API
        token), then the request's pull credentials for `host`. Raises Unauthorized when the
        host refuses them all, or asks and there are none."""
        pool = list(first)
        pulled = False  # pull secrets are read only once `first` is used up
        tried: list[Credential] = []

        def next_candidate() -> Credential | None:
            nonlocal pulled
            while True:
                for credential in pool:
                    if credential not in tried:
                        return credential
                if pulled:
                    return None
                pulled = True
                pool.extend(self.store.for_request(request, host=host))

        current = next_candidate() if self.demands_auth(host) else None
        while True:
            send = dict(headers or {})
            if current is not None:
                send["Authorization"] = current.authorization
                tried.append(current)
            reply = self.client.request("GET", url, budget=budget, label=label, headers=send, definite=definite)
            if reply.status not in AUTH_STATUSES:
                return reply
            self._mark(host)
            current = next_candidate()
            if current is None:
                if not tried:
                    raise Unauthorized(f"{label} requires credentials (HTTP {reply.status}) and no pull secret "
                                       f"has an entry for {host}")
                raise Unauthorized(f"{label} refused the credentials (HTTP {reply.status}) of {describe(tried)}")
