"""Fixtures for tests against real parts.

`control_plane`: one real etcd + kube-apiserver for the whole session, with the project's
ImageManifestVuln CRD installed and Established. `namespace`: a fresh namespace per test.
Tests that use them are marked `controlplane` automatically (`-m "not controlplane"` skips them).
"""

from __future__ import annotations

import re
import secrets

import pytest

from controlplane import (
    CRD_NAME,
    PROJECT_CRD,
    ControlPlane,
    ControlPlaneUnavailable,
    find_binaries,
    unavailable,
)

_binaries = pytest.StashKey[object]()


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal even while output is captured."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.controlplane)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Find (or, on a cold machine, build) the binaries before the first test starts, so a
    # long build is not counted against that test's timeout; the build's progress is shown.
    if not any(item.get_closest_marker("controlplane") for item in session.items):
        return
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    try:
        with capture.global_and_fixture_disabled():
            session.config.stash[_binaries] = find_binaries()
    except ControlPlaneUnavailable as exc:
        session.config.stash[_binaries] = exc


@pytest.fixture(scope="session")
def control_plane(request) -> ControlPlane:
    found = request.config.stash.get(_binaries, None)
    if found is None:
        try:
            found = find_binaries()
        except ControlPlaneUnavailable as exc:
            found = exc
    if isinstance(found, ControlPlaneUnavailable):
        unavailable(f"no Kubernetes control plane: {found}")
    cp = ControlPlane.start(found)
    try:
        _say(request.config, f"control plane: etcd + kube-apiserver {cp.server} ready in "
                             f"{cp.startup_seconds:.1f}s (binaries: {found})")
        cp.apply_yaml(PROJECT_CRD)
        cp.wait_crd_established(CRD_NAME)
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane, request) -> str:
    """A new namespace named after the test. Namespaces are not deleted: with no controllers
    running they would only stay Terminating, and the whole cluster goes at session end."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:48].strip("-")
    name = f"{stem}-{secrets.token_hex(3)}"
    control_plane.create_namespace(name, labels={"imvjob.test/test": "true"})
    return name
