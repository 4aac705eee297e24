"""`yoroi collect` against a real lab host: the bundle holds the planted evidence (a process
whose binary was deleted, a cron file, an authorized key, a recent /etc change), its
manifest verifies by an independent SHA-256, a tampered copy does not, no file on the host
changed, no staging directory is left, and an unreachable host is reported (exit 1).

One lab with one bookworm host and a `ghost` host at a loopback port nothing listens on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import checks

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCANNED = "/etc /home /root /var/spool/cron /usr"
PLANTED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlantedKeyForTheEvidenceTest00000000000 planted@evidence"
SECRET = "SECRET-BEHIND-A-SYMLINK"


def snapshot(host) -> dict[str, str]:
    """{path: "mtime size sha256"} of every regular file under SCANNED."""
    out = host.run(f"find {SCANNED} -xdev -type f -printf '%p\\t%T@ %s\\n'; echo ---; "
                   f"find {SCANNED} -xdev -type f -print0 | xargs -0 sha256sum")
    assert out.rc == 0, out.stderr
    stats_text, sums_text = out.stdout.split("---\n", 1)
    stats = dict(line.rsplit("\t", 1) for line in stats_text.splitlines() if "\t" in line)
    sums = dict(reversed(line.split("  ", 1)) for line in sums_text.splitlines())
    return {path: "%s %s" % (value, sums.get(path)) for path, value in stats.items()}


@pytest.fixture(scope="module")
def target(module_lab):
    lab, nodes = module_lab(hosts=1)
    return lab, nodes[0]


@pytest.fixture(scope="module")
def ghost_inventory(target, tmp_path_factory):
    """The lab inventory plus a host `ghost` at a loopback port nothing listens on."""
    return checks.ghost_inventory(target[0].inventory_path, tmp_path_factory.mktemp("ghost"))


@pytest.fixture(scope="module")
def planted(target):
    """Evidence planted on the host: a running binary then deleted, a cron file, an
    authorized key, a recent /etc file with a hostile name, and a home whose ~/.ssh is a
    symlink to a directory outside it."""
    node = target[1]
    unplanted = snapshot(node.host)
    script = f"""set -e
cp /bin/sleep /tmp/evil
setsid nohup /tmp/evil 7200 >/dev/null 2>&1 < /dev/null &
sleep 1
rm /tmp/evil
printf '* * * * * root /usr/bin/true planted\\n' > /etc/cron.d/yoroi-planted
useradd -m -s /bin/bash mallory
install -d -m 700 -o mallory /home/mallory/.ssh
echo '{PLANTED_KEY}' > /home/mallory/.ssh/authorized_keys
useradd -m -s /bin/bash trudy
install -d -m 700 /root/hidden
echo '{SECRET}' > /root/hidden/authorized_keys
ln -s /root/hidden /home/trudy/.ssh
echo planted > /etc/yoroi-planted.conf
touch "$(printf '/etc/odd\\nname|x')"
"""
    res = node.host.run(script)
    assert res.rc == 0, res.stderr
    pid = node.host.run("pgrep -f '^/tmp/evil 7200'").stdout.split()
    assert pid, "the planted process is not running"
    sleep_sha = node.host.run("sha256sum /bin/sleep").stdout.split()[0]
    return {"pid": int(pid[0]), "sleep_sha": sleep_sha, "unplanted": unplanted}


@pytest.fixture(scope="module")
def collected(target, planted, ghost_inventory, tmp_path_factory, yoroi_cli):
    node = target[1]
    before = snapshot(node.host)
    out = tmp_path_factory.mktemp("evidence") / "bundles"
    res = yoroi_cli.run("collect", "-i", str(ghost_inventory), "--out", str(out), "--since", "2", "-y",
                        state_dir=tmp_path_factory.mktemp("state"))
    after = snapshot(node.host)
    return {"res": res, "out": out, "before": before, "after": after}


def bundle_of(collected, node):
    bundles = sorted(collected["out"].glob("%s-*.tar.gz" % node.name))
    assert len(bundles) == 1, (collected["res"].stdout, collected["res"].stderr)
    return bundles[0]


def test_unreachable_host_is_reported_and_fails_the_run(collected, target):
    res = collected["res"]
    print(res.stdout)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "collect on ghost: NOT collected (unreachable)" in res.stdout
    assert "collect on %s took " % target[1].name in res.stdout
    assert "By control" not in res.stdout  # no control is evaluated: no compliance report


def test_manifest_verifies_by_independent_hashes(collected, target, yoroi_cli, tmp_path):
    bundle = bundle_of(collected, target[1])
    manifest_file = bundle.with_name(bundle.name[: -len(".tar.gz")] + ".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == manifest["sha256"]
    with tarfile.open(bundle) as tar:
        members = {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for m in tar if m.isfile()}
    assert members == manifest["members"] == manifest["members_as_hashed_on_host"]
    assert manifest["collected"]["by"] and manifest["collected"]["from"] and manifest["collected"]["at"]
    steps = [item["step"] for item in manifest["timings"]]
    assert steps == ["processes", "sockets", "sessions", "logs", "persistence", "recent_files", "timeline"]
    assert oct(bundle.stat().st_mode & 0o777) == oct(0o600)
    assert oct(manifest_file.stat().st_mode & 0o777) == oct(0o600)
    assert oct(collected["out"].stat().st_mode & 0o777) == oct(0o700)
    res = yoroi_cli.run("collect", "--verify", str(bundle), state_dir=tmp_path)
    assert res.returncode == 0 and "verifies" in res.stdout, res.stdout + res.stderr
    # a tampered copy does not verify
    copy = tmp_path / bundle.name
    shutil.copy(bundle, copy)
    shutil.copy(manifest_file, tmp_path / manifest_file.name)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    res = yoroi_cli.run("collect", "--verify", str(copy), state_dir=tmp_path)
    print(res.stdout)
    assert res.returncode == 1 and "SHA-256 differs" in res.stdout


def read_member(bundle, name) -> bytes:
    with tarfile.open(bundle) as tar:
        return tar.extractfile(name).read()


def test_bundle_holds_the_planted_evidence(collected, target, planted):
    bundle = bundle_of(collected, target[1])
    processes = json.loads(read_member(bundle, "01-processes/processes.json"))
    evil = [p for p in processes if p["pid"] == planted["pid"]]
    print(evil)
    assert evil and evil[0]["deleted"] and evil[0]["exe"] == "/tmp/evil (deleted)"
    assert evil[0]["sha256"] == planted["sleep_sha"]
    deleted = json.loads(read_member(bundle, "01-processes/deleted_binaries.json"))
    assert planted["pid"] in [p["pid"] for p in deleted]
    assert b"planted" in read_member(bundle, "05-persistence/cron/etc/cron.d/yoroi-planted")
    assert PLANTED_KEY.encode() in read_member(bundle, "05-persistence/authorized_keys/mallory/.ssh_authorized_keys")
    with tarfile.open(bundle) as tar:
        everything = b"".join(tar.extractfile(m).read() for m in tar if m.isfile() and "/raw/" not in m.name)
    assert SECRET.encode() not in everything, "a key behind a symlink out of the home was read"
    bodyfile = read_member(bundle, "07-timeline/bodyfile.txt").decode()
    fields = [line.split("|") for line in bodyfile.splitlines()]
    assert all(len(row) == 11 for row in fields)
    assert any(row[1] == "/etc/yoroi-planted.conf" for row in fields)
    assert any(row[1] == "/etc/odd\\x0aname\\x7cx" for row in fields)
    recent = json.loads(read_member(bundle, "06-recent/changed.json"))
    assert "/etc/yoroi-planted.conf" in [item["path"] for item in recent["files"]]
    sockets = json.loads(read_member(bundle, "02-sockets/inet.json"))
    assert any(s["state"] == "LISTEN" and s["local"].endswith(":22") for s in sockets)
    assert any(s["state"] == "ESTABLISHED" for s in sockets)


def test_the_snapshot_sees_a_change(collected, planted):
    """The check below can fail: the snapshot sees what the planting changed."""
    before, after = planted["unplanted"], collected["before"]
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert "/etc/yoroi-planted.conf" in changed and "/home/mallory/.ssh/authorized_keys" in changed


def test_nothing_changed_on_the_host_and_no_staging_left(collected, target):
    before, after = collected["before"], collected["after"]
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert changed == []
    left = target[1].host.run("ls -a /var/tmp").stdout.split()
    assert not [name for name in left if name.startswith("yoroi-evidence-")]


def test_a_failed_fetch_still_removes_the_staging_directory(collected, target, tmp_path):
    """The playbook's failure path: the fetch fails (its destination cannot be made), the
    host fails, and the `always:` still removes the staging directory."""
    lab, node = target
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".dev" / "collections"), ANSIBLE_NOCOLOR="1")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    res = subprocess.run(["ansible-playbook", "-i", str(lab.inventory_path), "--limit", node.name,
                          str(REPO / "playbooks" / "evidence.yml"),
                          "-e", "yoroi_evidence_fetch_dir=%s" % blocker, "-e", "yoroi_evidence_since_days=1"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    print(res.stdout[-3000:])
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-2000:]
    assert "Bundle fetched to the controller" in res.stdout and "Staging directory removed" in res.stdout
    left = node.host.run("ls -a /var/tmp").stdout.split()
    assert not [name for name in left if name.startswith("yoroi-evidence-")]
