"""Backups with restic (BAK-001..BAK-004) and restore drills (DRL-001..DRL-003) on two
bookworm lab hosts: a client and a backup host reached over SFTP on the lab network.

Checked by independent means, nothing imported from the role or the modules:

* unhardened client: `yoroi audit -t backup` fails BAK-001, BAK-003 and BAK-004, and the
  host agrees (`systemctl is-enabled yoroi-backup.timer` fails, no password file);
* after `yoroi apply -t backup` (the password in the inventory's host_vars, as a vault
  would hold it; the backup host's key pinned from `ssh-keyscan` run here): the timer is
  enabled and active, the password file is root's 0600, and `restic snapshots --json`,
  run by this test with the password and its own known_hosts, lists a snapshot holding
  every protected path; the audit passes; a second apply changes nothing;
* one protected file deleted and another corrupted on the client, `restic restore` run by
  this test puts every file back byte for byte (SHA-256 recorded before);
* `yoroi drill` on the intact repository passes and prints how long it took on the
  host; a file of a user's directory swapped for a symbolic link to /etc/shadow is
  reported as changed since the snapshot, never followed; no scratch directory is left;
* 8 bytes of a data pack flipped on the backup host: the drill fails (exit 2, DRL-002);
* the password appears nowhere in what the runs printed, the saved runs and reports, or
  the artifacts of an ansible-runner run of the same playbook kept by this test.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time

import pytest

pytestmark = pytest.mark.lab

DATA = "/srv/data"
PATHS = [DATA, "/etc/hostname"]
SFTP_USER = "restic"
REPO_DIR = "/srv/restic/repo"
# files the test plants: name -> shell that makes it (under DATA)
NEWLINE_NAME = DATA + "/new\nline.txt"
HASH_TREE = r"""
import hashlib, json, os, stat, sys
out = {}
for root, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            out[path] = digest.hexdigest()
print(json.dumps(out))
"""


def sh(host, command, *args):
    out = host.run(command, *args)
    assert out.rc == 0, "%s: %s %s" % (command, out.stdout[-1000:], out.stderr[-1000:])
    return out.stdout


def tree_hashes(host):
    return json.loads(host.check_output("python3 -c %s %s", HASH_TREE, DATA))


def restic(node, password_file, known_hosts, *args):
    """restic on the client with this test's own password file and known_hosts."""
    ssh = ("ssh -i /root/.ssh/yoroi_backup -o BatchMode=yes -o StrictHostKeyChecking=yes "
           "-o UserKnownHostsFile=%s %s@%s -s sftp" % (known_hosts, SFTP_USER, BACKUP_HOST[0]))
    return node.host.run("RESTIC_PASSWORD_FILE=%s restic -r %s -o %s " + " ".join(["%s"] * len(args)),
                         password_file, "sftp:%s@%s:%s" % (SFTP_USER, BACKUP_HOST[0], REPO_DIR),
                         "sftp.command=" + ssh, *args)


BACKUP_HOST = [""]  # the backup host's name, set by the fixture


def bak(document, prefix="BAK-"):
    return [f for f in document["findings"] if f["control"].startswith(prefix)]


def failing(document, prefix="BAK-"):
    return sorted(set(f["control"] for f in bak(document, prefix) if f["status"] not in ("pass", "fixed", "skipped")))


@pytest.fixture(scope="module")
def backup_lab(module_lab, tmp_path_factory, yoroi_cli):
    lab, nodes = module_lab(hosts=2)
    client, server = nodes
    BACKUP_HOST[0] = server.name
    password = "yoroi-lab-" + secrets.token_hex(12)
    sh(server.host, "useradd -m -d /srv/restic -s /bin/sh %s", SFTP_USER)
    # the protected tree: a small file, a random one, a name with a newline, a sparse file,
    # and a user's own directory
    sh(client.host, "mkdir -p %s/sub %s/alice && printf 'hello\\n' > %s/a.txt && "
       "head -c 300000 /dev/urandom > %s/sub/b.bin && truncate -s 64M %s/sparse.img && "
       "printf 'notes\\n' > %s/alice/notes && chown -R alice %s/alice", *([DATA] * 7))
    sh(client.host, "printf x > %s", NEWLINE_NAME)
    host_key = sh(client.host, "ssh-keyscan -t ed25519 %s 2>/dev/null", server.name).strip()
    assert host_key.startswith(server.name + " ssh-ed25519 "), host_key

    # an inventory directory: the lab's hosts, and the backup settings in host_vars (where a
    # vault-encrypted password lives in production)
    inventory = tmp_path_factory.mktemp("backup-inventory")
    shutil.copy(lab.inventory_path, inventory / "hosts.yml")
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / ("%s.yml" % client.name)).write_text(json.dumps({
        "yoroi_backup_repository": "sftp:%s@%s:%s" % (SFTP_USER, server.name, REPO_DIR),
        "yoroi_backup_password": password,
        "yoroi_backup_paths": PATHS,
        "yoroi_backup_host_keys": [host_key],
        "yoroi_backup_authorize_on": server.name,
        "yoroi_backup_enabled": True,  # the lab's inventory turns backups off for its hosts
    }))
    state = tmp_path_factory.mktemp("backup-state")
    reports = tmp_path_factory.mktemp("backup-reports")
    runs = {}

    def run(name, command, *extra):
        argv = [command, "-i", str(inventory), "--limit", client.name, "-o", "json", *extra]
        if command == "apply":
            argv[1:1] = ["--yes"]
        if command in ("apply", "audit"):
            argv += ["--tags", "backup"]
        argv += ["--report", str(reports / ("%s.html" % name))]
        started = time.monotonic()
        res = yoroi_cli.run(*argv, state_dir=state)
        runs[name] = (res, yoroi_cli.json(res), time.monotonic() - started)
        return runs[name]

    def independent():
        return {
            "timer_enabled": client.host.run("systemctl is-enabled yoroi-backup.timer").stdout.strip(),
            "timer_active": client.host.run("systemctl is-active yoroi-backup.timer").stdout.strip(),
            "password_file": client.host.file("/etc/yoroi/backup/password"),
        }

    before = independent()
    before = dict(before, exists=before["password_file"].exists)
    run("audit-before", "audit")
    run("apply", "apply")
    run("second", "apply")
    run("audit", "audit")
    after = independent()

    # this test's own way into the repository: the password in its own 0600 file, the
    # backup host's key in its own known_hosts
    client.host.run("install -m 0600 /dev/null /root/test-password && install -m 0600 /dev/null /root/test-known-hosts")
    sh(client.host, "printf '%%s' %s > /root/test-password", password)
    sh(client.host, "printf '%%s\\n' %s > /root/test-known-hosts", host_key)
    snapshots = restic(client, "/root/test-password", "/root/test-known-hosts", "snapshots", "--json")

    return {"lab": lab, "client": client, "server": server, "password": password, "runs": runs, "run": run,
            "before": before, "after": after, "snapshots": snapshots, "state": state, "reports": reports,
            "inventory": inventory}


def test_unhardened_client_fails_and_the_host_agrees(backup_lab):
    res, doc, _seconds = backup_lab["runs"]["audit-before"]
    assert res.returncode == 2, res.stderr[-2000:]
    assert {"BAK-001", "BAK-003", "BAK-004"} <= set(failing(doc)), bak(doc)
    before = backup_lab["before"]
    assert before["timer_enabled"] != "enabled" and before["timer_active"] != "active", before
    assert not before["exists"]


def test_no_repository_configured_fails_every_control_and_changes_nothing(backup_lab, yoroi_cli, tmp_path_factory):
    lab, server = backup_lab["lab"], backup_lab["server"]
    res = yoroi_cli.run("apply", "--yes", "-i", str(lab.inventory_path), "--limit", server.name, "--tags", "backup",
                        "-e", "yoroi_backup_enabled=true", "-o", "json", state_dir=tmp_path_factory.mktemp("unconfigured"))
    doc = yoroi_cli.json(res)
    assert res.returncode == 2
    assert failing(doc) == ["BAK-001", "BAK-002", "BAK-003", "BAK-004"]
    assert all("no backup configured" in f["actual"] for f in bak(doc))
    assert doc["hosts"][server.name]["changed"] == 0
    assert not server.host.file("/etc/yoroi/backup").exists
    assert server.host.run("systemctl cat yoroi-backup.timer").rc != 0


def test_apply_configures_backups_and_the_host_agrees(backup_lab):
    res, doc, _seconds = backup_lab["runs"]["apply"]
    assert res.returncode == 0, (bak(doc), res.stderr[-2000:])
    assert set(f["control"] for f in bak(doc)) == {"BAK-001", "BAK-002", "BAK-003", "BAK-004"}
    after = backup_lab["after"]
    assert (after["timer_enabled"], after["timer_active"]) == ("enabled", "active")
    pw = after["password_file"]
    assert (pw.user, pw.group, pw.mode) == ("root", "root", 0o600)
    assert backup_lab["client"].host.file("/etc/yoroi/backup").mode == 0o700
    # the units and the script name the password FILE, never the password
    for path in ("/etc/systemd/system/yoroi-backup.service", "/etc/yoroi/backup/run-backup", "/etc/yoroi/backup/restic.env"):
        assert backup_lab["password"] not in backup_lab["client"].host.file(path).content_string


def test_a_snapshot_holds_every_protected_path(backup_lab):
    out = backup_lab["snapshots"]
    assert out.rc == 0, out.stderr
    snapshots = json.loads(out.stdout)
    assert snapshots and set(PATHS) <= set(snapshots[-1]["paths"]), snapshots


def test_audit_passes_and_a_second_apply_changes_nothing(backup_lab):
    res, doc, _seconds = backup_lab["runs"]["second"]
    assert res.returncode == 0 and [h["changed"] for h in doc["hosts"].values()] == [0], (doc["hosts"], bak(doc))
    audit_res, audit, _seconds = backup_lab["runs"]["audit"]
    assert audit_res.returncode == 0, bak(audit)
    assert failing(audit) == []


def test_deleted_and_corrupted_files_come_back_byte_for_byte(backup_lab):
    client = backup_lab["client"]
    recorded = tree_hashes(client.host)
    assert NEWLINE_NAME in recorded and DATA + "/sparse.img" in recorded
    sh(client.host, "rm -f %s/a.txt", DATA)
    sh(client.host, "printf 'garbage' | dd of=%s/sub/b.bin bs=1 seek=100 conv=notrunc 2>/dev/null", DATA)
    damaged = tree_hashes(client.host)
    assert DATA + "/a.txt" not in damaged and damaged[DATA + "/sub/b.bin"] != recorded[DATA + "/sub/b.bin"]
    out = restic(client, "/root/test-password", "/root/test-known-hosts", "restore", "latest", "--target", "/",
                 "--include", DATA)
    assert out.rc == 0, out.stderr
    assert tree_hashes(client.host) == recorded


def test_drill_on_the_intact_repository_passes_and_prints_seconds(backup_lab, yoroi_cli):
    client = backup_lab["client"]
    # a user swaps a file of their own directory for a link to /etc/shadow: the drill must
    # not follow it (it is reported as changed since the snapshot)
    sh(client.host, "runuser -u alice -- sh -c 'rm %s/alice/notes && ln -s /etc/shadow %s/alice/notes'", DATA, DATA)
    res = yoroi_cli.run("drill", "-i", str(backup_lab["inventory"]), "--limit", client.name,
                        "--report", str(backup_lab["reports"] / "drill.json"), state_dir=backup_lab["state"])
    backup_lab["runs"]["drill-text"] = (res, None, 0)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "drill on %s took " % client.name in res.stdout
    drill = json.loads((backup_lab["reports"] / "drill.json").read_text())
    assert failing(drill, "DRL-") == []
    restore = [f for f in drill["findings"] if f["control"] == "DRL-002"][0]
    assert "changed since snapshot" in restore["evidence"] and "alice/notes" in restore["evidence"], restore
    assert "0 mismatch" in restore["actual"], restore
    assert drill["drill_seconds"][client.name] > 0
    assert client.host.run("ls -d /var/tmp/yoroi-drill-* 2>/dev/null").stdout.strip() == ""


def test_drill_against_a_tampered_pack_fails(backup_lab, yoroi_cli):
    client, server = backup_lab["client"], backup_lab["server"]
    pack = sh(server.host, "find %s/data -type f -size +100k | head -1", REPO_DIR).strip()
    assert pack, "no data pack found"
    sh(server.host, "printf '\\377\\377\\377\\377\\377\\377\\377\\377' | dd of=%s bs=1 seek=1000 conv=notrunc 2>/dev/null",
       pack)
    res = yoroi_cli.run("drill", "-i", str(backup_lab["inventory"]), "--limit", client.name, "-o", "json",
                        state_dir=backup_lab["state"])
    doc = yoroi_cli.json(res)
    backup_lab["runs"]["drill-tampered"] = (res, doc, 0)
    assert res.returncode != 0
    assert "DRL-002" in failing(doc, "DRL-"), bak(doc, "DRL-")
    assert client.host.run("ls -d /var/tmp/yoroi-drill-* 2>/dev/null").stdout.strip() == ""


def test_the_password_appears_nowhere(backup_lab, tmp_path_factory):
    """Not in what any run printed, the saved runs, the reports, nor the artifacts of an
    ansible-runner run of the same playbook (check mode) whose private directory is kept."""
    import ansible_runner

    from yoroi import collection, runner

    password = backup_lab["password"]
    for name, (res, _doc, _s) in backup_lab["runs"].items():
        assert password not in res.stdout and password not in res.stderr, name
    kept = tmp_path_factory.mktemp("runner-private")
    result = ansible_runner.run(private_data_dir=str(kept), playbook=str(collection.playbook("site")),
                                inventory=[str(backup_lab["inventory"])], limit=backup_lab["client"].name,
                                tags="backup", cmdline="--check --diff -vvv", envvars=runner.ansible_environment(),
                                quiet=True)
    assert result.rc == 0, result.stdout.read()[-3000:]
    assert (kept / "artifacts").is_dir()
    leaks = []
    for root in (kept, backup_lab["state"], backup_lab["reports"]):
        for path in root.rglob("*"):
            if path.is_file() and password.encode() in path.read_bytes():
                leaks.append(str(path))
    assert leaks == []
