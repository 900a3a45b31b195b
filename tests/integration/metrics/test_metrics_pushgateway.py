"""The run's metrics pushed to a real Pushgateway and read back through a real Prometheus's HTTP
API; a failed run keeps the last success; a Pushgateway that is down or slow costs exit 2, never the
run's work; TLS with --extra-certs and basic auth against the real Pushgateway."""
from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import trustme
from click.testing import CliRunner

from job.cli import cli
from prom_servers import start_pushgateway, wait_for

REPO = Path(__file__).resolve().parents[3]
DEMO = ["--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan")]


def run(args, env=None):
    return CliRunner().invoke(cli, ["run", *args], env=env or {}, catch_exceptions=False)


def value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_a_run_pushes_its_figures_and_prometheus_reads_them(prom_stack, tmp_path):
    gateway, prometheus = prom_stack
    cluster = "demo-" + secrets.token_hex(3)
    started = time.time()
    result = run([*DEMO, "--output", str(tmp_path), "--cluster-name", cluster, "--pushgateway-url", gateway.url])
    assert result.exit_code == 0, result.output
    assert "pushed metrics to the Pushgateway" in result.output
    success = wait_for(prometheus, f'imvjob_last_success_timestamp_seconds{{job="imvjob",cluster="{cluster}"}}')
    assert started - 1 <= value(success) <= time.time()
    totals = json.loads((tmp_path / "summary.json").read_text())["totals"]
    for severity, n in totals["vulnerabilities"].items():
        got = wait_for(prometheus, f'imvjob_cluster_vulnerabilities{{cluster="{cluster}",severity="{severity}"}}')
        assert value(got) == n
    per_namespace = wait_for(prometheus, f'sum(imvjob_vulnerabilities_fixable{{cluster="{cluster}"}})')
    assert value(per_namespace) > 0
    unscanned = wait_for(prometheus, f'sum(imvjob_images_unscanned{{cluster="{cluster}"}})')
    assert value(unscanned) == totals["images"]["unscanned"]
    stages = wait_for(prometheus, f'imvjob_stage_duration_seconds{{cluster="{cluster}"}}')
    assert {s["metric"]["stage"] for s in stages} >= {"snapshot", "scan", "apply", "report", "notify"}
    assert value(wait_for(prometheus, f'imvjob_peak_memory_bytes{{cluster="{cluster}"}}')) > 10 << 20
    # No label that grows with the cluster: no CVE, image or pod.
    series = wait_for(prometheus, f'{{cluster="{cluster}",__name__=~"imvjob_.*"}}')
    assert not {k for s in series for k in s["metric"]} & {"cve", "image", "pod", "digest", "vulnerability"}

    # A run that cannot work says when it ran, and keeps the last success and the figures.
    failed = run(["--pods", str(tmp_path / "missing.json"), "--output", str(tmp_path), "--cluster-name", cluster,
                  "--pushgateway-url", gateway.url])
    assert failed.exit_code == 1
    assert value(wait_for(prometheus, f'imvjob_run_exit_code{{cluster="{cluster}"}} == 1')) == 1
    assert value(wait_for(prometheus, f'imvjob_last_success_timestamp_seconds{{cluster="{cluster}"}}')) == \
        value(success)
    assert wait_for(prometheus, f'imvjob_cluster_vulnerabilities{{cluster="{cluster}",severity="Critical"}}')


def test_a_frequent_run_pushes_its_own_figures_and_leaves_the_full_runs(prom_stack, tmp_path):
    gateway, prometheus = prom_stack
    cluster = "demo-" + secrets.token_hex(3)
    common = ["--output", str(tmp_path), "--cluster-name", cluster, "--pushgateway-url", gateway.url]
    assert run([*DEMO, *common]).exit_code == 0
    full = value(wait_for(prometheus, f'imvjob_last_success_timestamp_seconds{{cluster="{cluster}"}}'))
    critical = value(wait_for(prometheus, f'imvjob_cluster_vulnerabilities{{cluster="{cluster}",severity="Critical"}}'))

    started = time.time()
    result = run([*DEMO, *common, "--no-reports"])
    assert result.exit_code == 0, result.output
    success = wait_for(prometheus, f'imvjob_frequent_last_success_timestamp_seconds{{cluster="{cluster}"}}')
    assert started - 1 <= value(success) <= time.time()
    assert success[0]["metric"]["run"] == "frequent"
    created = int(re.search(r"created=(\d+)", result.output)[1])  # offline, the objects are written anew
    assert created and value(wait_for(prometheus, f'imvjob_frequent_objects{{cluster="{cluster}",action="created"}}'))\
        == created
    # The full run's figures stay as it pushed them: a frequent success never stands in for a full one.
    assert value(wait_for(prometheus, f'imvjob_last_success_timestamp_seconds{{cluster="{cluster}"}}')) == full
    assert value(wait_for(prometheus, f'imvjob_cluster_vulnerabilities{{cluster="{cluster}",severity="Critical"}}')) \
        == critical

    # A frequent run that cannot work says so, and keeps its last success.
    failed = run(["--pods", str(tmp_path / "missing.json"), *common, "--no-reports"])
    assert failed.exit_code == 1
    assert value(wait_for(prometheus, f'imvjob_frequent_run_exit_code{{cluster="{cluster}"}} == 1')) == 1
    assert value(wait_for(prometheus, f'imvjob_frequent_last_success_timestamp_seconds{{cluster="{cluster}"}}')) \
        == value(success)
    assert value(wait_for(prometheus, f'imvjob_run_exit_code{{cluster="{cluster}"}}')) == 0


def test_a_frequent_run_names_the_cluster_as_the_full_runs_do(prom_stack, tmp_path):
    """Without --cluster-name, both name it after the snapshot (here "offline": a pod list file)."""
    gateway, prometheus = prom_stack
    common = ["--output", str(tmp_path), "--pushgateway-url", gateway.url]
    started = time.time()
    assert run([*DEMO, *common]).exit_code == 0
    assert run([*DEMO, *common, "--no-reports"]).exit_code == 0
    full = wait_for(prometheus, f'imvjob_last_success_timestamp_seconds > {started - 1}')
    frequent = wait_for(prometheus, f'imvjob_frequent_last_success_timestamp_seconds > {started - 1}')
    assert {s["metric"]["cluster"] for s in full} == {s["metric"]["cluster"] for s in frequent} == {"offline"}


def test_a_pushgateway_that_is_down_costs_exit_2_never_the_work(tmp_path):
    port = _closed_port()
    result = run([*DEMO, "--output", str(tmp_path), "--pushgateway-url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 2, result.output
    assert "metrics not pushed to the Pushgateway: cannot connect" in result.output
    assert (tmp_path / "summary.json").exists() and (tmp_path / "report.html").exists()


def test_a_pushgateway_that_never_answers_is_given_up_after_the_timeout(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    try:
        started = time.monotonic()
        result = run([*DEMO, "--output", str(tmp_path), "--pushgateway-timeout", "1",
                      "--pushgateway-url", f"http://127.0.0.1:{listener.getsockname()[1]}"])
        took = time.monotonic() - started
    finally:
        listener.close()
        for s in held:
            s.close()
    assert result.exit_code == 2, result.output
    assert "no answer within 1s" in result.output
    assert took < 20
    assert (tmp_path / "summary.json").exists()


def test_tls_with_the_registries_cas_and_basic_auth_on_the_real_pushgateway(tmp_path):
    ca = trustme.CA()
    ca_file, cert, key = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    password = "s3cret-" + secrets.token_hex(4)
    hashed = subprocess.run(["htpasswd", "-nbB", "pusher", password], check=True, capture_output=True,
                            text=True).stdout.strip().split(":", 1)[1]
    web = tmp_path / "web.yml"
    web.write_text(json.dumps({"tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                               "basic_auth_users": {"pusher": hashed}}))
    gateway = start_pushgateway(tmp_path, web_config=web)
    try:
        args = [*DEMO, "--output", str(tmp_path / "out"), "--cluster-name", "tls", "--pushgateway-url", gateway.url,
                "--pushgateway-user", "pusher", "--extra-certs", str(ca_file)]
        ok = run(args, env={"IMVJOB_PUSHGATEWAY_PASSWORD": password})
        assert ok.exit_code == 0, ok.output
        context = ssl.create_default_context(cafile=str(ca_file))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
        request = urllib.request.Request(f"{gateway.url}/metrics", headers={
            "Authorization": "Basic " + base64.b64encode(f"pusher:{password}".encode()).decode()})
        with opener.open(request, timeout=10) as response:
            text = response.read().decode()
        assert 'imvjob_last_success_timestamp_seconds{cluster="tls",instance="",job="imvjob"}' in text

        wrong = run(args, env={"IMVJOB_PUSHGATEWAY_PASSWORD": "wrong"})
        assert wrong.exit_code == 2 and "HTTP 401" in wrong.output
        untrusted = run([a for a in args if a != str(ca_file) and a != "--extra-certs"],
                        env={"IMVJOB_PUSHGATEWAY_PASSWORD": password})
        assert untrusted.exit_code == 2 and "CERTIFICATE_VERIFY_FAILED" in untrusted.output
        assert password not in ok.output + wrong.output + untrusted.output
    finally:
        gateway.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
