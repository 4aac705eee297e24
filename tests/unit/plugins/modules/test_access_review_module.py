"""access_review end to end in-process, over files in a temporary root: the reads that
refuse to follow a planted link, the walk, the dpkg lookup, and a whole module run (the
same findings in check mode and out of it, and nothing changed)."""

import hashlib
import os
import stat

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import access_review

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOoOMnQWu/m9eg1KAj3Iv5dHtbqAEdPdRJrod3a8gpG2 alice@test"
ED25519_FP = "SHA256:dxFD5MecmzYyL7E6hf8KIqsWnEAZ/wA0lQeG+aGMgK8"  # ssh-keygen -lf


def home_with_keys(tmp_path, text=ED25519 + "\n"):
    home = tmp_path / "home" / "alice"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text(text)
    return home


# --- reading a user's key file as root -------------------------------------------------------


def test_reads_a_regular_key_file_of_the_account(tmp_path):
    home = home_with_keys(tmp_path)
    uid = os.getuid()
    assert access_review.read_key_file(str(home / ".ssh/authorized_keys"), str(home), uid) == ED25519 + "\n"
    assert access_review.read_key_file(str(home / ".ssh/authorized_keys2"), str(home), uid) is None
    assert access_review.read_key_file(str(tmp_path / "nohome/.ssh/authorized_keys"), str(tmp_path / "nohome"), uid) is None


def test_refuses_a_symlinked_key_file(tmp_path):
    home = home_with_keys(tmp_path)
    secret = tmp_path / "root-only"
    secret.write_text("not for alice\n")
    keys = home / ".ssh" / "authorized_keys"
    keys.unlink()
    keys.symlink_to(secret)
    with pytest.raises(access_review.Refused, match="symlink"):
        access_review.read_key_file(str(keys), str(home), os.getuid())


def test_refuses_a_symlinked_ssh_directory(tmp_path):
    home = home_with_keys(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (home / ".ssh").rename(elsewhere)
    (home / ".ssh").symlink_to(elsewhere)
    with pytest.raises(access_review.Refused, match="symlink"):
        access_review.read_key_file(str(home / ".ssh/authorized_keys"), str(home), os.getuid())


def test_refuses_a_fifo_without_blocking_and_a_foreign_owner(tmp_path):
    home = home_with_keys(tmp_path)
    keys = home / ".ssh" / "authorized_keys"
    keys.unlink()
    os.mkfifo(str(keys))
    with pytest.raises(access_review.Refused, match="not a regular file"):
        access_review.read_key_file(str(keys), str(home), os.getuid())
    keys.unlink()
    keys.write_text(ED25519 + "\n")
    if os.getuid() == 0:
        os.chown(str(keys), 4242, 4242)
        with pytest.raises(access_review.Refused, match="owned by uid 4242"):
            access_review.read_key_file(str(keys), str(home), 1000)
    else:
        with pytest.raises(access_review.Refused, match="owned by uid %d" % os.getuid()):
            access_review.read_key_file(str(keys), str(home), os.getuid() + 1)


# --- the walk ---------------------------------------------------------------------------------


def make_tree(tmp_path):
    root = tmp_path / "sys"
    for d in ("usr/bin", "usr/local/bin", "etc", "var/tmp", "var/lib/docker/x", "srv/drop"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/passwd").write_bytes(b"passwd binary")
    os.chmod(str(root / "usr/bin/passwd"), 0o4755)
    (root / "usr/local/bin/true").write_bytes(b"true binary")
    os.chmod(str(root / "usr/local/bin/true"), 0o4755)
    (root / "etc/app.conf").write_text("x")
    os.chmod(str(root / "etc/app.conf"), 0o666)
    os.chmod(str(root / "var/tmp"), 0o1777)
    os.chmod(str(root / "srv/drop"), 0o777)
    (root / "var/lib/docker/x/suid").write_text("x")
    os.chmod(str(root / "var/lib/docker/x/suid"), 0o4755)
    # a link to a SUID file and to a world-writable file are not followed
    (root / "usr/bin/link").symlink_to(root / "usr/local/bin/true")
    (root / "etc/alias").symlink_to(root / "etc/app.conf")
    # a scan path that is a symlink (merged /usr: /bin -> usr/bin) is not walked twice
    (root / "bin").symlink_to("usr/bin")
    return root


def test_walk_finds_world_writable_and_suid_without_following_links(tmp_path):
    root = make_tree(tmp_path)
    roots = [str(root / d) for d in ("bin", "usr", "etc", "var", "srv", "usr/local", "missing")]
    writable, special, more, covered = access_review.walk(roots, [str(root / "var/lib/docker")], 50)
    assert [(p[len(str(root)):], kind) for p, _m, kind in writable] == [("/etc/app.conf", "file"), ("/srv/drop", "directory")]
    assert [p[len(str(root)):] for p, _m, _u, _g in special] == ["/usr/bin/passwd", "/usr/local/bin/true"]
    assert more == 0
    assert covered["roots"] == [str(root / d) for d in ("etc", "srv", "usr", "var")]
    writable, _special, more, _covered = access_review.walk(roots, [], 1)
    assert len(writable) == 1 and more == 1


def test_package_owners_and_md5sums(tmp_path):
    root = make_tree(tmp_path)
    info = tmp_path / "dpkg-info"
    info.mkdir()
    passwd = str(root / "usr/bin/passwd")
    # dpkg lists /bin/passwd; on this merged-/usr host it is /usr/bin/passwd
    alias = {str(root / "bin"): str(root / "usr/bin")}
    listed = str(root / "bin/passwd")
    (info / "passwd.list").write_text("/.\n%s\n" % listed)
    (info / "passwd.md5sums").write_text("%s  %s\n" % (hashlib.md5(b"passwd binary").hexdigest(), listed.lstrip("/")))
    owners, changed = access_review.package_owners([passwd, str(root / "usr/local/bin/true")], alias, str(info))
    assert owners == {passwd: "passwd"} and changed == {}
    (root / "usr/bin/passwd").write_bytes(b"replaced")
    owners, changed = access_review.package_owners([passwd], alias, str(info))
    assert "differs from the package's md5sums" in changed[passwd]


def test_merged_usr(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib").mkdir()
    assert access_review.merged_usr(str(tmp_path)) == {"/bin": str(tmp_path / "usr/bin")}


# --- the whole module -------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    home = home_with_keys(tmp_path)
    etc = tmp_path / "etcfiles"
    etc.mkdir()
    uid = os.getuid() or 1000  # as root, alice's files are root's: allowed
    (etc / "passwd").write_text("root:x:0:0:root:/nonexistent-root:/bin/bash\nalice:x:%d:1000::%s:/bin/bash\n" % (uid, home))
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n")
    (etc / "group").write_text("root:x:0:\nsudo:x:27:alice\n")
    (etc / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n@includedir %s\n" % (etc / "sudoers.d"))
    (etc / "sudoers.d").mkdir()
    (etc / "sudoers.d" / "alice").write_text("alice ALL=(ALL) NOPASSWD: ALL\n")
    info = tmp_path / "dpkg-info"
    info.mkdir()
    (info / "passwd.list").write_text("%s\n" % (root / "usr/bin/passwd"))
    for name in ("PASSWD", "SHADOW", "GROUP"):
        monkeypatch.setattr(hostfiles, name, str(etc / name.lower()))
    monkeypatch.setattr(access_review, "SUDOERS", str(etc / "sudoers"))
    monkeypatch.setattr(access_review, "DPKG_INFO", str(info))
    # sshd -T of this machine is not the test's: the defaults (.ssh/authorized_keys{,2})
    monkeypatch.setattr(access_review.AnsibleModule, "get_bin_path", lambda self, *a, **k: None)
    args = {"scan_paths": [str(root / d) for d in ("usr", "etc", "srv", "var")],
            "skip_paths": [str(root / "var/lib/docker")]}
    return root, etc, args


def test_module_reports_each_unapproved_item_then_clean_when_approved(host, run_module):
    root, etc, args = host
    files = dict((p, os.stat(p).st_mtime_ns) for p in (str(etc / "sudoers.d/alice"), str(root / "usr/local/bin/true")))
    results = [run_module(access_review, args, check_mode=mode) for mode in (True, False)]
    for result, failed in results:
        assert not failed and result["changed"] is False
        failing = sorted((f["control"], f.get("subject")) for f in result["findings"] if f["status"] == "fail")
        assert failing == [
            ("ACR-002", str(etc / "sudoers.d/alice") + ":1"),
            ("ACR-003", "sudo:alice"),
            ("ACR-004", "alice:" + ED25519_FP),
            ("ACR-006", str(root / "etc/app.conf")),
            ("ACR-006", str(root / "srv/drop")),
            ("ACR-007", str(root / "usr/local/bin/true")),
        ]
    assert results[0][0]["findings"] == results[1][0]["findings"]
    assert dict((p, os.stat(p).st_mtime_ns) for p in files) == files
    approved = dict(args, approved_sudoers=["root ALL=(ALL:ALL) ALL", "alice ALL=(ALL) NOPASSWD:ALL"],
                    approved_privileged={"sudo": ["alice"]}, approved_keys={"alice": [ED25519_FP]},
                    approved_world_writable=[str(root / "etc/app.conf"), str(root / "srv/drop")],
                    approved_suid=[str(root / "usr/local/bin/true")])
    result, failed = run_module(access_review, approved, check_mode=True)
    assert not failed
    assert [f for f in result["findings"] if f["status"] != "pass"] == []
    assert sorted(set(f["control"] for f in result["findings"])) == ["ACR-%03d" % i for i in range(1, 8)]


def test_module_refuses_without_shadow(host, run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(hostfiles, "SHADOW", str(tmp_path / "missing"))
    result, failed = run_module(access_review, host[2], check_mode=True)
    assert failed and "run as root" in result["msg"]
    assert sorted(f["control"] for f in result["findings"]) == ["ACR-%03d" % i for i in range(1, 8)]
    assert set(f["status"] for f in result["findings"]) == {"error"}


def test_module_refuses_a_zero_bound(host, run_module):
    result, failed = run_module(access_review, dict(host[2], max_reported=0), check_mode=False)
    assert failed and "max_reported" in result["msg"]
    assert stat.S_ISDIR(os.stat(str(host[0])).st_mode)


def test_documentation_parses_and_lists_every_option():
    import yaml

    from ansible.module_utils import basic

    from ansible_collections.yoroi.baseline.plugins.modules import access_review as documented

    doc = yaml.safe_load(documented.DOCUMENTATION)
    assert "yoroi.baseline.concern" in doc["extends_documentation_fragment"]
    assert set(yaml.safe_load(documented.RETURN)) == {"findings", "walk"}
    assert sorted(doc["attributes"]) == ["check_mode", "diff_mode"]
    captured = {}

    class Capture(Exception):
        pass

    def fake_init(self, argument_spec, **kwargs):
        captured.update(argument_spec)
        raise Capture()

    original = basic.AnsibleModule.__init__
    basic.AnsibleModule.__init__ = fake_init
    try:
        with pytest.raises(Capture):
            access_review.main()
    finally:
        basic.AnsibleModule.__init__ = original
    shared = {"automation_account", "break_glass_accounts"}
    assert set(doc["options"]) == set(captured) - shared
    for name, option in doc["options"].items():
        assert option.get("default") == captured[name].get("default"), name
