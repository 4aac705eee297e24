"""Molecule's verifier for the access scenarios: SSH hardening and TOTP MFA checked by real
SSH logins (paramiko, from this machine to the container's sshd published on loopback),
through the SAME checks as tests/infra (tests/infra/checks.py). The TOTP codes are computed
with pyotp from the otpauth file that the mfa role left on the controller."""

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
from yoroi.lab.seed import PASSWORDS  # noqa: E402

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
ACCESS = yaml.safe_load((Path(__file__).resolve().parents[1] / "group_vars" / "all.yml").read_text())


def _instances() -> list[str]:
    inventory = yaml.safe_load(Path(os.environ["MOLECULE_INVENTORY_FILE"]).read_text())
    return sorted(inventory["all"]["hosts"])


@pytest.fixture(scope="module", params=_instances())
def node(request):
    """(instance name, testinfra host over podman, its sshd on loopback)."""
    name = request.param
    port = subprocess.run(["podman", "port", name, "22/tcp"], capture_output=True, text=True,
                          check=True).stdout.split()[0].rsplit(":", 1)[1]
    return (name, testinfra.get_host("podman://" + name),
            checks.SSHTarget("127.0.0.1", int(port), str(EPHEMERAL / "id_ed25519")))


def test_root_cannot_log_in(node):
    _name, host, ssh = node
    checks.check_root_login_refused(host, ssh, ACCESS["access_root_password"])


def test_automation_account_logs_in_with_its_key(node):
    assert checks.key_login(node[2]), "the automation account cannot log in with its key"


def test_banner_shows_the_contact(node):
    checks.check_banner_shows(node[2], ACCESS["access_contact"])


def test_mfa_user_needs_password_and_totp_code(node):
    name, _host, ssh = node
    user = ACCESS["access_mfa_user"]
    otpauth = EPHEMERAL / "mfa" / name / ("%s.otpauth" % user)
    assert otpauth.is_file(), "no enrolment of %s was handed to the controller (%s)" % (user, otpauth)
    checks.check_totp_required(ssh, user, PASSWORDS[user], otpauth.read_text().strip())


def test_guarded_changes_confirmed_by_a_fresh_login(node):
    checks.check_guards_confirmed(node[1])
