"""Access review logic (module_utils/_access_review.py): sudoers recorded on a bookworm lab
host (sudo 1.9.13), keys made here by the real ssh-keygen and checked against its own
``ssh-keygen -lf``, and the findings of each control."""

import posixpath
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _access_review as review
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles

RECORDED = Path(__file__).resolve().parent / "recorded" / "access_review"
BOOKWORM_SUDOERS = (RECORDED / "sudoers.bookworm").read_text()
BOOKWORM_README = (RECORDED / "sudoers.d.README.bookworm").read_text()


def fake_fs(files):
    """read/listdir over {path: text}."""
    def read(path):
        return files.get(path)

    def listdir(path):
        names = [p[len(path) + 1:] for p in files if posixpath.dirname(p) == path]
        return names if names or path in ("/etc/sudoers.d",) else None
    return read, listdir


def load(files):
    read, listdir = fake_fs(files)
    return review.load_sudoers("/etc/sudoers", read, listdir)


# --- sudoers ------------------------------------------------------------------------------


def test_debian_sudoers_as_shipped_gives_its_two_entries_and_reads_the_includedir():
    entries, problems = load({"/etc/sudoers": BOOKWORM_SUDOERS, "/etc/sudoers.d/README": BOOKWORM_README})
    assert problems == []
    assert [(e.path, e.line, e.text) for e in entries] == [
        ("/etc/sudoers", 47, "root ALL=(ALL:ALL) ALL"),
        ("/etc/sudoers", 50, "%sudo ALL=(ALL:ALL) ALL"),
    ]
    assert all(e.all_commands and not e.nopasswd for e in entries)
    assert [e.principals for e in entries] == [["root"], ["%sudo"]]
    # Debian's defaults pass the default approved list
    findings = review.sudo_findings(entries, problems, review.DEBIAN_SUDOERS, check_mode=True)
    assert [f["status"] for f in findings] == ["pass", "pass"]


def test_a_planted_nopasswd_all_in_sudoers_d_fails_with_file_and_line():
    entries, problems = load({
        "/etc/sudoers": BOOKWORM_SUDOERS,
        "/etc/sudoers.d/README": BOOKWORM_README,
        "/etc/sudoers.d/zz-intruder": "# planted\n\nmallory   ALL = (ALL : ALL)   NOPASSWD: ALL\n",
        # sudo skips names with a dot or ending in ~: so does the review
        "/etc/sudoers.d/old.bak": "eve ALL=(ALL) NOPASSWD: ALL\n",
        "/etc/sudoers.d/zz-intruder~": "eve ALL=(ALL) NOPASSWD: ALL\n",
    })
    assert problems == []
    planted = [e for e in entries if e.path == "/etc/sudoers.d/zz-intruder"]
    assert len(planted) == 1 and len(entries) == 3
    entry = planted[0]
    assert (entry.line, entry.text, entry.nopasswd, entry.all_commands) == (3, "mallory ALL=(ALL:ALL) NOPASSWD:ALL", True, True)
    for check_mode in (True, False):
        findings = review.sudo_findings(entries, problems, review.DEBIAN_SUDOERS, check_mode)
        failed = [f for f in findings if f["status"] == "fail"]
        assert len(failed) == 1
        assert failed[0]["subject"] == "/etc/sudoers.d/zz-intruder:3"
        assert failed[0]["evidence"] == "for mallory; NOPASSWD, ALL commands"
    # approving it, in any spacing, makes it pass
    findings = review.sudo_findings(entries, problems, list(review.DEBIAN_SUDOERS) + ["mallory ALL=(ALL:ALL) NOPASSWD: ALL"], False)
    assert set(f["status"] for f in findings) == {"pass"}


def test_aliases_includes_continuations_and_uid_specs():
    entries, problems = load({
        "/etc/sudoers": (
            "User_Alias ADMINS = alice, %wheel : OPS = bob\n"
            "Cmnd_Alias EVERYTHING = ALL\n"
            "Cmnd_Alias SERVICES = /usr/bin/systemctl restart nginx, \\\n"
            "    /usr/bin/systemctl reload nginx\n"
            "ADMINS ALL = (root, www-data) EVERYTHING\n"
            "OPS ALL=(root) NOPASSWD: SERVICES\n"
            "#1001 ALL=(ALL) /usr/bin/id  # a trailing comment\n"
            "Defaults:carol !authenticate\n"
            "Defaults env_reset\n"
            "#includedir /etc/sudoers.d\n"
            "@include local\n"),
        "/etc/local": "dave ALL=(ALL) PASSWD: /bin/ls, NOPASSWD: /bin/cat\n",
        "/etc/sudoers.d/ops": "%ops ALL=(ALL) NOEXEC: SETENV: /usr/bin/less\n",
    })
    assert problems == []
    by_text = dict((e.text, e) for e in entries)
    admins = by_text["ADMINS ALL=(root,www-data) EVERYTHING"]
    assert admins.principals == ["alice", "%wheel"] and admins.all_commands and not admins.nopasswd
    ops = by_text["OPS ALL=(root) NOPASSWD:SERVICES"]
    assert ops.principals == ["bob"] and ops.nopasswd and not ops.all_commands
    assert by_text["#1001 ALL=(ALL) /usr/bin/id"].principals == ["#1001"]
    defaults = by_text["Defaults:carol !authenticate"]
    assert defaults.principals == ["carol"] and defaults.nopasswd
    assert by_text["dave ALL=(ALL) PASSWD:/bin/ls,NOPASSWD:/bin/cat"].nopasswd
    assert not by_text["%ops ALL=(ALL) NOEXEC:SETENV:/usr/bin/less"].nopasswd
    # the includedir is read where it stands, before the @include that follows it
    assert [e.path for e in entries][-2:] == ["/etc/sudoers.d/ops", "/etc/local"]
    assert not any(e.text.startswith("Defaults env_reset") for e in entries)


def test_an_unreadable_sudoers_file_is_a_failure_not_a_silence():
    def read(path):
        if path == "/etc/sudoers.d/locked":
            raise PermissionError(13, "Permission denied")
        return {"/etc/sudoers": "@includedir /etc/sudoers.d\n"}.get(path)

    entries, problems = review.load_sudoers("/etc/sudoers", read, lambda path: ["locked"])
    assert entries == [] and len(problems) == 1 and "Permission denied" in problems[0]
    findings = review.sudo_findings(entries, problems, [], check_mode=True)
    assert [(f["status"], f["subject"]) for f in findings] == [("fail", "/etc/sudoers.d/locked")]


def test_no_sudo_installed_passes():
    entries, problems = load({})
    assert (entries, problems) == ([], [])
    assert [f["status"] for f in review.sudo_findings(entries, problems, [], False)] == ["pass"]


# --- keys -----------------------------------------------------------------------------------

KEYGEN = shutil.which("ssh-keygen")
KINDS = [("rsa", 1024), ("rsa", 3072), ("dsa", 1024), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521), ("ed25519", 256)]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """{(kind, bits): (public key line, ssh-keygen -lf's bits, its fingerprint)} made by the real ssh-keygen."""
    if KEYGEN is None:
        pytest.fail("ssh-keygen (Debian package openssh-client) is needed to make the test keys")
    base = tmp_path_factory.mktemp("keys")
    made = {}
    for kind, bits in KINDS:
        path = base / ("%s%d" % (kind, bits))
        made_ok = subprocess.run([KEYGEN, "-q", "-t", kind, "-b", str(bits), "-N", "", "-C", "%s-%d@test" % (kind, bits),
                                  "-f", str(path)], capture_output=True, check=False, stdin=subprocess.DEVNULL)
        if made_ok.returncode != 0:  # an OpenSSH built without DSA
            continue
        listed = subprocess.run([KEYGEN, "-lf", str(path) + ".pub"], capture_output=True, text=True, check=True).stdout.split()
        made[(kind, bits)] = ((path.with_suffix(".pub")).read_text().strip(), int(listed[0]), listed[1])
    assert ("rsa", 1024) in made and ("ed25519", 256) in made
    return made


def test_bits_and_fingerprint_match_ssh_keygen(keys):
    for (kind, bits), (line, listed_bits, listed_fp) in keys.items():
        key = review.parse_key_line(line, 1)
        assert key.problem is None, (kind, key.problem)
        assert (key.bits, key.fingerprint) == (listed_bits, listed_fp), kind
        assert key.comment == "%s-%d@test" % (kind, bits)


def test_options_before_the_key_type_with_quoted_blanks(keys):
    line, _bits, fp = keys[("ed25519", 256)]
    text = ('# comment\n\ncommand="/usr/bin/rsync --server -e.LsfxCIvu . /srv",no-pty,from="10.0.0.0/8" %s\n' % line)
    parsed = review.parse_authorized_keys(text)
    assert len(parsed) == 1
    key = parsed[0]
    assert (key.line, key.type, key.fingerprint, key.problem) == (3, "ssh-ed25519", fp, None)
    assert key.options == 'command="/usr/bin/rsync --server -e.LsfxCIvu . /srv",no-pty,from="10.0.0.0/8"'


def test_broken_and_mislabelled_lines_are_problems(keys):
    rsa = keys[("rsa", 3072)][0].split()
    assert review.parse_key_line("ssh-rsa AAAA!!notbase64").problem.startswith("unreadable key")
    assert review.parse_key_line("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB").problem == "unreadable key: truncated key blob"
    assert review.parse_key_line("ssh-ed25519").problem == "no key blob"
    assert "the key inside is ssh-rsa" in review.parse_key_line("ssh-ed25519 %s x" % rsa[1]).problem


def test_a_certificate_line_is_a_problem_not_a_key(keys, tmp_path):
    ca, user = tmp_path / "ca", tmp_path / "user"
    for path in (ca, user):
        subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, capture_output=True)
    subprocess.run([KEYGEN, "-q", "-s", str(ca), "-I", "id", "-n", "alice", str(user) + ".pub"], check=True, capture_output=True)
    cert = (tmp_path / "user-cert.pub").read_text().strip()
    key = review.parse_key_line(cert, 1)
    assert key.type == "ssh-ed25519-cert-v01@openssh.com" and "a certificate" in key.problem
    findings = review.key_findings([("alice", "/home/alice/.ssh/authorized_keys", [key], None)], {}, 2048, False)
    assert [(f["control"], f["status"]) for f in findings] == [("ACR-004", "skipped"), ("ACR-005", "pass")]


def test_weak_keys_fail_even_when_approved(keys):
    holdings = [("alice", "/home/alice/.ssh/authorized_keys",
                 [review.parse_key_line(keys[k][0], i) for i, k in enumerate(sorted(keys), 1)], None)]
    approved = {"alice": [keys[k][2] for k in keys]}
    for check_mode in (True, False):
        findings = review.key_findings(holdings, approved, 2048, check_mode)
        assert set(f["status"] for f in findings if f["control"] == "ACR-004") == {"pass"}
        weak = sorted(f["subject"] for f in findings if f["control"] == "ACR-005" and f["status"] == "fail")
        expected = sorted("alice:" + keys[k][2] for k in keys if k in (("rsa", 1024), ("dsa", 1024)))
        assert weak == expected
    # a stricter site: 3072-bit RSA passes 3072, fails 4096
    findings = review.key_findings(holdings, approved, 4096, False)
    assert "alice:" + keys[("rsa", 3072)][2] in [f["subject"] for f in findings if f["control"] == "ACR-005"]


def test_an_unapproved_key_and_a_refused_file_fail(keys):
    line, _b, fp = keys[("ed25519", 256)]
    holdings = [
        ("yoroi", "/home/yoroi/.ssh/authorized_keys", review.parse_authorized_keys(line + "\n" + keys[("ecdsa", 256)][0]), None),
        ("bob", "/home/bob/.ssh/authorized_keys", None, "a symlink (or below one); sshd would follow it, the review does not"),
    ]
    findings = review.key_findings(holdings, {"yoroi": [fp]}, 2048, True, keys_command="/usr/bin/sss_ssh_authorizedkeys")
    by_subject = dict((f.get("subject"), f) for f in findings)
    assert by_subject["yoroi:" + fp]["status"] == "pass"
    stray = by_subject["yoroi:" + keys[("ecdsa", 256)][2]]
    assert stray["status"] == "fail" and stray["actual"].startswith("ecdsa-sha2-nistp256 256 SHA256:")
    assert stray["evidence"] == "/home/yoroi/.ssh/authorized_keys:2"
    assert by_subject["bob:/home/bob/.ssh/authorized_keys"]["status"] == "fail"
    assert by_subject["AuthorizedKeysCommand"]["status"] == "skipped"
    assert by_subject[None]["actual"] == "no weak key among 2 keys"


def test_no_keys_anywhere_passes():
    findings = review.key_findings([], {}, 2048, False)
    assert [(f["control"], f["status"]) for f in findings] == [("ACR-004", "pass"), ("ACR-005", "pass")]


# --- accounts and groups -------------------------------------------------------------------

PASSWD = """root:x:0:0:root:/root:/bin/bash
toor:x:0:0:second root:/root:/bin/bash
alice:x:1000:1000::/home/alice:/bin/bash
breakglass:x:1001:1001::/home/breakglass:/bin/bash
olddocker:x:1002:1002::/home/olddocker:/bin/bash
yoroi:x:1003:27::/home/yoroi:/bin/bash
"""
GROUP = """root:x:0:
sudo:x:27:breakglass,alice
docker:x:999:olddocker
users:x:100:alice
"""


def accounts(expired=()):
    rows = hostfiles.parse_passwd(PASSWD)
    for account in rows:
        account.expire = 1 if account.name in expired else None
    return rows


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_second_uid0_account_fails_until_it_is_disabled(check_mode):
    findings = review.uid0_findings(accounts(), 20000, check_mode)
    assert [(f["subject"], f["status"]) for f in findings] == [("toor", "fail")]
    findings = review.uid0_findings(accounts(expired=("toor",)), 20000, check_mode)
    assert [(f["subject"], f["status"]) for f in findings] == [("toor", "pass")]
    assert review.uid0_findings(accounts()[2:], 20000, check_mode)[0]["status"] == "pass"


def test_privileged_group_members_listed_and_by_primary_group():
    rows = accounts(expired=("olddocker",))
    members = review.privileged_members(hostfiles.parse_group(GROUP), rows, {"root", "sudo", "docker", "wheel"})
    assert members == {"root": ["root", "toor"], "sudo": ["alice", "breakglass", "yoroi"], "docker": ["olddocker"]}
    findings = review.group_findings(members, rows, {"sudo": ["breakglass", "yoroi"]}, 20000, False)
    statuses = dict((f["subject"], f["status"]) for f in findings)
    assert statuses == {"root:root": "pass", "root:toor": "fail", "sudo:alice": "fail", "sudo:breakglass": "pass",
                        "sudo:yoroi": "pass", "docker:olddocker": "pass"}
    assert review.group_findings({"wheel": []}, rows, {}, 20000, True)[0]["status"] == "pass"


# --- files -------------------------------------------------------------------------------------


def test_usr_aliases_both_ways():
    merged = {"/bin": "/usr/bin", "/lib": "/usr/lib"}
    assert review.usr_aliases("/usr/bin/su", merged) == ["/usr/bin/su", "/bin/su"]
    assert review.usr_aliases("/bin/su", merged) == ["/bin/su", "/usr/bin/su"]
    assert review.usr_aliases("/usr/local/bin/x", merged) == ["/usr/local/bin/x"]


def test_suid_not_packaged_fails_unless_approved_and_the_list_is_bounded():
    found = [("/usr/bin/passwd", 0o104755, 0, 0), ("/usr/bin/su", 0o104755, 0, 0),
             ("/usr/local/bin/true", 0o104755, 0, 0), ("/opt/tool/helper", 0o102755, 0, 50)]
    owners = {"/usr/bin/passwd": "passwd", "/usr/bin/su": "util-linux"}
    changed = {"/usr/bin/su": "named by util-linux but its content differs from the package's md5sums"}
    findings = review.suid_findings(found, owners, changed, ["/opt/tool/helper"], 50, True)
    by_subject = dict((f.get("subject"), f) for f in findings)
    assert by_subject["/usr/local/bin/true"]["status"] == "fail"
    assert by_subject["/usr/local/bin/true"]["actual"] == "SUID 4755 uid 0 gid 0"
    assert by_subject["/usr/local/bin/true"]["evidence"] == "no package ships it"
    assert by_subject["/usr/bin/su"]["status"] == "fail" and "md5sums" in by_subject["/usr/bin/su"]["evidence"]
    assert by_subject["/opt/tool/helper"]["status"] == "pass" and by_subject["/opt/tool/helper"]["actual"].startswith("SGID 2755")
    assert by_subject[None]["actual"] == "1 shipped by packages" and "passwd" in by_subject[None]["evidence"]
    bounded = review.suid_findings(found, {}, {}, [], 2, False)
    assert [f["subject"] for f in bounded if f["status"] == "fail"] == ["/usr/bin/passwd", "/usr/bin/su", "(2 more)"]


def test_world_writable_findings():
    found = [("/etc/app.conf", 0o100666, "file"), ("/srv/drop", 0o40777, "directory")]
    findings = review.world_writable_findings(found, 3, ["/srv/drop"], 50, False)
    assert [(f["subject"], f["status"]) for f in findings] == [("/etc/app.conf", "fail"), ("/srv/drop", "pass"), ("(3 more)", "fail")]
    assert findings[0]["actual"] == "file 0666 world-writable"
    assert [f["status"] for f in review.world_writable_findings([], 0, [], 50, True)] == ["pass"]


def test_every_control_is_declared():
    assert sorted(review.CONTROLS) == ["ACR-%03d" % i for i in range(1, 8)]


def test_key_options_are_reported_by_name_only():
    """A command= or environment= value can hold a token; findings reach reports."""
    from ansible_collections.yoroi.baseline.plugins.module_utils import _access_review as review
    options = 'command="/usr/bin/backup --token=S3CR3T,x",environment="PASS=hunter2",no-pty,from="10.0.0.0/8"'
    assert review.option_names(options) == ["command", "environment", "no-pty", "from"]
