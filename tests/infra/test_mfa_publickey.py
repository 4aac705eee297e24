"""TOTP MFA in `publickey` mode: a key first, then a code (AuthenticationMethods
publickey,keyboard-interactive), with real SSH logins from the controller.

The password mode is proven in test_mfa.py on both releases; this proves the key mode
on bookworm: a key alone stops being enough, key + code gets in and only the code is
asked for, and a password + code without the key is refused. The first check is run on
the unhardened host too, where it must fail (the key alone gets in there).
"""

from __future__ import annotations

import socket
import subprocess
import urllib.parse

import paramiko
import pyotp
import pytest
import yaml

from checks import SSHTarget, keyboard_interactive_login
from test_mfa import GROUP, apply, fresh_code, podman_exec
from yoroi import lab as yoroi_lab
from yoroi.lab.seed import PASSWORDS

pytestmark = pytest.mark.lab


def key_then_code(port, user, key_file, code=None):
    """Log in with a key, then answer keyboard-interactive prompts with ``code``.
    Returns (authenticated, prompts seen after the key)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    transport = paramiko.Transport(sock)
    prompts: list[str] = []

    def answer(_title, _instructions, fields):
        prompts.extend(text.strip() for text, _echo in fields)
        return [code or "" for _field in fields]

    try:
        transport.start_client(timeout=15)
        try:
            transport.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(key_file))
            if transport.is_authenticated() or code is None:
                return transport.is_authenticated(), prompts
            transport.auth_interactive(user, answer)
        except (paramiko.AuthenticationException, paramiko.BadAuthenticationType):
            return False, prompts
        return transport.is_authenticated(), prompts
    finally:
        transport.close()


def check_key_alone_refused(port, key_file):
    ok = key_then_code(port, "alice", key_file)[0]
    assert not ok, "alice logs in with her key alone"


@pytest.fixture(scope="module")
def key_lab(unique_lab_name, lab_state_dir, tmp_path_factory):
    name = unique_lab_name()
    try:
        lab = yoroi_lab.up(name, hosts=1, release="bookworm")
        work = tmp_path_factory.mktemp("mfa-key")
        key = work / "alice_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        container = lab.hosts[0].container
        podman_exec(container, "install", "-d", "-m", "0700", "-o", "alice", "-g", "alice", "/home/alice/.ssh")
        yoroi_lab.podman("exec", "-i", container, "sh", "-c",
                         "cat > /home/alice/.ssh/authorized_keys && chown alice:alice /home/alice/.ssh/authorized_keys"
                         " && chmod 600 /home/alice/.ssh/authorized_keys",
                         input=(key.with_suffix(".pub")).read_text())
        inventory = yaml.safe_load(lab.inventory_path.read_text())
        inventory["all"]["children"]["lab"]["vars"].update({
            "yoroi_mfa_groups": [GROUP],
            "yoroi_mfa_mode": "publickey",
            "yoroi_mfa_enrollment_dir": str(work / "otp"),
            "yoroi_mfa_exemptions": [{"user": "yoroi", "methods": "publickey", "from": ["127.0.0.1", "10.0.0.0/8"]}],
        })
        path = work / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory))
        yield lab, path, key, work / "otp"
    finally:
        yoroi_lab.down(name)


def test_publickey_mode_needs_key_and_code(key_lab):
    lab, inventory, key, otp_dir = key_lab
    host = lab.hosts[0]
    port = host.port

    with pytest.raises(AssertionError, match="key alone"):
        check_key_alone_refused(port, key)

    podman_exec(host.container, "usermod", "-aG", GROUP, "alice")
    _output, document = apply(inventory, ["yoroi_mfa_deadline=2099-01-01"])
    assert [f["status"] for f in document["findings"] if f["control"] == "GRD-001"] == ["pass"]

    uri = (otp_dir / host.name / "alice.otpauth").read_text().strip()
    totp = pyotp.TOTP(urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0])

    check_key_alone_refused(port, key)
    ok, prompts = key_then_code(port, "alice", key, fresh_code(totp, set()))
    assert ok and prompts == ["Verification code:"], "key + code refused, or a password was asked: %s" % prompts
    # without the key, the password and a code are not enough
    ok = keyboard_interactive_login(SSHTarget("127.0.0.1", port), "alice", PASSWORDS["alice"], totp.now())[0]
    assert not ok, "password + code got in without the key"
    # the automation account keeps its key-only way in
    ok = key_then_code(port, "yoroi", host.key)[0]
    assert ok, "the automation account's key login was refused"
