"""Real SMTP servers on 127.0.0.1 (aiosmtpd): plain, STARTTLS with login, implicit TLS.

The certificates come from a throwaway CA (trustme); the job trusts it through --extra-certs, as
a user would add a private CA.
"""
from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from smtp_servers import Recorder, Server, serve


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def ca_file(ca, tmp_path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture()
def server_tls(ca) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture()
def smtp_plain():
    recorder = Recorder()
    controller = serve(recorder)
    yield Server(controller.port, recorder)
    controller.stop()


@pytest.fixture()
def smtp_starttls(server_tls):
    """STARTTLS required, login required, login only over TLS."""
    recorder = Recorder()
    controller = serve(recorder, tls_context=server_tls, require_starttls=True, auth_required=True,
                        auth_require_tls=True, authenticator=recorder.authenticate)
    yield Server(controller.port, recorder)
    controller.stop()


@pytest.fixture()
def smtp_tls(server_tls):
    """Implicit TLS (SMTPS), as on port 465."""
    recorder = Recorder()
    controller = serve(recorder, ssl_context=server_tls)
    yield Server(controller.port, recorder)
    controller.stop()
