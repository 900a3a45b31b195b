"""The kubeconfig's cluster fields that say how to reach the API server, as kubectl reads them:
`proxy-url` (every request through that proxy, whatever HTTPS_PROXY and NO_PROXY say) and
`tls-server-name` (the name the API server's certificate is checked against, when the URL's host
is not in it). A laptop behind a corporate proxy or a bastion uses both."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner
from registry_sim import PROXY_VARS, ConnectProxy

from job.cli import cli

#: A name no resolver here knows: only the proxy does.
HIDDEN = "apiserver.imvjob.test"


@pytest.fixture
def no_env_proxy(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def proxy():
    p = ConnectProxy(aliases={HIDDEN: "127.0.0.1"})
    yield p
    p.stop()


def kubeconfig(control_plane, tmp_path: Path, *, server: str = "", **cluster: str) -> Path:
    path = control_plane.write_kubeconfig(tmp_path / "kubeconfig", token=control_plane.admin_token)
    config = yaml.safe_load(path.read_text())
    config["clusters"][0]["cluster"].update(cluster, **({"server": server} if server else {}))
    path.write_text(yaml.safe_dump(config))
    return path


def snapshot(path: Path, out: Path):
    return CliRunner().invoke(cli, ["snapshot", "--kubeconfig", str(path), "-o", str(out)])


def test_every_request_goes_through_the_kubeconfigs_proxy_url(control_plane, tmp_path, proxy, monkeypatch):
    # The environment's proxy would refuse, and NO_PROXY would bypass any: proxy-url wins over both.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    result = snapshot(kubeconfig(control_plane, tmp_path, **{"proxy-url": proxy.url}), tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "snapshot.json").is_file()
    assert proxy.tunnels and set(proxy.tunnels) == {urlsplit(control_plane.server).netloc}


def test_the_certificate_is_checked_against_tls_server_name(control_plane, tmp_path, proxy, no_env_proxy):
    server = f"https://{HIDDEN}:{urlsplit(control_plane.server).port}"
    result = snapshot(kubeconfig(control_plane, tmp_path, server=server, **{"proxy-url": proxy.url,
                                                                             "tls-server-name": "localhost"}),
                      tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert set(proxy.tunnels) == {f"{HIDDEN}:{urlsplit(control_plane.server).port}"}


def test_without_tls_server_name_a_certificate_for_another_name_is_refused(control_plane, tmp_path, proxy,
                                                                           no_env_proxy):
    server = f"https://{HIDDEN}:{urlsplit(control_plane.server).port}"
    result = snapshot(kubeconfig(control_plane, tmp_path, server=server, **{"proxy-url": proxy.url}),
                      tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "certificate" in result.output.lower() and HIDDEN in result.output
    assert not (tmp_path / "out" / "snapshot.json").exists()


@pytest.mark.parametrize("url", ["socks5://127.0.0.1:1080", "ftp://proxy.example:21", "not a url"])
def test_a_proxy_url_the_job_cannot_use_is_one_clear_error(control_plane, tmp_path, no_env_proxy, url):
    result = snapshot(kubeconfig(control_plane, tmp_path, **{"proxy-url": url}), tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "proxy-url" in result.output and "http" in result.output
