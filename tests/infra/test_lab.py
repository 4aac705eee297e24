"""The lab's hosts are real, reachable and really neglected.

Everything here runs for real: podman containers with systemd as PID 1, SSH
logins from this machine over 127.0.0.1, and the release's own tools
(lastlog, last, lastlog2, wtmpdb) reading the seeded login records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from yoroi import lab as yoroi_lab
from yoroi.lab import seed

pytestmark = pytest.mark.lab

DAY = 86400


def sh(container: str, command: str, check: bool = True) -> str:
    res = yoroi_lab.podman("exec", container, "sh", "-c", command, check=check)
    return res.stdout


def ssh(lab, host, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(lab.ssh_argv(host, *command), capture_output=True, text=True, timeout=60, check=False)


def password_login(host, user: str, password: str) -> subprocess.CompletedProcess:
    assert shutil.which("sshpass"), "sshpass is needed for the password-login test"
    return subprocess.run(
        ["sshpass", "-e", "ssh", "-p", str(host.port),
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
         "-o", "LogLevel=ERROR", f"{user}@127.0.0.1", "id -un"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "SSHPASS": password}, check=False,
    )


def iso_minute(t: int) -> str:
    # container clock is UTC; `--time-format iso` prints e.g. 2025-10-23T08:53:00+00:00
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(t))


def ctime_style(t: int) -> str:
    # lastlog / lastlog2: "Thu Oct 23 08:53:00 +0000 2025"
    return time.strftime("%a %b %e %H:%M:%S +0000 %Y", time.gmtime(t))


def seeded(lab, host) -> dict:
    return lab.seed[host.container]


# --- reachability ------------------------------------------------------------


def test_key_login_as_yoroi_and_passwordless_sudo(lab_bookworm):
    h = lab_bookworm.hosts[0]
    res = ssh(lab_bookworm, h, "id -un; sudo -n id -u")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["yoroi", "0"]
    uid = int(sh(h.container, "id -u yoroi"))
    assert uid >= 1000
    assert sh(h.container, "stat -c %a /etc/sudoers.d/yoroi").strip() == "440"
    assert sh(h.container, "stat -c %a /home/yoroi/.ssh/authorized_keys").strip() == "600"
    assert oct(os.stat(h.key).st_mode & 0o777) == "0o600"


def test_systemd_is_pid1_and_running(lab_bookworm):
    h = lab_bookworm.hosts[0]
    state = sh(h.container, "systemctl is-system-running", check=False).strip()
    assert state in ("running", "degraded")
    assert sh(h.container, "ps -o comm= -p 1").strip() == "systemd"
    assert sh(h.container, "systemctl is-active ssh cron rsyslog").split() == ["active"] * 3


def test_inventory_works_with_ansible(lab_bookworm, tmp_path):
    ansible = shutil.which("ansible")
    assert ansible, "ansible (ansible-core) is needed"
    res = subprocess.run(
        [ansible, "-i", str(lab_bookworm.inventory_path), "lab", "-m", "command", "-a", "id -u"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1"},
        cwd=tmp_path, check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{lab_bookworm.hosts[0].name} | CHANGED | rc=0 >>\n0" in res.stdout


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_password_login_over_ssh_works_on_unhardened_host(lab_bookworm, user):
    h = lab_bookworm.hosts[0]
    res = password_login(h, user, seed.PASSWORDS[user])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == user


def test_apt_uses_the_configured_mirror(lab_bookworm):
    h = lab_bookworm.hosts[0]
    out = sh(h.container, "apt-get update -q >/dev/null && apt-get install -y -q tree >/dev/null "
                          "&& dpkg-query -W -f='${Status}' tree")
    assert out == "install ok installed"


# --- the host is neglected ---------------------------------------------------


def test_accounts_are_neglected(lab_bookworm):
    c = lab_bookworm.hosts[0].container
    shadow = {l.split(":")[0]: l.split(":") for l in sh(c, "getent shadow").splitlines()}
    passwd = {l.split(":")[0]: l.split(":") for l in sh(c, "getent passwd").splitlines()}
    assert shadow["dave"][1] == ""  # empty password field
    assert passwd["toor"][2] == "0" and shadow["toor"][1].startswith("$")
    assert int(passwd["backupsvc"][2]) < 1000 and passwd["backupsvc"][6] == "/bin/bash"
    for human in ("breakglass", "alice", "bob", "carol", "dave"):
        assert int(passwd[human][2]) >= 1000
    assert "breakglass" in sh(c, "getent group sudo")
    assert shadow["carol"][2] == str(17956)  # 2019-03-01 in days since the epoch
    assert "Mar 01, 2019" in sh(c, "chage -l carol")
    assert "/home/bob/bin/sync.sh" in sh(c, "crontab -u bob -l")
    assert sh(c, "cat /home/bob/notes.txt")
    # Debian defaults: no pwquality, login.defs as shipped
    assert yoroi_lab.podman("exec", c, "dpkg-query", "-W", "libpam-pwquality",
                            check=False).returncode != 0
    assert "pam_pwquality" not in sh(c, "cat /etc/pam.d/common-password")
    assert sh(c, "dpkg --verify login.defs login || true").strip() == ""


def test_bookworm_login_records_read_by_real_tools(lab_bookworm):
    h = lab_bookworm.hosts[0]
    c = h.container
    last_login = seeded(lab_bookworm, h)["last_login"]
    now = seeded(lab_bookworm, h)["now"]
    assert seeded(lab_bookworm, h)["style"] == "legacy"
    assert now - last_login["alice"] >= 2 * DAY and now - last_login["alice"] < 2 * DAY + 60
    assert now - last_login["bob"] >= 400 * DAY and now - last_login["bob"] < 400 * DAY + 60

    alice = sh(c, "lastlog -u alice")
    bob = sh(c, "lastlog -u bob")
    assert ctime_style(last_login["alice"]) in alice and "198.51.100.42" in alice
    assert ctime_style(last_login["bob"]) in bob
    assert "**Never logged in**" in sh(c, "lastlog -u carol")
    # lastlog's own day filters agree: bob is older than 399 days, alice newer than 3
    assert "bob" in sh(c, "lastlog -b 399") and "alice" not in sh(c, "lastlog -b 399")
    assert "alice" in sh(c, "lastlog -t 3") and "bob" not in sh(c, "lastlog -t 3")

    wtmp = sh(c, "last -f /var/log/wtmp --time-format iso")
    assert f"{iso_minute(last_login['bob'])}" in wtmp
    assert f"{iso_minute(last_login['alice'])}" in wtmp
    assert "carol" not in wtmp
    assert sh(c, "stat -c %s /var/log/wtmp").strip() != "0"
    assert int(sh(c, "stat -c %s /var/log/wtmp")) % 384 == 0


def test_trixie_login_records_read_by_real_tools(lab_trixie):
    h = lab_trixie.hosts[0]
    c = h.container
    info = seeded(lab_trixie, h)
    assert info["style"] == "sqlite"
    last_login = info["last_login"]

    ll2 = sh(c, "lastlog2")
    assert ctime_style(last_login["alice"]) in sh(c, "lastlog2 -u alice")
    assert ctime_style(last_login["bob"]) in sh(c, "lastlog2 -u bob")
    assert "carol" not in ll2 or "Never logged in" in sh(c, "lastlog2 -u carol")
    assert "bob" in sh(c, "lastlog2 -b 399") and "alice" not in sh(c, "lastlog2 -b 399")

    wt = sh(c, "wtmpdb last --time-format iso")
    assert iso_minute(last_login["bob"]) in wt and iso_minute(last_login["alice"]) in wt
    assert "carol" not in wt
    assert iso_minute(last_login["bob"]) in sh(c, "last --time-format iso bob")
    assert sh(c, "readlink /var/lib/wtmpdb/wtmp.db").strip() == "../../log/wtmp.db"

    # key login, sudo and password login work on trixie too
    res = ssh(lab_trixie, h, "sudo -n id -u")
    assert res.returncode == 0 and res.stdout.strip() == "0", res.stderr
    assert password_login(h, "alice", seed.PASSWORDS["alice"]).stdout.strip() == "alice"
    assert sh(c, "getent shadow dave").split(":")[1] == ""


# --- down ----------------------------------------------------------------------


def _podman_names(*args: str) -> set[str]:
    return set(yoroi_lab.podman(*args).stdout.split())


def test_down_removes_exactly_what_up_created(lab_state_dir, unique_lab_name):
    name = unique_lab_name()
    lab = yoroi_lab.up(name, hosts=2)
    try:
        recorded = json.loads(lab.lab_json.read_text())
        assert recorded["containers"] == [f"yoroi-lab-{name}-1", f"yoroi-lab-{name}-2"]
        assert recorded["network"] == f"yoroi-lab-{name}"
        assert set(recorded["containers"]) <= _podman_names("ps", "-a", "--format", "{{.Names}}")
        assert recorded["network"] in _podman_names("network", "ls", "--format", "{{.Name}}")
        # the two hosts reach each other by inventory name on their own network
        assert f"lab-{name}-2" in sh(lab.hosts[0].container, f"getent hosts lab-{name}-2")
        status = yoroi_lab.status(name)
        assert set(status["container_states"].values()) == {"running"}
    finally:
        assert yoroi_lab.down(name) is True
    containers = _podman_names("ps", "-a", "--format", "{{.Names}}")
    assert not any(c.startswith(f"yoroi-lab-{name}-") for c in containers)
    assert f"yoroi-lab-{name}" not in _podman_names("network", "ls", "--format", "{{.Name}}")
    assert not lab.state_dir.exists()
    assert yoroi_lab.down(name) is False  # idempotent
    assert yoroi_lab.status(name) is None


def test_a_host_whose_port_was_taken_comes_up_on_another(lab_state_dir, unique_lab_name, monkeypatch):
    """The port chosen for a host is taken before podman binds it (another program got
    there first): real podman fails with 'address already in use', and the host is
    started again on another port instead of the lab being torn down."""
    import socket

    from yoroi.lab import hosts

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    held = squatter.getsockname()[1]
    choices = []
    real_free_port = hosts.free_port

    def first_the_held_port(taken, address="127.0.0.1"):
        port = held if not choices else real_free_port(taken, address)
        choices.append(port)
        return port

    monkeypatch.setattr(hosts, "free_port", first_the_held_port)
    name = unique_lab_name()
    try:
        lab = yoroi_lab.up(name, hosts=1)
        host = lab.hosts[0]
        assert choices[0] == held and host.port == choices[-1] != held
        assert ssh(lab, host, "true").returncode == 0
    finally:
        squatter.close()
        yoroi_lab.down(name)
