"""Fixtures that bring up real lab hosts (podman + systemd containers).

Tests marked ``lab`` need podman; when podman is missing they FAIL with a
clear message (CI installs podman), they are never skipped.
"""

from __future__ import annotations

import os
import random
import shutil
import string

import pytest

from yoroi import lab as yoroi_lab


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "lab: needs podman and the disposable yoroi lab (real Debian containers)"
    )


def _require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.fail(
            "podman is not installed: the lab tests need podman and runc "
            "(Debian packages 'podman', 'runc', 'debootstrap'); install them, do not skip",
            pytrace=False,
        )


def _unique_name() -> str:
    return f"t{os.getpid()}{''.join(random.choices(string.ascii_lowercase + string.digits, k=5))}"


@pytest.fixture(scope="session")
def unique_lab_name():
    """Callable returning a fresh lab name (tests that manage a lab themselves)."""
    _require_podman()
    return _unique_name


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory):
    """Keep test labs' state out of the user's own state dir."""
    path = tmp_path_factory.mktemp("yoroi-lab-state")
    old = os.environ.get("YOROI_STATE_DIR")
    os.environ["YOROI_STATE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("YOROI_STATE_DIR", None)
    else:
        os.environ["YOROI_STATE_DIR"] = old


@pytest.fixture(scope="session")
def make_lab(lab_state_dir):
    """Factory: ``make_lab(release="bookworm", hosts=1)`` -> Lab, cached per
    (release, hosts) for the session and always torn down at the end."""
    labs: dict[tuple[str, int], yoroi_lab.Lab] = {}
    names: list[str] = []

    def factory(release: str = "bookworm", hosts: int = 1) -> yoroi_lab.Lab:
        _require_podman()
        key = (release, hosts)
        if key not in labs:
            name = _unique_name()
            names.append(name)
            labs[key] = yoroi_lab.up(name, hosts=hosts, release=release)
        return labs[key]

    yield factory
    errors = []
    for name in names:
        try:
            yoroi_lab.down(name)
        except Exception as exc:  # keep tearing down the others
            errors.append(f"{name}: {exc}")
    if errors:
        pytest.fail("lab teardown failed: " + "; ".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def lab_bookworm(make_lab):
    return make_lab("bookworm", 1)


@pytest.fixture(scope="session")
def lab_trixie(make_lab):
    return make_lab("trixie", 1)
