"""A real Pushgateway and a real Prometheus scraping it, on 127.0.0.1, for the whole module."""
from __future__ import annotations

import pytest

from prom_servers import start_prometheus, start_pushgateway


@pytest.fixture(scope="module")
def prom_stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prom")
    gateway = start_pushgateway(folder)
    try:
        prometheus = start_prometheus(folder, scrape=gateway)
    except BaseException:
        gateway.stop()
        raise
    yield gateway, prometheus
    prometheus.stop()
    gateway.stop()
