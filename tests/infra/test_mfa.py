"""TOTP MFA on real lab hosts: real SSH logins with paramiko, codes computed with pyotp.

Independent of the role (DESIGN invariant 7): nothing from the roles or modules is
imported. The role is applied through the CLI (`yoroi apply -t mfa`); the checks are
real logins from this machine to the host's published port on 127.0.0.1. Each check is
first shown to fail on the unhardened host (alice gets in with her password alone).
The secret of the enrolled user is read from the controller-side otpauth file only, and
must appear neither in the CLI output nor in the saved run JSON.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse

import paramiko
import pyotp
import pytest
import yaml
from click.testing import CliRunner

from checks import SSHTarget, keyboard_interactive_login
from yoroi import lab as yoroi_lab
from yoroi.cli import main
from yoroi.lab.seed import PASSWORDS

pytestmark = pytest.mark.lab

GROUP = "mfa-users"
RATE_WINDOW = 31  # the enrolment's RATE_LIMIT 3 30: wait it out between bursts of attempts


def login(port, user, password=None, code=None, key=None, method="keyboard-interactive"):
    """A real SSH login on 127.0.0.1:port: (authenticated, prompts seen)."""
    if method == "keyboard-interactive":
        return keyboard_interactive_login(SSHTarget("127.0.0.1", port), user, password, code)
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=15)
        try:
            if method == "publickey":
                transport.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(key))
            else:
                transport.auth_password(user, password)
        except (paramiko.AuthenticationException, paramiko.BadAuthenticationType):
            return False, []
        return transport.is_authenticated(), []
    finally:
        transport.close()


def podman_exec(container, *argv):
    subprocess.run(["podman", "exec", container, *argv], check=True, capture_output=True)


def apply(inventory, extra_vars=()):
    args = ["apply", "-i", str(inventory), "--yes", "-t", "mfa", "-o", "json", "-q"]
    for pair in extra_vars:
        args += ["-e", pair]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    document = json.loads(result.stdout)
    assert document["exit_code"] in (0, 2), result.output
    return result.output, document


def findings(document, control):
    return [f for f in document["findings"] if f["control"] == control]


def fresh_code(totp, used):
    """A code different from those already used (DISALLOW_REUSE refuses a repeat)."""
    while totp.now() in used:
        time.sleep(2)
    return totp.now()


def mfa_inventory(lab, tmp_path_factory, **variables):
    """The lab's inventory with these suites' MFA variables (and ``variables``): (path, otp_dir)."""
    otp_dir = tmp_path_factory.mktemp("otp")
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["all"]["children"]["lab"]["vars"].update(dict({
        "yoroi_mfa_groups": [GROUP],
        "yoroi_mfa_enrollment_dir": str(otp_dir),
        "yoroi_mfa_exemptions": [{"user": "yoroi", "methods": "publickey", "from": ["127.0.0.1", "10.0.0.0/8"]}],
    }, **variables))
    path = tmp_path_factory.mktemp("inv") / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path, otp_dir


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def mfa_lab(request, unique_lab_name, lab_state_dir, tmp_path_factory):
    """An own lab per release (other suites lock bob and carol), always torn down."""
    name = unique_lab_name()
    try:
        lab = yoroi_lab.up(name, hosts=1, release=request.param)
        path, otp_dir = mfa_inventory(lab, tmp_path_factory)
        yield lab, path, otp_dir, lab_state_dir
    finally:
        yoroi_lab.down(name)


def test_mfa_end_to_end(mfa_lab):
    lab, inventory, otp_dir, state_dir = mfa_lab
    host = lab.hosts[0]
    port, container = host.port, host.container
    alice_pw = PASSWORDS["alice"]

    # Unhardened: alice gets in with her password alone - the check below must fail here.
    assert login(port, "alice", alice_pw, method="password")[0], "unhardened host refused alice's password"

    podman_exec(container, "groupadd", "-f", GROUP)
    podman_exec(container, "usermod", "-aG", GROUP, "alice")
    output, document = apply(inventory, ["yoroi_mfa_deadline=2099-01-01"])

    uri = (otp_dir / host.name / "alice.otpauth").read_text().strip()
    assert uri.startswith("otpauth://totp/Yoroi:alice%40" + host.name + "?")
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    assert len(secret) == 32
    saved = (state_dir / "runs" / "last.json").read_text()
    assert secret not in output and secret not in saved, "the TOTP secret leaked into the output or the saved run"
    assert [f["subject"] for f in findings(document, "MFA-002") if f["status"] == "fixed"] == ["alice"]
    exempt = findings(document, "MFA-004")
    assert [(f["subject"], f["status"]) for f in exempt] == [("yoroi", "skipped")]
    assert "127.0.0.1,10.0.0.0/8" in exempt[0]["actual"]
    assert findings(document, "MFA-001")[0]["status"] in ("fixed", "pass")
    assert [f["status"] for f in findings(document, "GRD-001")] == ["pass"], "the fresh login did not confirm the change"

    totp = pyotp.TOTP(secret)
    # password alone is refused, by both methods
    assert not login(port, "alice", alice_pw, method="password")[0]
    code = fresh_code(totp, set())
    ok, prompts = login(port, "alice", alice_pw, code)
    assert ok and prompts == ["Password:", "Verification code:"], prompts
    ok, prompts = login(port, "alice", alice_pw, code)
    assert not ok and "Verification code:" in prompts, "a replayed code was accepted (or never asked)"
    time.sleep(RATE_WINDOW)
    assert not login(port, "alice", alice_pw, None)[0], "no code, yet logged in"
    wrong = "%06d" % ((int(totp.now()) + 500000) % 1000000)
    assert not login(port, "alice", alice_pw, wrong)[0], "a wrong code was accepted"
    # the automation account still gets in with its key; a non-member is unaffected
    assert login(port, "yoroi", key=host.key, method="publickey")[0]
    assert login(port, "bob", PASSWORDS["bob"], method="password")[0]

    # Grace period: bob joins the group, enrolment off. Before the deadline he gets in
    # with his password and is reported; after it he does not.
    podman_exec(container, "usermod", "-aG", GROUP, "bob")
    output, document = apply(inventory, ["yoroi_mfa_deadline=2099-01-01", "yoroi_mfa_enroll=false"])
    bob = [f for f in findings(document, "MFA-002") if f.get("subject") == "bob"][0]
    assert bob["status"] == "fail" and bob["actual"] == "not enrolled; grace until 2099-01-01"
    assert login(port, "bob", PASSWORDS["bob"])[0], "unenrolled member refused during the grace period"

    output, document = apply(inventory, ["yoroi_mfa_deadline=2000-01-01", "yoroi_mfa_enroll=false"])
    assert secret not in output
    assert not login(port, "bob", PASSWORDS["bob"])[0], "unenrolled member got in after the deadline"
    assert not login(port, "bob", PASSWORDS["bob"], method="password")[0]
    time.sleep(RATE_WINDOW)
    ok, _prompts = login(port, "alice", alice_pw, fresh_code(totp, {code}))
    assert ok, "enrolled member refused after the deadline"
    assert login(port, "yoroi", key=host.key, method="publickey")[0]
    assert secret not in (state_dir / "runs" / "last.json").read_text()
