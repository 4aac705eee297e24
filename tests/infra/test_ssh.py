"""sshd hardening on real lab hosts (bookworm and trixie), checked by real SSH logins.

Independent of the role (DESIGN invariant 7): nothing from the roles or modules is
imported. Logins are made from this machine to the host's sshd published on 127.0.0.1,
with paramiko (passwords, the banner) and the OpenSSH client (``-c``/``-m`` to offer one
weak algorithm). The host is first made to look neglected - PermitRootLogin yes and a
CBC cipher set in sshd_config BEFORE its Include line - and every check is shown to fail
there before the role runs.

Order matters (one lab per release, torn down at the end): unhardened checks, a refused
bad configuration, check mode, apply, second apply, then a change that locks the
automation out and must be rolled back by the host's own guard timer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
import yaml
from click.testing import CliRunner

from checks import SSHTarget, login_banner
from yoroi import lab as yoroi_lab
from yoroi.cli import main
from yoroi.lab.seed import PASSWORDS

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
ROOT_PASSWORD = "Root-Lab-2026!"
CONTACT = "soc@lab.example, +81 3 0000 0000"
GUARD_TIMEOUT = 20
NEGLECTED = "# a neglected host: set before the Include, so it wins\nPermitRootLogin yes\n" \
            "Ciphers aes128-cbc,aes256-ctr,chacha20-poly1305@openssh.com\n"
WATCHED = "/etc/ssh /etc/issue.net /etc/group"


# --- means of checking, independent of the role ---------------------------------------------


def podman_exec(container, *argv, check=True):
    return yoroi_lab.podman("exec", container, *argv, check=check)


def password_login(port, user, password):
    """A real password login: True when authenticated; raises when sshd does not answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=15)
        try:
            transport.auth_password(user, password)
        except (paramiko.AuthenticationException, paramiko.BadAuthenticationType):
            return False
        return transport.is_authenticated()
    finally:
        transport.close()


def banner(port):
    """The pre-login banner sshd sends ('' when there is none)."""
    return login_banner(SSHTarget("127.0.0.1", port))


def openssh_login(host, *options):
    """The OpenSSH client as the automation account with its key: (ok, stderr)."""
    argv = ["ssh", "-i", host.key, "-p", str(host.port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            *options, "%s@127.0.0.1" % host.user, "id -un"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == host.user, proc.stderr


def wait_for_sshd(host, timeout=30):
    """sshd re-executes on reload: wait until it accepts the key login again."""
    deadline = time.monotonic() + timeout
    while not openssh_login(host)[0]:
        assert time.monotonic() < deadline, "sshd did not come back after the reload"
        time.sleep(0.5)


def snapshot(container):
    """Content checksum, mtime and mode of every watched file."""
    script = "find %s -type f -print0 | sort -z | xargs -0 stat -c '%%n %%Y %%a' ; " \
             "find %s -type f -print0 | sort -z | xargs -0 sha256sum" % (WATCHED, WATCHED)
    return podman_exec(container, "sh", "-c", script).stdout


def guard_timers(container):
    out = podman_exec(container, "systemctl", "list-timers", "--all", "--no-pager").stdout
    return [line for line in out.splitlines() if "yoroi-guard-" in line]


def guard_states(container):
    out = podman_exec(container, "sh", "-c", "for d in /var/lib/yoroi/guard/*/; do cat $d/state; done", check=False).stdout
    return out.split()


def cli(*argv):
    result = CliRunner().invoke(main, list(argv))
    stdout = getattr(result, "stdout", result.output)
    return result.exit_code, stdout, result.output


def playbook(inventory, extra, check=False):
    argv = [sys.executable, "-m", "ansible.cli.playbook", "-i", str(inventory), str(ROOT / "playbooks" / "site.yml"),
            "-t", "ssh", "-e", json.dumps(extra)]
    if check:
        argv.append("--check")
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)


# --- the lab ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def site(request, unique_lab_name, lab_state_dir, tmp_path_factory):
    """A neglected lab host and an inventory with the test's site variables."""
    name = "ssh" + unique_lab_name()
    try:
        lab = yoroi_lab.up(name, hosts=1, release=request.param)
        host = lab.hosts[0]
        container = host.container
        podman_exec(container, "sh", "-c", "echo 'root:%s' | chpasswd" % ROOT_PASSWORD)
        podman_exec(container, "sh", "-c", "printf '%s' | cat - /etc/ssh/sshd_config > /tmp/c && "
                    "cat /tmp/c > /etc/ssh/sshd_config && systemctl reload ssh" % NEGLECTED.replace("\n", "\\n"))
        wait_for_sshd(host)
        inventory = yaml.safe_load(Path(lab.inventory_path).read_text())
        inventory["all"]["children"]["lab"]["vars"].update({
            "yoroi_site_contact": CONTACT,
            "yoroi_ssh_allow_group_members": ["alice"],
            "yoroi_ssh_guard_timeout": GUARD_TIMEOUT,
        })
        path = tmp_path_factory.mktemp("ssh-inventory") / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory))
        yield {"lab": lab, "host": host, "container": container, "inventory": path, "release": request.param}
    finally:
        yoroi_lab.down(name)


# --- the tests, in order -------------------------------------------------------------------------


def test_every_check_fails_on_the_neglected_host(site):
    host = site["host"]
    assert password_login(host.port, "root", ROOT_PASSWORD), "root cannot log in before: the check could not fail"
    assert password_login(host.port, "bob", PASSWORDS["bob"]), "bob (in no allowed group) cannot log in before"
    assert openssh_login(host, "-c", "aes128-cbc")[0], "the server refused aes128-cbc before hardening"
    assert openssh_login(host, "-c", "aes256-ctr", "-m", "hmac-sha1")[0], "the server refused hmac-sha1 before hardening"
    assert CONTACT not in (banner(host.port) or "")  # (an AEAD cipher would skip the MAC: -c aes256-ctr)
    assert password_login(host.port, "alice", PASSWORDS["alice"])
    assert openssh_login(host)[0]


def test_a_configuration_that_locks_out_the_automation_is_refused_before_any_change(site):
    before = snapshot(site["container"])
    proc = playbook(site["inventory"], {"yoroi_ssh_allow_groups": ["nobody-group"],
                                        "yoroi_ssh_add_protected_to_allow_group": False})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "refused: the new sshd configuration would lock out automation account yoroi" in out, out[-3000:]
    assert "AllowGroups nobody-group" in out
    assert snapshot(site["container"]) == before
    assert "nobody-group" not in podman_exec(site["container"], "getent", "group").stdout


def test_check_mode_reports_drift_and_changes_nothing(site):
    before = snapshot(site["container"])
    code, stdout, output = cli("audit", "-i", str(site["inventory"]), "-t", "ssh", "-o", "json", "-q")
    assert code == 2, output[-3000:]
    findings = {f["control"]: f for f in json.loads(stdout)["findings"] if f["control"].startswith("SSH-")}
    assert findings["SSH-001"]["status"] == "fail" and findings["SSH-001"]["actual"] == "PermitRootLogin yes"
    assert findings["SSH-006"]["status"] == "fail" and "aes128-cbc" in findings["SSH-006"]["actual"]
    assert "moved to the top" in findings["SSH-001"]["evidence"]
    # AllowGroups would cut bob off (he logs in with a password today); audit names him,
    # and not the accounts the group keeps (alice as a member, the protected ones)
    losing = {f["subject"]: f for f in json.loads(stdout)["findings"] if f["control"] == "SSH-009" and f.get("subject")}
    assert "bob" in losing and "would lose SSH access" in losing["bob"]["evidence"], sorted(losing)
    assert not {"alice", "yoroi", "breakglass"} & set(losing), sorted(losing)
    assert snapshot(site["container"]) == before
    assert guard_timers(site["container"]) == []


def test_apply_hardens_and_nobody_needed_is_locked_out(site):
    host, container = site["host"], site["container"]
    code, stdout, output = cli("apply", "-i", str(site["inventory"]), "--yes", "-t", "ssh", "-o", "json", "-q")
    assert code == 0, output[-3000:]
    document = json.loads(stdout)
    statuses = {f["control"]: f["status"] for f in document["findings"]}
    assert statuses["GRD-001"] == "pass"
    assert statuses["SSH-001"] == "fixed" and statuses["SSH-002"] == "pass"
    assert all(statuses["SSH-%03d" % i] in ("pass", "fixed") for i in range(1, 13)), statuses
    # the fresh login confirmed the change: the timer is gone, the backups are kept
    assert guard_timers(container) == []
    assert guard_states(container) == ["confirmed"]
    # root cannot log in with its (right) password any more; the others needed still can
    assert not password_login(host.port, "root", ROOT_PASSWORD)
    assert not password_login(host.port, "bob", PASSWORDS["bob"]), "bob is in no allowed group but got in"
    assert password_login(host.port, "alice", PASSWORDS["alice"]), "alice was added to the allowed group"
    assert password_login(host.port, "breakglass", PASSWORDS["breakglass"]), "break-glass account locked out"
    assert openssh_login(host)[0], "the automation account lost its key login"
    ok, err = openssh_login(host, "-c", "aes128-cbc")
    assert not ok and "no matching cipher" in err, err
    ok, err = openssh_login(host, "-c", "aes256-ctr", "-m", "hmac-sha1")
    assert not ok and "no matching MAC" in err, err
    assert CONTACT in (banner(host.port) or "")
    main_config = podman_exec(container, "cat", "/etc/ssh/sshd_config").stdout
    assert [l for l in main_config.splitlines() if l and not l.startswith("#")][0] == "Include /etc/ssh/sshd_config.d/*.conf"
    kex = podman_exec(container, "sshd", "-T").stdout
    first_kex = [l for l in kex.splitlines() if l.startswith("kexalgorithms ")][0].split()[1].split(",")[0]
    assert first_kex == ("mlkem768x25519-sha256" if site["release"] == "trixie" else "sntrup761x25519-sha512")


def test_second_apply_changes_nothing(site):
    before = snapshot(site["container"])
    code, stdout, output = cli("apply", "-i", str(site["inventory"]), "--yes", "-t", "ssh", "-o", "json", "-q")
    assert code == 0, output[-3000:]
    document = json.loads(stdout)
    assert [h["changed"] for h in document["hosts"].values()] == [0]
    assert snapshot(site["container"]) == before
    assert guard_states(site["container"]) == ["confirmed"]  # no new guard was armed


def test_a_change_that_fails_the_fresh_login_is_rolled_back_by_the_host(site):
    host, container = site["host"], site["container"]
    before = snapshot(container)
    started = time.monotonic()
    proc = playbook(site["inventory"], {"yoroi_ssh_extra_settings": {"AllowUsers": "nobody"},
                                        "yoroi_ssh_unsafe_skip_lockout_check": True})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "change rolled back: the automation account yoroi could not log in afresh" in out, out[-3000:]
    assert time.monotonic() - started >= GUARD_TIMEOUT
    # reachable again, with the files as they were and the guard's timer gone
    assert openssh_login(host)[0]
    assert password_login(host.port, "alice", PASSWORDS["alice"])
    after = snapshot(container)

    # every file is as it was; the one new file is write_file's backup of the bad drop-in
    def checksums(text):
        return [l for l in text.splitlines() if len(l.split()[0]) == 64 and not l.endswith("~")]
    assert checksums(after) == checksums(before)
    assert "AllowUsers" not in podman_exec(container, "cat", "/etc/ssh/sshd_config.d/00-yoroi.conf").stdout
    assert guard_timers(container) == []
    assert sorted(guard_states(container)) == ["confirmed", "rolled_back"]
