"""Which CAs a registry's certificate is checked against, host by host.

Trust = the system store (OpenSSL's default CA file, which SSL_CERT_FILE overrides; certifi when
the system has none) plus --extra-certs, written as one bundle file. The bundle's path is passed
as `verify=` on every request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE silently replace
a Session's own `verify`, but never an explicit per-request one. Hosts in --insecure-registry
are not verified; `http://host` there means the registry speaks plain HTTP.

The CAs are also loaded once into one SSLContext that every connection shares: urllib3 would
otherwise parse the whole bundle again for each new connection (about 0.1 s of CPU each).
"""
from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path
from typing import Sequence

from urllib3.util.ssl_ import create_urllib3_context

from job.certs import read_extra_certs

_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                   "/etc/ssl/cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")


def system_ca_file() -> str:
    """The system's CA bundle, as OpenSSL finds it; certifi's as the last resort."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, *_SYSTEM_BUNDLES):
        if candidate and os.path.isfile(candidate):
            return candidate
    import certifi

    return certifi.where()


class Trust:
    """`verify=` and URL scheme per host, for the run. close() removes the bundle file."""

    def __init__(self, *, extra_certs: str, insecure_registry: Sequence[str]) -> None:
        self._insecure: set[str] = set()
        self._plain_http: set[str] = set()
        for entry in insecure_registry:
            entry = entry.strip().rstrip("/").lower()
            if entry.startswith("http://"):
                self._plain_http.add(entry[len("http://"):])
            elif entry:
                self._insecure.add(entry.removeprefix("https://"))
        self._bundle_dir: tempfile.TemporaryDirectory[str] | None = None
        system = system_ca_file()
        extra = read_extra_certs(extra_certs) if extra_certs else b""
        if extra:
            self._bundle_dir = tempfile.TemporaryDirectory(prefix="imvjob-ca-")
            bundle = Path(self._bundle_dir.name) / "ca-bundle.pem"
            bundle.write_bytes(Path(system).read_bytes().rstrip(b"\n") + b"\n" + extra)
            self.ca_file = str(bundle)
        else:
            self.ca_file = system
        self.context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        self.context.load_verify_locations(cafile=self.ca_file)

    @property
    def unverified_hosts(self) -> list[str]:
        return sorted(self._insecure | self._plain_http)

    def scheme(self, host: str) -> str:
        return "http" if host.lower() in self._plain_http else "https"

    def verify(self, host: str) -> str | bool:
        return False if host.lower() in self._insecure else self.ca_file

    def close(self) -> None:
        if self._bundle_dir is not None:
            self._bundle_dir.cleanup()
            self._bundle_dir = None
