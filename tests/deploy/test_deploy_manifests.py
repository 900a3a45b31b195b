"""cronjob.yaml and the CRD as files: checkov's Kubernetes checks, and what the job reads from them.

Installing them on a real API server, and the RBAC they grant, is tests/integration/test_deploy.py.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from job.settings import SECRET_ENV, SETTING_FIELDS, envvar, load_config_file

ROOT = Path(__file__).resolve().parents[2]
CRONJOB = ROOT / "cronjob.yaml"
CRD = ROOT / "imagemanifestvuln.crd.yaml"
SKIP_RE = re.compile(r"^(\s*)checkov\.io/skip\d+:\s*(CKV2?_[A-Z0-9_]+)=(.*)$")
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}


def documents(path: Path = CRONJOB) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def one(kind: str, name: str | None = None) -> dict:
    [found] = [d for d in documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def container() -> dict:
    [c] = one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return c


# --- checkov --------------------------------------------------------------------------------


def _checkov(checkov: Path, *files: Path) -> dict:
    result = subprocess.run(
        [str(checkov), "--framework", "kubernetes", "--compact", "--skip-download", "--output", "json",
         *[arg for f in files for arg in ("--file", str(f))]],
        capture_output=True, text=True, timeout=600, cwd=files[0].parent)
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    [report] = report if isinstance(report, list) else [report]
    assert report["check_type"] == "kubernetes"
    return report


def _findings(checks: list[dict]) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for c in checks}


def test_checkov_passes_every_check_of_both_files(checkov: Path):
    report = _checkov(checkov, CRONJOB, CRD)
    failed = report["results"]["failed_checks"]
    assert not failed, "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == len(documents(CRONJOB)) + len(documents(CRD))
    assert summary["passed"] > 50  # it did look


def test_every_skip_is_justified_next_to_it_and_suppresses_a_real_finding(checkov: Path, tmp_path: Path):
    lines = CRONJOB.read_text(encoding="utf-8").splitlines()
    skips = 0
    for number, line in enumerate(lines):
        match = SKIP_RE.match(line)
        if not match:
            continue
        skips += 1
        check, reason = match.group(2), match.group(3).strip()
        assert len(reason) > 20, f"line {number + 1}: {check} skipped without a reason"
        comment = []
        for above in reversed(lines[:number]):
            if not above.strip().startswith("#"):
                break
            comment.append(above)
        assert any(check in c for c in comment), f"line {number + 1}: no comment above explains {check}"
    assert skips, "no skips found: the pattern is wrong"

    # Without the skips, exactly the skipped checks fail: none is there for nothing.
    bare = tmp_path / "cronjob.yaml"
    bare.write_text("\n".join(line for line in lines if not SKIP_RE.match(line)) + "\n", encoding="utf-8")
    skipped = _findings(_checkov(checkov, CRONJOB)["results"]["skipped_checks"])
    failed_without = _findings(_checkov(checkov, bare)["results"]["failed_checks"])
    assert skipped and failed_without == skipped


# --- what the job reads ---------------------------------------------------------------------


def test_namespaced_objects_name_no_namespace_so_apply_n_places_them():
    for doc in documents():
        if doc["kind"] not in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"], f"{doc['kind']} {doc['metadata']['name']}"


def test_the_documented_sed_changes_exactly_the_bindings_namespace():
    text = CRONJOB.read_text(encoding="utf-8")
    assert "sed 's/namespace: imvjob$/namespace: NS/'" in text
    changed = re.sub(r"namespace: imvjob$", "namespace: security-tools", text, flags=re.M)
    before, after = documents(), [d for d in yaml.safe_load_all(changed) if d]
    differences = [(b["kind"], a) for b, a in zip(before, after) if a != b]
    assert [kind for kind, _ in differences] == ["ClusterRoleBinding"]
    assert differences[0][1]["subjects"] == [{"kind": "ServiceAccount", "name": "imvjob",
                                              "namespace": "security-tools"}]


def test_no_rule_uses_a_wildcard():
    for doc in documents():
        for rule in doc.get("rules", []):
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f"{doc['kind']} {doc['metadata']['name']}: {rule}"


def test_every_environment_variable_is_one_the_job_reads():
    known = {envvar(f.name) for f in SETTING_FIELDS} | set(SECRET_ENV) | {"IMVJOB_CONFIG"}
    names = [e["name"] for e in container()["env"]]
    assert len(names) == len(set(names))
    assert set(names) <= known, f"the job ignores {sorted(set(names) - known)}"
    for entry in container()["env"]:
        if entry["name"] in SECRET_ENV:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["optional"] is True, f"{entry['name']}: the job must start without the Secret"
        else:
            assert "value" in entry, f"{entry['name']}: settings are plain values, secrets come from Secrets"


def test_the_paths_in_the_environment_are_the_mounted_volumes():
    c = container()
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]}
    config = mounts[env["IMVJOB_CONFIG"]]
    assert volumes[config["name"]]["configMap"]["name"] == "imvjob-config" and config["subPath"] == "config.yaml"
    certs = volumes[mounts[env["IMVJOB_EXTRA_CERTS"]]["name"]]["projected"]["sources"]
    assert {"secret": {"name": "container-security-operator-extra-certs", "optional": True}} in certs
    assert {"configMap": {"name": "imvjob-trusted-ca", "optional": True}} in certs
    assert one("ConfigMap", "imvjob-trusted-ca")["metadata"]["labels"]["config.openshift.io/inject-trusted-cabundle"] \
        == "true"
    assert "emptyDir" in volumes[mounts[env["IMVJOB_OUTPUT"]]["name"]]
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    workdir = [line.split()[1] for line in (ROOT / "Containerfile").read_text().splitlines()
               if line.startswith("WORKDIR ")][-1]
    assert env["IMVJOB_OUTPUT"] == f"{workdir}/reports", "the image's group-0 writable reports/ folder"


def _uncommented_config() -> tuple[str, list[str]]:
    text = one("ConfigMap", "imvjob-config")["data"]["config.yaml"]
    keys = re.findall(r"^# ([a-z_]+): ", text, flags=re.M)
    return re.sub(r"^# ([a-z_]+: )", r"\1", text, flags=re.M), keys


def test_the_config_file_lists_every_setting_at_its_true_default(tmp_path: Path):
    text, keys = _uncommented_config()
    assert sorted(keys) == sorted(f.name for f in SETTING_FIELDS)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    values = load_config_file(str(path))  # what the job does with IMVJOB_CONFIG
    for f in SETTING_FIELDS:
        value = tuple(values[f.name]) if isinstance(values[f.name], list) else values[f.name]
        assert value == f.default and type(value) is type(f.default), f"{f.name}: {value!r} != {f.default!r}"


def test_the_shipped_config_file_is_accepted_as_it_is(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(one("ConfigMap", "imvjob-config")["data"]["config.yaml"], encoding="utf-8")
    assert load_config_file(str(path)) == {}  # every setting at its default until uncommented


def test_the_job_runs_the_play_with_the_images_entrypoint():
    assert "command" not in container(), "the image's ENTRYPOINT (imvjob) is kept"
    assert container()["args"] == ["run"]
