"""Molecule's verifier: the SAME checks as tests/infra (tests/infra/checks.py), on the
converged container, through testinfra's podman backend and real SSH logins to the
container's port published on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
sys.path[:0] = [str(PROJECT / "tests" / "infra"), str(PROJECT / "src")]

import checks  # noqa: E402
import testinfra  # noqa: E402

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
UNLOCK_TIME = 20  # converge.yml


def _instances() -> list[str]:
    inventory = yaml.safe_load(Path(os.environ["MOLECULE_INVENTORY_FILE"]).read_text())
    return sorted(inventory["all"]["hosts"])


@pytest.fixture(scope="module", params=_instances())
def node(request):
    name = request.param
    port = subprocess.run(["podman", "port", name, "22/tcp"], capture_output=True, text=True,
                          check=True).stdout.split()[0].rsplit(":", 1)[1]
    return (testinfra.get_host("podman://" + name),
            checks.SSHTarget("127.0.0.1", int(port), str(EPHEMERAL / "id_ed25519")))


def test_stale_account_locked(node):
    checks.check_stale_account_locked(*node)


def test_never_used_locked_breakglass_exempt(node):
    checks.check_never_used_locked_breakglass_exempt(*node)


def test_empty_password_refused(node):
    checks.check_empty_password_refused(node[0])


def test_extra_uid0_locked(node):
    checks.check_extra_uid0_locked(node[0])


def test_system_account_no_shell(node):
    checks.check_system_account_no_shell(node[0])


def test_weak_password_refused(node):
    checks.check_weak_password_refused(node[0])


def test_password_reuse_refused(node):
    checks.check_password_reuse_refused(node[0])


def test_faillock(node):
    checks.check_faillock(*node, unlock_time=UNLOCK_TIME)


def test_password_aging(node):
    checks.check_password_aging(node[0])
