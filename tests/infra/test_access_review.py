"""Access review (ACR-001..007) on a real bookworm lab host.

One lab host. Planted on it, the way an intruder or a careless admin would:

* ``mallory`` with ``mallory ALL=(ALL) NOPASSWD: ALL`` in ``/etc/sudoers.d/zz-mallory``;
* a stray ed25519 key in alice's ``~/.ssh/authorized_keys``;
* a 1024-bit RSA key (``ssh-keygen -t rsa -b 1024``) in bob's, which the site approves:
  a weak key fails ACR-005 on its own;
* a copy of ``/bin/true``, mode 4755, as ``/usr/local/bin/yoroi-planted-true``.

The host state is checked by the host's own tools (``sudo -l -U``, ``ssh-keygen -lf``,
``find -perm``, ``dpkg -S``), the report part from `yoroi audit` (two runs, tag
``access_review``): the first fails on each planted item; after the weak key is removed
and toor disabled, the approved lists set to exactly what is there report clean (exit 0).
The review changes nothing: the planted files are byte for byte the same after both runs.
"""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.lab

PLANTED_SUID = "/usr/local/bin/yoroi-planted-true"
MALLORY_SUDOERS = "/etc/sudoers.d/zz-mallory"


def keygen(path, kind, bits):
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-b", str(bits), "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    listed = subprocess.run(["ssh-keygen", "-lf", str(path) + ".pub"], check=True, capture_output=True, text=True).stdout.split()
    return (path.parent / (path.name + ".pub")).read_text().strip(), int(listed[0]), listed[1]


def run(host, command):
    result = host.run(command)
    assert result.rc == 0, (command, result.stdout, result.stderr)
    return result.stdout


def add_key(host, user, line):
    run(host, "install -d -o %s -g %s -m 0700 /home/%s/.ssh" % (user, user, user))
    run(host, "printf '%%s\\n' '%s' >> /home/%s/.ssh/authorized_keys" % (line, user))
    run(host, "chown %s:%s /home/%s/.ssh/authorized_keys && chmod 0600 /home/%s/.ssh/authorized_keys" % (user, user, user, user))


def checksums(host):
    return run(host, "sha256sum %s %s /home/alice/.ssh/authorized_keys /etc/passwd /etc/group" % (MALLORY_SUDOERS, PLANTED_SUID))


@pytest.fixture(scope="module")
def planted(module_lab, tmp_path_factory):
    lab, nodes = module_lab(hosts=1)
    node = nodes[0]
    host = node.host
    keys = tmp_path_factory.mktemp("keys")
    stray = keygen(keys / "stray", "ed25519", 256)
    weak = keygen(keys / "weak", "rsa", 1024)
    run(host, "useradd -m -s /bin/bash mallory")
    run(host, "printf 'mallory ALL=(ALL) NOPASSWD: ALL\\n' > %s.tmp && chmod 0440 %s.tmp && visudo -cf %s.tmp "
              "&& mv %s.tmp %s" % ((MALLORY_SUDOERS,) * 5))
    add_key(host, "alice", stray[0])
    add_key(host, "bob", weak[0])
    run(host, "install -m 4755 /bin/true %s" % PLANTED_SUID)
    return lab, node, {"stray": stray, "weak": weak}


def audit(cli, lab, tmp_path_factory, *extra):
    argv = ["audit", "-i", str(lab.inventory_path), "-t", "access_review", "-o", "json"]
    for value in extra:
        argv += ["-e", value]
    res = cli.run(*argv, state_dir=tmp_path_factory.mktemp("state"))
    return res, cli.json(res)


@pytest.fixture(scope="module")
def first(planted, yoroi_cli, tmp_path_factory):
    lab, node, keys = planted
    before = checksums(node.host)
    # the site approved bob's key (by fingerprint) but not alice's stray one
    res, doc = audit(yoroi_cli, lab, tmp_path_factory,
                     json.dumps({"yoroi_access_review_approved_keys": {"yoroi": lab_key(lab), "bob": [keys["weak"][2]]}}))
    assert checksums(node.host) == before, "the review changed a file"
    return res, doc


def lab_key(lab):
    listed = subprocess.run(["ssh-keygen", "-lf", lab.hosts[0].key + ".pub"], check=True, capture_output=True, text=True)
    return [listed.stdout.split()[1]]


def failing(doc):
    return sorted((f["control"], f.get("subject")) for f in doc["findings"] if f["status"] != "pass")


# --- the host really is as planted (its own tools) --------------------------------------------


def test_planted_state_is_real(planted):
    _lab, node, keys = planted
    host = node.host
    assert "(ALL) NOPASSWD: ALL" in run(host, "sudo -l -U mallory")
    listed = run(host, "ssh-keygen -lf /home/bob/.ssh/authorized_keys").split()
    assert (int(listed[0]), listed[1], listed[-1]) == (1024, keys["weak"][2], "(RSA)")
    assert keys["stray"][2] in run(host, "ssh-keygen -lf /home/alice/.ssh/authorized_keys")
    assert PLANTED_SUID in run(host, "find /usr/local -xdev -type f -perm -4000").split()
    assert host.run("dpkg -S %s" % PLANTED_SUID).rc != 0  # no package ships it
    # the lab's own grants, which the lab inventory approves
    assert "NOPASSWD: ALL" in run(host, "sudo -l -U yoroi")


# --- the first audit: each planted item is reported -------------------------------------------


def test_audit_reports_each_planted_item(first, planted):
    res, doc = first
    _lab, node, keys = planted
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-2000:]
    assert doc["hosts"][node.name]["status"] == "ok"
    by_key = dict(((f["control"], f.get("subject")), f) for f in doc["findings"])
    sudo = by_key[("ACR-002", MALLORY_SUDOERS + ":1")]
    assert sudo["status"] == "fail" and sudo["actual"] == "mallory ALL=(ALL) NOPASSWD:ALL"
    assert sudo["evidence"] == "for mallory; NOPASSWD, ALL commands"
    stray = by_key[("ACR-004", "alice:" + keys["stray"][2])]
    assert stray["status"] == "fail" and stray["actual"].startswith("ssh-ed25519 256 " + keys["stray"][2])
    # approved, yet weak: ACR-004 passes, ACR-005 fails on its own
    assert by_key[("ACR-004", "bob:" + keys["weak"][2])]["status"] == "pass"
    weak = by_key[("ACR-005", "bob:" + keys["weak"][2])]
    assert weak["status"] == "fail" and weak["actual"] == "RSA key of 1024 bits, below 2048"
    suid = by_key[("ACR-007", PLANTED_SUID)]
    assert suid["status"] == "fail" and suid["actual"] == "SUID 4755 uid 0 gid 0" and suid["evidence"] == "no package ships it"
    # the seeded neglect: toor, UID 0 and in group root, can log in
    assert by_key[("ACR-001", "toor")]["status"] == "fail"
    assert failing(doc) == sorted([
        ("ACR-001", "toor"), ("ACR-002", MALLORY_SUDOERS + ":1"), ("ACR-003", "root:toor"),
        ("ACR-004", "alice:" + keys["stray"][2]), ("ACR-005", "bob:" + keys["weak"][2]), ("ACR-007", PLANTED_SUID)])


# --- the approved state is clean --------------------------------------------------------------


def test_approved_state_reports_clean(first, planted, yoroi_cli, tmp_path_factory):
    lab, node, keys = planted
    host = node.host
    # the weak key cannot be approved: remove it; disable toor as the accounts role does
    run(host, "rm /home/bob/.ssh/authorized_keys")
    assert not host.file("/home/bob/.ssh/authorized_keys").exists
    run(host, "usermod --lock --expiredate 1 toor")
    approved = {
        "yoroi_access_review_approved_sudoers": ["root ALL=(ALL:ALL) ALL", "%sudo ALL=(ALL:ALL) ALL",
                                                 "yoroi ALL=(ALL:ALL) NOPASSWD:ALL", "mallory ALL=(ALL) NOPASSWD: ALL"],
        "yoroi_access_review_approved_keys": {"yoroi": lab_key(lab), "alice": [keys["stray"][2]]},
        "yoroi_access_review_approved_suid": [PLANTED_SUID],
    }
    res, doc = audit(yoroi_cli, lab, tmp_path_factory, json.dumps(approved))
    assert failing(doc) == []
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert sorted(set(f["control"] for f in doc["findings"] if f["control"].startswith("ACR-"))) == [
        "ACR-%03d" % i for i in range(1, 8)]
