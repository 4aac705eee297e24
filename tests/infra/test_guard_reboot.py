"""The lockout guard across a restart of the host, and a restore that fails, on a real
bookworm lab host.

The "reboot" here is a restart of the lab container (``podman restart``): systemd, PID 1
in the container, stops and starts again, and transient units (the guard's timer) are
gone, as after a reboot. It is not a kernel reboot; what it proves is what systemd does
with the guard's units, which is what a reboot changed.

Independent of the role (DESIGN invariant 7): nothing from the roles or modules is
imported. The change is made by the real role (``site.yml -t ssh``) and confirmed or
refused by real SSH logins from this machine; the guard's directory is read with the
host's own tools. Order matters (one lab, torn down at the end): a confirmed change, then
an unconfirmed one interrupted and the host restarted, then a guard whose timer was lost,
then a restore that cannot put its file back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from yoroi import lab as yoroi_lab
from yoroi.cli import main
from yoroi.lab.hosts import parse_port

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
GUARD = "/var/lib/yoroi/guard"
DROPIN = "/etc/ssh/sshd_config.d/00-yoroi.conf"
# Long enough that the guard's own timer can never be what restores the change below.
LONG_TIMEOUT = 900


def sh(container, script, check=True):
    return yoroi_lab.podman("exec", container, "sh", "-c", script, check=check)


def openssh_login(port, key, user):
    argv = ["ssh", "-i", key, "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "%s@127.0.0.1" % user, "id -un"]
    proc = subprocess.run(argv, capture_output=True, check=False, text=True, timeout=60)
    return proc.returncode == 0 and proc.stdout.strip() == user


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(1)


def guards(container):
    """{token: {"state", "restored_by", "failed"}} read from the guard directory."""
    out = sh(container, "for d in %s/*/; do [ -d $d ] || continue; t=$(basename $d); printf '%%s %%s %%s|%%s\\n' $t "
                        "\"$(cat $d/state)\" \"$(cat $d/restored_by 2>/dev/null)\" "
                        "\"$(cat $d/failed 2>/dev/null | tr '\\n' ';')\"; done" % GUARD, check=False).stdout
    found = {}
    for line in out.splitlines():
        head, _sep, failed = line.partition("|")
        token, state, *by = head.split()
        found[token] = {"state": state, "restored_by": by[0] if by else "", "failed": failed}
    return found


def playbook(inventory, extra):
    return [sys.executable, "-m", "ansible.cli.playbook", "-i", str(inventory), str(ROOT / "playbooks" / "site.yml"),
            "-t", "ssh", "-e", json.dumps(extra)]


def change_guard(inventory, args):
    """One change_guard call through ad-hoc Ansible, as a role would make it: its result."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    proc = subprocess.run([sys.executable, "-m", "ansible.cli.adhoc", "-i", str(inventory), "lab",
                           "-m", "yoroi.baseline.change_guard", "-a", json.dumps(args)],
                          capture_output=True, check=False, text=True, timeout=300, env=env)
    document = json.loads(proc.stdout)
    (result,) = [task["hosts"] for play in document["plays"] for task in play["tasks"]]
    result = list(result.values())[0]
    assert not result.get("failed") and not result.get("unreachable"), "change_guard %r: %s" % (args, result)
    return result


def audit(inventory):
    """`yoroi audit -t ssh`: (exit code, GRD-002 findings)."""
    result = CliRunner().invoke(main, ["audit", "-i", str(inventory), "-t", "ssh", "-o", "json", "-q"])
    stdout = getattr(result, "stdout", result.output)
    document = json.loads(stdout)
    findings = [f for f in document["findings"] if f["control"] == "GRD-002"]
    assert findings, "no GRD-002 finding in the audit (exit %d): %s" % (result.exit_code, stdout[-3000:])
    return result.exit_code, findings


@pytest.fixture(scope="module")
def site(unique_lab_name, lab_state_dir, tmp_path_factory):
    name = "grd" + unique_lab_name()
    try:
        lab = yoroi_lab.up(name, hosts=1, release="bookworm")
        host = lab.hosts[0]
        inventory = yaml.safe_load(Path(lab.inventory_path).read_text())
        inventory["all"]["children"]["lab"]["vars"].update({"yoroi_ssh_allow_group_members": ["alice"]})
        path = tmp_path_factory.mktemp("guard-inventory") / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory))
        yield {"lab": lab, "host": host, "container": host.container, "inventory": path}
    finally:
        yoroi_lab.down(name)


def login(site):
    return openssh_login(site["host"].port, site["host"].key, site["host"].user)


def test_a_change_nobody_confirmed_is_restored_when_the_host_restarts(site):
    container, inventory = site["container"], site["inventory"]
    # 1. a change confirmed by a fresh login: it must survive the restart
    proc = subprocess.run(playbook(inventory, {}), capture_output=True, check=False, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (confirmed,) = list(guards(container))
    assert guards(container)[confirmed]["state"] == "confirmed"
    hardened = sh(container, "cat %s" % DROPIN).stdout
    # 2. a change that passes the pre-check (skipped) but fails the fresh login; the run
    #    is interrupted once the change is live, before anything could confirm or restore it
    run = subprocess.Popen(playbook(inventory, {"yoroi_ssh_extra_settings": {"AllowUsers": "nobody"},
                                                "yoroi_ssh_unsafe_skip_lockout_check": True,
                                                "yoroi_ssh_guard_timeout": LONG_TIMEOUT}),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: "AllowUsers nobody" in sh(container, "cat %s" % DROPIN).stdout, 600, "the change was never made")
        wait_for(lambda: not login(site), 60, "the automation account still logs in: the change did not lock it out")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    (unconfirmed,) = set(guards(container)) - {confirmed}
    assert guards(container)[unconfirmed]["state"] == "armed"
    # 3. the reboot: systemd restarts, the transient timer is gone
    yoroi_lab.podman("restart", container, timeout=300)
    port = parse_port(yoroi_lab.podman("port", container, "22/tcp").stdout)
    assert port == site["host"].port, "podman published sshd on another port after the restart"
    wait_for(lambda: sh(container, "systemctl is-system-running --wait", check=False).stdout.strip()
             in ("running", "degraded"), 180, "systemd did not come up after the restart")
    wait_for(lambda: login(site), 60,
             "after the restart the automation account is still locked out: the change was not restored")
    assert "AllowUsers" not in sh(container, "cat %s" % DROPIN).stdout
    assert sh(container, "cat %s" % DROPIN).stdout == hardened, "the confirmed change was undone at boot"
    states = guards(container)
    assert states[unconfirmed] == {"state": "rolled_back", "restored_by": "boot", "failed": ""}, states
    assert states[confirmed]["state"] == "confirmed"
    assert "yoroi-guard-" not in sh(container, "systemctl list-timers --all --no-pager").stdout
    # nothing is left for a later run to report
    code, findings = audit(inventory)
    assert [(f["status"], f["actual"]) for f in findings] == [("pass", "no lockout guard left unresolved")]


def test_a_guard_left_armed_past_its_deadline_fails_the_next_run(site):
    container, inventory = site["container"], site["inventory"]
    sh(container, "echo old > /etc/yoroi-guard-probe.conf")
    armed = change_guard(inventory, {"state": "armed", "paths": ["/etc/yoroi-guard-probe.conf"], "timeout": LONG_TIMEOUT})
    token = armed["token"]
    # its timer lost (as a reboot did before the boot unit existed) and its deadline long past
    sh(container, "systemctl stop yoroi-guard-%s.timer && sed -i 's/\"created\": \"[^\"]*\"/\"created\": "
                  "\"2026-01-01T00:00:00Z\"/' %s/%s/manifest.json" % (token, GUARD, token))
    code, findings = audit(inventory)
    assert code == 2, findings
    (item,) = findings
    assert (item["status"], item["subject"]) == ("fail", token)
    assert "past its deadline" in item["actual"] and "/etc/yoroi-guard-probe.conf" in item["actual"]
    # the audit changed nothing; resolving the guard clears the finding
    assert guards(container)[token]["state"] == "armed"
    result = change_guard(inventory, {"state": "rolled_back", "token": token})
    assert result["state"] == "rolled_back"
    assert [f["status"] for f in audit(inventory)[1]] == ["pass"]


def test_a_restore_that_cannot_put_a_file_back_is_restore_failed(site):
    container, inventory = site["container"], site["inventory"]
    sh(container, "echo old > /etc/yoroi-guard-probe2.conf")
    armed = change_guard(inventory, {"state": "armed", "paths": ["/etc/yoroi-guard-probe2.conf"], "timeout": 10})
    token = armed["token"]
    # the change: a directory where the file was (chattr +i needs a capability the lab lacks)
    sh(container, "rm /etc/yoroi-guard-probe2.conf && mkdir /etc/yoroi-guard-probe2.conf && "
                  "touch /etc/yoroi-guard-probe2.conf/x")
    wait_for(lambda: guards(container)[token]["state"] != "armed", 120, "the guard timer never fired")
    state = guards(container)[token]
    assert state["state"] == "restore_failed", state
    assert state["failed"] == "file /etc/yoroi-guard-probe2.conf;", state
    assert sh(container, "test -e %s/%s/rolled_back_at" % (GUARD, token), check=False).returncode != 0
    code, findings = audit(inventory)
    assert code == 1, findings
    (item,) = findings
    assert (item["status"], item["subject"]) == ("error", token)
    assert item["actual"] == "restore failed: could not put back or reload file /etc/yoroi-guard-probe2.conf"
    # fixed by hand, the restore is tried again and the finding clears
    sh(container, "rm -r /etc/yoroi-guard-probe2.conf")
    result = change_guard(inventory, {"state": "rolled_back", "token": token})
    assert (result["state"], result["previous"]) == ("rolled_back", "restore_failed")
    assert sh(container, "cat /etc/yoroi-guard-probe2.conf").stdout == "old\n"
    assert [f["status"] for f in audit(inventory)[1]] == ["pass"]


def test_a_fresh_login_over_podman_does_not_prove_the_change(site, tmp_path):
    """The same host reached with the podman connection: the 'fresh login' is a podman
    exec, which goes through neither sshd nor PAM. The change is kept and its timer
    stopped, but GRD-001 is skipped ("not proven"), not pass, and Ansible warns."""
    container = site["container"]
    inventory = yaml.safe_load(Path(site["inventory"]).read_text())
    (host_vars,) = inventory["all"]["children"]["lab"]["hosts"].values()
    host_vars.update({"ansible_connection": "containers.podman.podman", "ansible_host": container})
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    before = set(guards(container))
    result = CliRunner().invoke(main, ["apply", "-i", str(path), "--yes", "-t", "ssh", "-o", "json", "-q",
                                       "-e", json.dumps({"yoroi_ssh_max_auth_tries": 2})])
    stdout = getattr(result, "stdout", result.output)
    document = json.loads(stdout)
    assert result.exit_code == 0, stdout[-3000:]
    grd = [f for f in document["findings"] if f["control"] == "GRD-001"]
    assert [(f["status"], f["actual"]) for f in grd] == [
        ("skipped", "not proven: connection containers.podman.podman does not go through sshd and PAM")], grd
    (host,) = document["hosts"].values()
    assert any("not proven" in w for w in host["warnings"]), host["warnings"]
    (token,) = set(guards(container)) - before
    assert guards(container)[token]["state"] == "confirmed"  # kept, not left to roll back
    assert "yoroi-guard-" not in sh(container, "systemctl list-timers --all --no-pager").stdout
    assert "MaxAuthTries 2" in sh(container, "cat %s" % DROPIN).stdout
