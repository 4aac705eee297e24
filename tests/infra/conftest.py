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


# --- suites that harden lab hosts (test_accounts, test_password_policy, test_cli) ------
#
# Each of those modules brings up its own lab (module scope, unique name, always torn
# down) with one host left unhardened, so every check runs twice: it must fail there and
# pass on a host that `yoroi apply` hardened.

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

# testinfra's podman backend calls podman directly: give it the lab's containers.conf
# (runc, ulimits), as yoroi.lab does for its own calls.
os.environ.setdefault("CONTAINERS_CONF", str(yoroi_lab.CONTAINERS_CONF))

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Node:
    """One lab host as the checks see it: a testinfra host and its SSH endpoint."""

    name: str  # inventory name
    container: str
    host: object  # testinfra.host.Host (podman backend)
    ssh: object  # checks.SSHTarget


def nodes_of(lab) -> list[Node]:
    import testinfra

    from checks import SSHTarget

    return [
        Node(h.name, h.container, testinfra.get_host("podman://" + h.container),
             SSHTarget(h.address, int(h.port), h.key, h.user))
        for h in lab.hosts
    ]


@pytest.fixture(scope="module")
def module_lab(lab_state_dir):
    """Factory: ``module_lab(hosts=2)`` -> (Lab, [Node]); the labs are removed when the
    test module ends, whatever happened."""
    _require_podman()
    names: list[str] = []

    def factory(hosts: int = 1, release: str = "bookworm"):
        name = _unique_name()
        names.append(name)
        lab = yoroi_lab.up(name, hosts=hosts, release=release)
        return lab, nodes_of(lab)

    yield factory
    errors = []
    for name in names:
        try:
            yoroi_lab.down(name)
        except Exception as exc:
            errors.append(f"{name}: {exc}")
    if errors:
        pytest.fail("lab teardown failed: " + "; ".join(errors), pytrace=False)


def run_yoroi(*args: str, state_dir, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m yoroi ARGS`` from the working tree, with its own state dir so runs
    never mix with the user's (or another test's)."""
    env = dict(os.environ)
    env["YOROI_STATE_DIR"] = str(state_dir)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), str(REPO / ".dev" / "collections"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO / ".dev" / "collections")
    return subprocess.run([sys.executable, "-m", "yoroi", *args], capture_output=True, check=False, text=True,
                          timeout=timeout, env=env, cwd=str(state_dir))


def yoroi_json(res: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"yoroi printed no JSON (rc={res.returncode}):\n{res.stdout}\n{res.stderr}")


@pytest.fixture(scope="session")
def yoroi_cli():
    """The CLI helpers for test modules: ``.run(*args, state_dir=...)`` and ``.json(res)``."""
    from types import SimpleNamespace

    return SimpleNamespace(run=run_yoroi, json=yoroi_json, repo=REPO)


@pytest.fixture(scope="module")
def apply_to(tmp_path_factory):
    """``apply_to(lab, {host: [-e KEY=VALUE, ...]})``: `yoroi apply` each host (in
    parallel, one run per host) and return {host: run document}; a failed apply fails
    the test."""

    def apply(lab, per_host: dict[str, list[str]], tags: tuple[str, ...] = ()) -> dict:
        def one(item):
            host, extra = item
            state = tmp_path_factory.mktemp("yoroi-state")
            argv = ["apply", "--yes", "-i", str(lab.inventory_path), "--limit", host, "-o", "json"]
            for tag in tags:
                argv += ["--tags", tag]
            for pair in extra:
                argv += ["-e", pair]
            res = run_yoroi(*argv, state_dir=state)
            return host, res

        with ThreadPoolExecutor(max_workers=max(1, len(per_host))) as pool:
            results = dict(pool.map(one, per_host.items()))
        documents = {}
        for host, res in results.items():
            document = yoroi_json(res)
            assert res.returncode == 0, f"yoroi apply on {host} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}"
            documents[host] = document
        return documents

    return apply


@pytest.fixture(scope="module")
def apply_twice_and_audit(tmp_path_factory):
    """``apply_twice_and_audit(lab, node, tag)`` -> {"apply", "second", "audit": (res, document)}:
    `yoroi apply --tags TAG` twice on one host, then `yoroi audit --tags TAG`, each with
    its own state dir; the caller asserts on the exit codes and findings."""

    def run(lab, node, tag: str) -> dict:
        runs = {}
        for name, command in (("apply", "apply"), ("second", "apply"), ("audit", "audit")):
            argv = [command, "-i", str(lab.inventory_path), "--limit", node.name, "--tags", tag, "-o", "json"]
            if command == "apply":
                argv.insert(1, "--yes")
            res = run_yoroi(*argv, state_dir=tmp_path_factory.mktemp("yoroi-state"))
            runs[name] = (res, yoroi_json(res))
        return runs

    return run
