"""Connecting as a CronJob run starts: a fresh process, a kubeconfig, the real API server.

The job loads its configuration with the kubernetes client's loader (contexts, exec plugins, token
refresh, OIDC and other auth providers, client certificates, proxies) but sends its requests
itself: the client's API and model classes (about 37 MB) must not be imported for that.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent("""
    import json, sys
    from job import kube
    from job.settings import Settings

    client = kube.connect(Settings(kubeconfig=sys.argv[1], context="exec"))
    names = [n.name for n in client.list_namespaces()]
    certs = kube.connect(Settings(kubeconfig=sys.argv[1], context="cert")).auth
    cert_files = [open(f).read() for f in certs.cert]
    light = sorted(m for m in sys.modules if m.startswith("kubernetes.client.") and
                   m.split(".")[2] in ("api", "models", "api_client", "rest"))
    # A later import of the package, anywhere in the process, still gets all of it.
    import kubernetes
    from kubernetes.config import kube_config
    oidc_client = kube_config.ApiClient(configuration=kubernetes.client.Configuration())
    print(json.dumps({"light": light, "namespaces": "default" in names,
                      "cert_files": cert_files,
                      "context": client.cluster_name, "own_namespace": client.own_namespace,
                      "same_configuration": type(client.auth.config) is kubernetes.client.Configuration,
                      "oidc_client": type(oidc_client) is kubernetes.client.ApiClient,
                      "models": hasattr(kubernetes.client, "V1Pod")}))
""")


def _kubeconfig(control_plane, tmp_path: Path) -> Path:
    """A kubeconfig whose user is an exec plugin (client.authentication.k8s.io/v1) handing out the token,
    and a context with a client certificate."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
                      "'kind': 'ExecCredential', 'status': {'token': %r}}))\n" % control_plane.admin_token)
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": control_plane.server,
                                               "certificate-authority": str(control_plane.ca_file)}},
                     {"name": "p", "cluster": {"server": control_plane.server,
                                               "certificate-authority": str(control_plane.ca_file)}}],
        "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                  "command": sys.executable, "args": [str(plugin)],
                                                  "interactiveMode": "Never"}}},
                  {"name": "cert", "user": {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                            "client-key-data": base64.b64encode(b"KEY").decode()}}],
        "contexts": [{"name": "exec", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
                     {"name": "cert", "context": {"cluster": "p", "user": "cert"}}],
        "current-context": "exec",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_fresh_process_connects_through_an_exec_plugin_without_the_client_classes(control_plane,
                                                                                   tmp_path) -> None:
    kubeconfig = _kubeconfig(control_plane, tmp_path)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(kubeconfig)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["namespaces"], "the exec plugin's token was sent"
    assert (got["context"], got["own_namespace"]) == ("exec", "team-a")
    assert got["light"] == [], "the client's API and model classes were imported to connect"
    assert got["cert_files"] == ["CERT", "KEY"]
    assert got["same_configuration"] and got["oidc_client"] and got["models"]
