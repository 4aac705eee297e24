"""MFA enrolment hand-off on real lab hosts: what a hostile member and a failed hand-off do.

Independent of the role (DESIGN invariant 7): nothing from the roles or modules is
imported. The role runs through the CLI (`yoroi apply -t mfa`), and the checks are the
controller-side otpauth files, the runner's own events and artifacts, the files on the
host read with `podman exec`, and real SSH logins with codes computed by pyotp.

- A member owns their home directory, so right after enrolment they can swap their new
  ``~/.google_authenticator`` for a symlink to /etc/shadow. A hand-off that reads the file
  back as root then gives them root's shadow line as their "secret". Here a loop running
  as alice makes that swap the moment the file appears.
- A hand-off that fails on the controller (its directory cannot be created) must leave the
  member not enrolled, and the next run must enrol them again with a secret that works.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse

import pyotp
import pytest
from click.testing import CliRunner

from checks import SSHTarget, keyboard_interactive_login
from test_mfa import GROUP, mfa_inventory
from yoroi import lab as yoroi_lab
from yoroi.cli import main
from yoroi.lab.seed import PASSWORDS

pytestmark = pytest.mark.lab

BASE32_SECRET = re.compile(r"^[A-Z2-7]{32}$")
# Runs as alice on the host: the moment her secret file appears, keep it aside and put a
# symlink to /etc/shadow in its place (what a member can do in their own home).
SWAPPER = ("cd ~ && for i in $(seq 1 6000); do "
           "if [ -f .google_authenticator ] && [ ! -L .google_authenticator ]; then "
           "mv .google_authenticator .ga.kept && ln -s /etc/shadow .google_authenticator && exit 0; fi; "
           "sleep 0.05; done")


def host_exec(container, *argv, user=None):
    command = ["podman", "exec"] + (["-u", user] if user else []) + [container, *argv]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def uri_secret(path):
    uri = path.read_text().strip()
    return uri, urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]


def findings(document, control, subject):
    return [f for f in document["findings"] if f["control"] == control and f.get("subject") == subject]


@pytest.fixture
def runner_record(monkeypatch, tmp_path):
    """Keep everything ansible-runner produced (events and artifacts) for a grep."""
    import ansible_runner

    kept = tmp_path / "artifacts"
    real_run = ansible_runner.run

    def run(**kwargs):
        result = real_run(**kwargs)
        shutil.copytree(kwargs["private_data_dir"], kept / str(len(list(kept.glob("*"))) if kept.exists() else "0"))
        return result

    monkeypatch.setattr(ansible_runner, "run", run)
    return kept


def run_cli(inventory, mode="apply", extra_vars=()):
    args = [mode, "-i", str(inventory), "-t", "mfa", "-o", "json", "-q"] + (["--yes"] if mode == "apply" else [])
    for pair in extra_vars:
        args += ["-e", pair]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.output, json.loads(result.stdout)


def everything_recorded(kept, state_dir, outputs):
    events = [p.read_text(errors="replace") for p in kept.rglob("job_events/*.json")]
    assert any('"MFA-002"' in text for text in events), "no runner event with the MFA result: the grep would prove nothing"
    texts = list(outputs)
    texts += [p.read_text(errors="replace") for p in kept.rglob("*") if p.is_file()]
    texts += [p.read_text(errors="replace") for p in (state_dir / "runs").rglob("*") if p.is_file()]
    return "\n".join(texts)


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def enrol_lab(request, unique_lab_name, lab_state_dir, tmp_path_factory):
    name = unique_lab_name()
    try:
        lab = yoroi_lab.up(name, hosts=1, release=request.param)
        path, otp_dir = mfa_inventory(lab, tmp_path_factory, yoroi_mfa_deadline="2099-01-01")
        host_exec(lab.hosts[0].container, "groupadd", "-f", GROUP)
        yield lab, path, otp_dir, lab_state_dir
    finally:
        yoroi_lab.down(name)


def test_a_swapped_secret_file_never_becomes_the_handed_off_secret(enrol_lab, runner_record):
    lab, inventory, otp_dir, state_dir = enrol_lab
    host = lab.hosts[0]
    shadow_root = host_exec(host.container, "grep", "^root:", "/etc/shadow").strip()
    host_exec(host.container, "usermod", "-aG", GROUP, "alice")
    swapper = subprocess.Popen(["podman", "exec", "-u", "alice", host.container, "sh", "-c", SWAPPER])
    try:
        output, document = run_cli(inventory)
        swapper.wait(timeout=60)
    finally:
        if swapper.poll() is None:
            swapper.kill()
    assert swapper.returncode == 0, "the swap never happened: the test proves nothing"
    assert host_exec(host.container, "readlink", "/home/alice/.google_authenticator").strip() == "/etc/shadow"

    uri, secret = uri_secret(otp_dir / host.name / "alice.otpauth")
    assert "root" not in secret and shadow_root not in urllib.parse.unquote(uri), "root's shadow line was handed to alice"
    assert BASE32_SECRET.match(secret), "the handed-off secret is not a TOTP secret"
    # the secret handed off is the one that was created (alice kept it aside)
    assert host_exec(host.container, "head", "-n1", "/home/alice/.ga.kept").strip() == secret

    recorded = everything_recorded(runner_record, state_dir, [output])
    assert secret not in recorded, "the secret reached the runner's events, artifacts or the saved run"
    assert shadow_root not in recorded
    assert [f["status"] for f in findings(document, "MFA-002", "alice")] == ["fixed"]


def test_a_failed_hand_off_is_enrolled_again_and_the_new_secret_works(enrol_lab, runner_record):
    lab, inventory, otp_dir, state_dir = enrol_lab
    host = lab.hosts[0]
    container = host.container
    host_exec(container, "usermod", "-aG", GROUP, "bob")
    host_dir = otp_dir / host.name
    saved = dict((p.name, p.read_text()) for p in host_dir.iterdir()) if host_dir.exists() else {}
    if host_dir.exists():
        shutil.rmtree(host_dir)
    host_dir.write_text("not a directory: the hand-off cannot write here\n")

    first_output, first = run_cli(inventory)
    created = host_exec(container, "head", "-n1", "/home/bob/.google_authenticator").strip()
    assert BASE32_SECRET.match(created)
    assert [f["status"] for f in findings(first, "MFA-002", "bob")] == ["error"], "a lost hand-off was reported as done"

    # an audit counts bob as not enrolled, and changes nothing
    stamp = host_exec(container, "stat", "-c", "%Y %i", "/home/bob/.google_authenticator")
    _out, audit = run_cli(inventory, mode="audit")
    assert [f["status"] for f in findings(audit, "MFA-002", "bob")] == ["fail"]
    assert host_exec(container, "stat", "-c", "%Y %i", "/home/bob/.google_authenticator") == stamp

    host_dir.unlink()
    host_dir.mkdir()
    for name, text in saved.items():
        (host_dir / name).write_text(text)
    output, second = run_cli(inventory)
    assert [f["status"] for f in findings(second, "MFA-002", "bob")] == ["fixed"], "bob was not enrolled again"
    _uri, secret = uri_secret(host_dir / "bob.otpauth")
    assert secret != created, "the secret nobody received was kept"
    assert host_exec(container, "head", "-n1", "/home/bob/.google_authenticator").strip() == secret

    # a third run has nothing to do for bob
    _out, third = run_cli(inventory)
    assert [f["status"] for f in findings(third, "MFA-002", "bob")] == ["pass"]

    ok, prompts = keyboard_interactive_login(SSHTarget("127.0.0.1", host.port), "bob", PASSWORDS["bob"],
                                             pyotp.TOTP(secret).now())
    assert ok and prompts == ["Password:", "Verification code:"], prompts
    recorded = everything_recorded(runner_record, state_dir, [first_output, output])
    assert secret not in recorded and created not in recorded
