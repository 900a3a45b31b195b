"""What Red Hat's documentation tells users to run works on objects the job writes:
`oc get vuln --all-namespaces` and `oc describe vuln NAME -n NS`, with a real kubectl (built at
the control plane's version by tests/controlplane/kubectl.sh) against the real API server."""
from __future__ import annotations

import subprocess

import pytest
from test_crd_compat import DIGEST, full_spec, full_status

from controlplane import IMV_API, REPO_ROOT, ControlPlane, unavailable

KUBECTL_SCRIPT = REPO_ROOT / "tests" / "controlplane" / "kubectl.sh"


@pytest.fixture(scope="module")
def kubectl() -> str:
    proc = subprocess.run(["bash", str(KUBECTL_SCRIPT)], capture_output=True, text=True)
    if proc.returncode != 0:
        unavailable(f"no kubectl: tests/controlplane/kubectl.sh failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def run(kubectl: str, cp: ControlPlane, *args: str) -> str:
    proc = subprocess.run([kubectl, f"--kubeconfig={cp.kubeconfig}", *args], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_get_and_describe_vuln(control_plane: ControlPlane, namespace: str, kubectl: str) -> None:
    name = DIGEST.replace(":", ".")
    objects = f"{IMV_API}/namespaces/{namespace}/imagemanifestvulns"
    created = control_plane.call("POST", objects, json={
        "apiVersion": "secscan.quay.redhat.com/v1alpha1", "kind": "ImageManifestVuln",
        "metadata": {"name": name, "labels": {"shop/web-7d9f": "true"}}, "spec": full_spec()})
    control_plane.call("PUT", f"{objects}/{name}/status", json={**created, "status": full_status()})

    listed = run(kubectl, control_plane, "get", "vuln", "-A")
    rows = [line.split() for line in listed.splitlines()]
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [namespace, name] in [row[:2] for row in rows[1:]]

    described = run(kubectl, control_plane, "describe", "vuln", name, "-n", namespace)
    assert f"Name:         {name}" in described
    assert "Kind:         ImageManifestVuln" in described
    for text in ("quay.io/team/app", "CVE-2024-0727", "Highest Severity:  Medium", "shop/web-7d9f"):
        assert text in described, text
