"""The Containerfile: linted by hadolint, and replayed step by step, since no image can be built
here (no container engine, no registry for the base image).

The replay does what a builder would: it sends the build context through .containerignore,
runs each COPY from it and each RUN in a fresh virtualenv standing for the base image's
(/opt/app-root), as the base image's user 1001 in group 0, then runs the entrypoint. Finally it
runs the play the way the CronJob's pod does: as an arbitrary UID in group 0 (what OpenShift's
restricted-v2 SCC gives), with the pod's environment and config file, writing only to the
folders the pod mounts.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from containerfile import IgnoreFile, Step, context_files, copy_args, exec_form, key_values, parse

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
BASE_USER = "1001"  # the base image's user; RUN steps before any USER run as it
POD_UID = 1000870000  # a UID from an OpenShift namespace's range


def steps() -> list[Step]:
    return parse(CONTAINERFILE.read_text(encoding="utf-8"))


def only(instruction: str) -> Step:
    found = [s for s in steps() if s.instruction == instruction]
    assert len(found) == 1, f"expected one {instruction}, found {len(found)}"
    return found[0]


# --- lint ---------------------------------------------------------------------------------


def _hadolint(hadolint: Path, path: Path) -> list[dict]:
    result = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json",
         "--require-label", "org.opencontainers.image.title:text",
         "--require-label", "org.opencontainers.image.version:semver",
         "--require-label", "org.opencontainers.image.description:text",
         str(path)],
        capture_output=True, text=True, timeout=120, cwd=path.parent)
    assert result.stdout.strip(), f"hadolint printed nothing: {result.stderr}"
    return json.loads(result.stdout)


def test_hadolint_finds_nothing(hadolint: Path):
    findings = _hadolint(hadolint, CONTAINERFILE)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_does_find_what_it_should(hadolint: Path, tmp_path: Path):
    # The same call on a careless Containerfile: proves the clean result above means something.
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM registry.access.redhat.com/ubi9/python-311:latest\nRUN pip install requests\n")
    codes = {f["code"] for f in _hadolint(hadolint, bad)}
    assert {"DL3007", "DL3013", "DL3042"} <= codes
    assert any(code == "DL3049" for code in codes)  # the required labels are missing


# --- what the file says ---------------------------------------------------------------------


def test_base_image_user_and_entrypoint():
    assert only("FROM").args.split(":")[0] == "registry.access.redhat.com/ubi9/python-311"
    user = only("USER").args
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER, so runAsNonRoot can check it"
    assert steps()[-2:] == [s for s in steps() if s.instruction in ("ENTRYPOINT", "CMD")]
    assert exec_form(only("ENTRYPOINT").args) == ["imvjob"]
    assert exec_form(only("CMD").args) == ["run"]


def test_labels_name_the_project_and_its_version():
    labels = key_values(only("LABEL").args)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.version"] == project["version"]
    assert labels["org.opencontainers.image.base.name"] == only("FROM").args


def test_dependencies_are_installed_in_a_layer_before_the_code():
    # So that a change to job/ does not reinstall every dependency.
    order = [(s.instruction, s.args) for s in steps()]
    copies = [i for i, (ins, _) in enumerate(order) if ins == "COPY"]
    first_copy = copy_args(order[copies[0]][1])
    assert first_copy.sources == ("requirements.txt",)
    assert order[copies[0] + 1][0] == "RUN" and "-r requirements.txt" in order[copies[0] + 1][1]
    assert all("job" not in " ".join(copy_args(order[i][1]).sources) for i in copies[:1])
    assert any("job" in src for i in copies[1:] for src in copy_args(order[i][1]).sources)


def test_every_copy_source_is_in_the_build_context():
    ignore = IgnoreFile((ROOT / ".containerignore").read_text(encoding="utf-8"))
    for step in steps():
        if step.instruction != "COPY":
            continue
        for source in copy_args(step.args).sources:
            assert (ROOT / source).exists(), f"line {step.line}: COPY {source}: no such file"
            assert context_files(ROOT, source, ignore), f"line {step.line}: {source} is excluded by .containerignore"
    # What stays out: the virtualenvs, the git history, reports, caches.
    for path in (".venv/bin/python", ".git/HEAD", "reports/README.md", "tests/unit/test_desired.py",
                 "job/__pycache__/cli.cpython-311.pyc"):
        assert ignore.excluded(path), path


def test_docker_reads_the_same_ignore_file():
    assert (ROOT / ".dockerignore").read_text(encoding="utf-8") == \
        (ROOT / ".containerignore").read_text(encoding="utf-8")


# --- the replay -----------------------------------------------------------------------------


def _setpriv(user: str | int) -> list[str]:
    return ["setpriv", f"--reuid={user}", "--regid=0", "--clear-groups", "--"]


def _python_for_every_uid() -> str | None:
    """A Python 3.11 that other UIDs may run too (the base image's is 3.11); None when there is
    none or we cannot switch UIDs (not root): the replay then runs as the current user."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11", sys._base_executable):
        if candidate and os.path.exists(candidate):
            probe = subprocess.run([*_setpriv(BASE_USER), candidate, "-c",
                                    "import sys, venv; assert sys.version_info[:2] == (3, 11)"],
                                   capture_output=True, timeout=60)
            if probe.returncode == 0:
                return candidate
    return None


SWITCH_PYTHON = _python_for_every_uid()


def _as_user(user: str | int | None) -> list[str]:
    """A command prefix that runs as `user` in group 0; [] when the replay cannot switch UIDs."""
    return _setpriv(user) if user is not None and SWITCH_PYTHON else []


def _chown(path: Path, user: str) -> None:
    if SWITCH_PYTHON:
        os.chown(path, int(user), 0)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("IMVJOB_", "VIRTUAL_ENV", "PYTHON")) and k not in ("KUBECONFIG",)}


@dataclass
class Image:
    base: Path
    root: Path
    workdir: Path = Path()
    env: dict[str, str] = field(default_factory=dict)
    user: str = BASE_USER
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def path(self, inside: str) -> Path:
        """Where a path of the image lies in the replay."""
        return self.root / inside.lstrip("/") if inside.startswith("/") else self.workdir / inside

    def run(self, argv: list[str], *, user: str | int | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_user(user if user is not None else self.user), *argv], cwd=self.workdir,
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> Image:
    base = Path(tempfile.mkdtemp(prefix="imvjob-replay-"))
    base.chmod(0o755)  # other UIDs must reach what is inside, as in an image
    try:
        yield _replay(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _replay(base: Path) -> Image:
    img = Image(base=base, root=base / "root")
    venv = img.root / "opt" / "app-root"  # the base image's virtualenv, which its PATH puts first
    subprocess.run([SWITCH_PYTHON or sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                   timeout=300)
    for path in [venv, *venv.rglob("*")]:
        if not path.is_symlink():
            _chown(path, BASE_USER)
    img.env = {**_clean_env(), "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
               "VIRTUAL_ENV": str(venv), "HOME": str(venv / "src")}
    img.workdir = venv / "src"
    ignore = IgnoreFile((ROOT / ".containerignore").read_text(encoding="utf-8"))
    for step in parse(CONTAINERFILE.read_text(encoding="utf-8")):
        if step.instruction == "WORKDIR":
            img.workdir = img.path(step.args)
            img.workdir.mkdir(parents=True, exist_ok=True)
            _chown(img.workdir, BASE_USER)
        elif step.instruction == "ENV":
            img.env.update(key_values(step.args))
        elif step.instruction == "USER":
            img.user = step.args
        elif step.instruction == "COPY":
            _copy(img, copy_args(step.args), ignore, step)
        elif step.instruction == "RUN":
            result = img.run(["bash", "-c", step.args])
            img.log.append(f"RUN {step.args}\n{result.stdout}{result.stderr}")
            assert result.returncode == 0, f"line {step.line}: RUN failed ({result.returncode}):\n" \
                                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        elif step.instruction == "ENTRYPOINT":
            img.entrypoint = exec_form(step.args)
        elif step.instruction == "CMD":
            img.cmd = exec_form(step.args)
    return img


def _copy(img: Image, copy, ignore: IgnoreFile, step: Step) -> None:
    owner = copy.chown.split(":")[0] if copy.chown else "0"
    for source in copy.sources:
        files = context_files(ROOT, source, ignore)
        assert files, f"line {step.line}: COPY {source}: nothing in the build context"
        is_dir = (ROOT / source).is_dir()
        for rel in files:
            if is_dir:
                target = img.path(copy.dest) / Path(rel).relative_to(source.strip("/"))
            elif copy.dest.endswith("/"):
                target = img.path(copy.dest) / Path(rel).name
            else:
                target = img.path(copy.dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target)
            for path in (target, *[p for p in target.parents if img.workdir in (p, *p.parents)]):
                _chown(path, owner)


def test_the_entrypoint_answers_help(image: Image):
    top = image.run([*image.entrypoint, "--help"])
    assert top.returncode == 0, top.stderr
    assert "Usage: imvjob" in top.stdout and "run" in top.stdout
    run = image.run([*image.entrypoint, *image.cmd, "--help"])
    assert run.returncode == 0, run.stderr
    assert "Usage: imvjob run" in run.stdout and "--kubeconfig" in run.stdout


def test_the_job_and_its_templates_come_from_the_image(image: Image):
    # -P: not the working folder first on sys.path, as for the `imvjob` entrypoint.
    where = image.run(["python", "-P", "-c", "import job.report.templating as h; print(h.__file__); print(h.TEMPLATES)"])
    assert where.returncode == 0, where.stderr
    module, templates = (Path(line) for line in where.stdout.split())
    assert module.is_relative_to(image.workdir), module
    assert (templates / "report.html").is_file() and (templates / "mail" / "summary.html").is_file()
    assert templates.is_relative_to(image.workdir), templates


def _cronjob_container() -> tuple[dict, dict]:
    docs = [d for d in yaml.safe_load_all((ROOT / "cronjob.yaml").read_text(encoding="utf-8")) if d]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "imvjob-config")
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container, config


@pytest.mark.skipif(SWITCH_PYTHON is None, reason="needs root (CI runs as root) and a Python 3.11 that any UID "
                                                   "may run, such as /usr/bin/python3.11")
def test_the_play_runs_as_an_arbitrary_uid_in_group_0_with_the_pods_settings(image: Image):
    container, config = _cronjob_container()
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    # The pod's mounts: the ConfigMap's file, empty extra-certs and webhooks folders (optional
    # Secrets not created, not OpenShift), emptyDirs for /tmp and reports/ (mode 1777/0777 as the
    # kubelet makes them).
    image.path(env["IMVJOB_CONFIG"]).parent.mkdir(parents=True, exist_ok=True)
    image.path(env["IMVJOB_CONFIG"]).write_text(config["data"]["config.yaml"], encoding="utf-8")
    image.path(env["IMVJOB_EXTRA_CERTS"]).mkdir(parents=True, exist_ok=True)
    image.path(env["IMVJOB_WEBHOOK_URLS_FILE"]).mkdir(parents=True, exist_ok=True)
    tmp = image.base / "pod-tmp"
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)
    reports = image.path(env["IMVJOB_OUTPUT"])
    assert reports == image.workdir / "reports", "the pod writes where the image's group-0 folder is"
    demo = image.base / "demo"
    shutil.copytree(ROOT / "demo", demo)
    pod_env = {name: str(image.path(value)) if value.startswith("/") else value for name, value in env.items()}
    before = {p for p in image.root.rglob("*") if not p.is_relative_to(reports)}

    result = image.run([*image.entrypoint, *container["args"], "--pods", str(demo / "pods.json"),
                        "--secscan-dir", str(demo / "secscan")],
                       user=POD_UID, env={**pod_env, "TMPDIR": str(tmp), "HOME": str(image.workdir)})

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "imvjob: ok=" in result.stdout + result.stderr
    written = {p.name: p for p in reports.iterdir()}
    for name in ("report.html", "report.xlsx", "summary.json", "imagemanifestvulns.yaml"):
        assert name in written, f"{name} not written; reports/ holds {sorted(written)}"
        assert written[name].stat().st_uid == POD_UID
    after = {p for p in image.root.rglob("*") if not p.is_relative_to(reports)}
    assert after == before, f"written outside reports/ and /tmp: {sorted(map(str, after - before))[:10]}"
