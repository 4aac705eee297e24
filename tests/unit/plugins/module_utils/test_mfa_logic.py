"""Pure MFA logic: rendering, deadline, secret-file parsing, enrolment plan, lockout judgement."""

import datetime
import os

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _mfa as mfa

DEBIAN_SSHD_PAM = """# PAM configuration for the Secure Shell service

# Standard Un*x authentication.
@include common-auth

# Disallow non-root logins when /etc/nologin exists.
account    required     pam_nologin.so
@include common-account
@include common-session
@include common-password
"""
SECRET_LINE = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.mark.parametrize("deadline,today,expected", [
    ("2027-03-31", datetime.date(2027, 3, 30), True),
    ("2027-03-31", datetime.date(2027, 3, 31), False),  # takes effect on the day
    ("2027-03-31", datetime.date(2027, 4, 1), False),
    ("", datetime.date(2027, 1, 1), False),  # no grace period
])
def test_nullok_follows_the_deadline(deadline, today, expected):
    assert mfa.nullok(mfa.parse_deadline(deadline), today) is expected


@pytest.mark.parametrize("bad", ["31/03/2027", "2027-3-31", "tomorrow", "2027-02-30"])
def test_bad_deadline_is_refused(bad):
    with pytest.raises(ValueError):
        mfa.parse_deadline(bad)


def test_parse_secret_file_keeps_options_and_never_the_secret():
    text = SECRET_LINE + '\n" RATE_LIMIT 3 30 1795770000 1795770010\n" WINDOW_SIZE 3\n" DISALLOW_REUSE 59859000\n" TOTP_AUTH\n12345678\n87654321\n'
    parsed = mfa.parse_secret_file(text)
    assert parsed == {"options": {"RATE_LIMIT": "3 30", "WINDOW_SIZE": "3", "DISALLOW_REUSE": "59859000", "TOTP_AUTH": ""},
                      "scratch_codes": 2, "has_secret": True}
    assert SECRET_LINE not in repr(parsed)


def test_new_secret_text_is_what_the_pam_module_reads():
    text = mfa.new_secret_text(os.urandom(20), [12345678, 5])
    lines = text.splitlines()
    assert len(lines[0]) == 32 and set(lines[0]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert lines[1:5] == ['" RATE_LIMIT 3 30', '" WINDOW_SIZE 3', '" DISALLOW_REUSE', '" TOTP_AUTH']
    assert lines[5:] == ["12345678", "00000005"]
    assert mfa.parse_secret_file(text)["options"].keys() >= {"RATE_LIMIT", "DISALLOW_REUSE"}
    with pytest.raises(ValueError):
        mfa.new_secret_text(b"short", [])


def test_enrolment_plan_never_touches_an_existing_file():
    members = [mfa.Member("alice", 1000, 1000, "/home/alice", "ok"),
               mfa.Member("bob", 1001, 1001, "/home/bob", "absent"),
               mfa.Member("eve", 1002, 1002, "/home/eve", "unusable", "not a regular file"),
               mfa.Member("gone", 1003, 1003, "/nonexistent", "no_home")]
    assert mfa.enrolment_plan(members, True) == ["bob"]
    assert mfa.enrolment_plan(members, False) == []


@pytest.mark.parametrize("regular,owner,mode,state", [
    (True, 1000, 0o100400, "ok"), (True, 1000, 0o100600, "ok"),
    (True, 1000, 0o100640, "unusable"), (True, 0, 0o100400, "unusable"), (False, 1000, 0o120777, "unusable"),
])
def test_secret_state_follows_pam_google_authenticator(regular, owner, mode, state):
    assert mfa.secret_state(regular, owner, mode, 1000)[0] == state


def test_members_of_counts_primary_and_supplementary_members():
    groups = {"mfa-users": (1500, ["alice"]), "ops": (1501, [])}
    passwd = [("alice", 1000, 1000, "/home/alice"), ("olga", 1004, 1501, "/home/olga"), ("bob", 1001, 1001, "/home/bob")]
    found, missing = mfa.members_of(["mfa-users", "ops", "nosuch"], groups, passwd)
    assert sorted(found) == ["alice", "olga"] and missing == ["nosuch"]


def test_dropin_puts_exemptions_before_the_group_block():
    exemptions = mfa.normalise_exemptions([{"user": "yoroi", "methods": "publickey", "from": ["127.0.0.1", "10.0.0.0/8"]}])
    text = mfa.render_dropin(["mfa-users", "ops"], "password", exemptions)
    assert text.index("Match User yoroi Address 127.0.0.1,10.0.0.0/8") < text.index("Match Group mfa-users,ops")
    assert "    AuthenticationMethods publickey\n" in text
    assert text.rstrip().endswith("AuthenticationMethods keyboard-interactive")
    # nothing global: KbdInteractiveAuthentication only inside Match, so non-members keep the site's setting
    before_first_match = text.split("Match", 1)[0]
    assert all(line.startswith("#") or not line.strip() for line in before_first_match.splitlines())
    assert "publickey,keyboard-interactive" in mfa.render_dropin(["g"], "publickey", [])


@pytest.mark.parametrize("item", [
    {"user": "yoroi", "methods": "hostbased"}, {"user": "yoroi", "from": ["not-an-address"]}])
def test_bad_exemptions_are_refused(item):
    with pytest.raises(ValueError):
        mfa.normalise_exemptions([item])


def test_access_file_lists_exemptions_then_denies_everyone():
    text = mfa.render_access([{"user": "yoroi", "methods": "publickey", "from": ["10.0.0.0/8"]},
                              {"user": "breakglass", "methods": "password", "from": []}])
    assert text.splitlines()[1:] == ["+:yoroi:10.0.0.0/8", "+:breakglass:ALL", "-:ALL:ALL"]


@pytest.mark.parametrize("mode,position,nullok", [("password", "after", True), ("publickey", "before", False)])
def test_pam_block_is_placed_once_and_found_again(mode, position, nullok):
    block = mfa.sshd_block(["mfa-users"], mode, nullok)
    once = mfa.place_block(DEBIAN_SSHD_PAM, block, position)
    twice = mfa.place_block(once, block, position)
    assert once == twice
    lines = once.splitlines()
    include = lines.index("@include common-auth")
    begin = lines.index(mfa.BEGIN)
    assert (begin == include + 1) if position == "after" else (lines.index(mfa.END) == include - 1)
    assert "pam_succeed_if.so quiet user notingroup mfa-users" in once
    assert ("nullok" in once) is nullok
    assert mfa.remove_block(once) == DEBIAN_SSHD_PAM


def test_pam_block_skips_non_members_of_every_group():
    first = mfa.sshd_block(["a", "b"], "password", False)[0]
    assert first.endswith("user notingroup a user notingroup b")
    assert first.startswith("auth [success=2 default=ignore]")


def test_sudo_block_skips_the_automation_account():
    lines = mfa.sudo_block(["mfa-users"], ["yoroi"], False)
    assert lines[0].startswith("auth [success=2") and lines[1].endswith("user in yoroi")
    assert lines[2] == "auth required pam_google_authenticator.so"


def test_a_stack_without_common_auth_is_not_guessed():
    assert mfa.place_block("auth required pam_unix.so\n", ["x"], "after") is None


def test_pam_modules_named():
    text = mfa.place_block(DEBIAN_SSHD_PAM, mfa.sshd_block(["g"], "password", True), "after")
    modules, includes = mfa.pam_modules_named(text)
    assert {"pam_google_authenticator.so", "pam_succeed_if.so", "pam_access.so", "pam_nologin.so"} <= modules
    assert "common-auth" in includes


def _eff(**values):
    base = {"usepam": "yes", "kbdinteractiveauthentication": "yes", "pubkeyauthentication": "yes",
            "passwordauthentication": "yes", "authenticationmethods": "any"}
    base.update(values)
    return base


def test_requires_totp():
    assert mfa.requires_totp(_eff(authenticationmethods="keyboard-interactive"))[0]
    assert mfa.requires_totp(_eff(authenticationmethods="publickey,keyboard-interactive"))[0]
    assert not mfa.requires_totp(_eff())[0]
    assert not mfa.requires_totp(_eff(authenticationmethods="publickey,keyboard-interactive password"))[0]
    assert not mfa.requires_totp(_eff(authenticationmethods="keyboard-interactive", usepam="no"))[0]


def test_kbdint_for_a_break_glass_member():
    # unenrolled member after the deadline: no way through keyboard-interactive
    assert not mfa.kbdint_ok(True, False, "password", False, False, True)
    assert mfa.kbdint_ok(True, False, "password", False, True, True)  # grace period
    assert mfa.kbdint_ok(True, True, "password", False, False, True)  # exempt here
    assert mfa.kbdint_ok(True, False, "publickey", True, False, False)  # code alone ends the stack


def test_probe_addresses():
    assert mfa.probe_addresses([]) == ["127.0.0.1"]
    assert mfa.probe_addresses(["10.0.0.0/8", "127.0.0.1"], "10.89.1.1") == ["10.89.1.1", "10.0.0.0", "127.0.0.1"]


def test_grace_and_enforced_findings_for_an_unenrolled_member():
    members = [mfa.Member("carol", 1002, 1002, "/home/carol", "absent")]
    deadline = datetime.date(2027, 3, 31)
    grace = mfa.enrolment_findings(members, set(), deadline, datetime.date(2027, 3, 1), True, False, False)
    assert grace[0]["status"] == "fail" and grace[0]["actual"] == "not enrolled; grace until 2027-03-31"
    late = mfa.enrolment_findings(members, set(), deadline, datetime.date(2027, 4, 1), False, False, False)
    assert "MFA required since 2027-03-31" in late[0]["actual"]


def test_mfa003_reports_without_rewriting():
    parsed = mfa.parse_secret_file(SECRET_LINE + '\n" TOTP_AUTH\n')
    members = [mfa.Member("dan", 1, 1, "/h", "ok", "mode 0400", parsed)]
    found = mfa.enrolment_findings(members, set(), None, datetime.date(2027, 1, 1), False, False, True)
    mfa003 = [f for f in found if f["control"] == "MFA-003"][0]
    assert mfa003["status"] == "fail" and mfa003["actual"] == "missing: DISALLOW_REUSE, RATE_LIMIT"
    assert SECRET_LINE not in repr(found)


def test_every_exemption_is_reported_as_skipped():
    found = mfa.exemption_findings([{"user": "yoroi", "methods": "publickey", "from": ["10.0.0.0/8"]}], "yoroi", [], {})
    assert found[0]["status"] == "skipped" and found[0]["subject"] == "yoroi"
    assert "automation account" in found[0]["evidence"]


# --- enrolment hand-off: names that become paths, pending enrolments -----------------------


@pytest.mark.parametrize("user", ["../../../x", "..", ".", "a/b", "/etc/x", "al ice", "alice\n", "", "-rf",
                                  ".hidden", "a\x00b", "x" * 65, "al*ce", "al:ice"])
def test_a_host_supplied_user_name_never_becomes_a_path(tmp_path, user):
    with pytest.raises(ValueError) as refused:
        mfa.otpauth_path(str(tmp_path), "web1", user)
    assert "user name" in str(refused.value)


@pytest.mark.parametrize("host", ["../x", "..", "a/b", "", "web 1", "web1\n", ".web"])
def test_an_inventory_hostname_never_becomes_a_path(tmp_path, host):
    with pytest.raises(ValueError) as refused:
        mfa.otpauth_path(str(tmp_path), host, "alice")
    assert "host name" in str(refused.value)


@pytest.mark.parametrize("host,user", [("web1", "alice"), ("web1.branch.example", "svc_backup$"),
                                       ("10.0.0.5", "ann.lee"), ("host:2222", "j-doe@corp")])
def test_good_names_stay_inside_the_directory(tmp_path, host, user):
    path = mfa.otpauth_path(str(tmp_path), host, user)
    assert path == str(tmp_path / host / (user + ".otpauth"))


def test_a_host_directory_that_leads_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "otp"
    root.mkdir()
    (root / "web1").symlink_to(outside)
    with pytest.raises(ValueError) as refused:
        mfa.otpauth_path(str(root), "web1", "alice")
    assert "outside" in str(refused.value)


def test_otpauth_uri_names_user_host_and_issuer():
    uri = mfa.otpauth_uri("Yoroi HQ", "alice", "web1", SECRET_LINE)
    assert uri == ("otpauth://totp/Yoroi%20HQ:alice%40web1?secret=" + SECRET_LINE
                   + "&issuer=Yoroi%20HQ&algorithm=SHA1&digits=6&period=30")
    with pytest.raises(ValueError):
        mfa.otpauth_uri("Yoroi", "alice", "web1", "root:$y$j9T$hash:19000:0:99999:7:::")


def test_secret_digest_hashes_the_secret_line_only():
    text = mfa.new_secret_text(b"\x01" * 20, [1, 2])
    digest = mfa.secret_digest(text)
    assert len(digest) == 64 and text.splitlines()[0] not in digest
    # a login rewrites the option lines; the enrolment stays the same
    assert mfa.secret_digest(text.replace('" DISALLOW_REUSE', '" DISALLOW_REUSE 59859000')) == digest
    assert mfa.secret_digest(mfa.new_secret_text(b"\x02" * 20, [1, 2])) != digest


def _member(name, state, digest=None):
    return mfa.Member(name, 1000, 1000, "/home/" + name, state, "mode 0400", {"options": {}}, digest)


def test_an_unconfirmed_enrolment_is_pending_and_enrolled_again():
    members = [_member("alice", "ok", "d-alice"), _member("bob", "ok", "d-bob-own"), _member("carol", "absent"),
               _member("dan", "ok", "d-dan")]
    stale = mfa.mark_pending(members, {"alice": "d-alice", "bob": "d-bob-created", "carol": "d-carol"})
    by_name = dict((m.name, m) for m in members)
    assert by_name["alice"].state == "pending"
    assert by_name["bob"].state == "ok"  # the user replaced it with their own: theirs, kept
    assert by_name["dan"].state == "ok"
    assert stale == ["bob"]
    assert mfa.enrolment_plan(members, True) == ["alice", "carol"]
    assert mfa.enrolment_plan(members, False) == []


def test_pending_counts_as_not_enrolled():
    members = [_member("alice", "pending", "d")]
    audit = mfa.enrolment_findings(members, {"alice"}, None, datetime.date(2027, 1, 1), False, True, True)
    assert [(f["control"], f["status"]) for f in audit] == [("MFA-002", "fail")]
    assert "pending" in audit[0]["actual"] and "replace" in audit[0]["evidence"]
    off = mfa.enrolment_findings(members, set(), None, datetime.date(2027, 1, 1), False, False, False)
    assert [(f["control"], f["status"]) for f in off] == [("MFA-002", "fail")]
    assert "pending" in off[0]["actual"] and "yoroi_mfa_enroll" in off[0]["evidence"]


@pytest.mark.parametrize("owner,uid,problem", [(1000, 1000, None), (0, 1000, None), (1001, 1000, "owned by uid 1001")])
def test_home_owner_must_be_the_user_or_root(owner, uid, problem):
    found = mfa.home_problem(True, owner, uid)
    assert (found is None) if problem is None else (problem in found)
    assert "not a directory" in mfa.home_problem(False, 0, uid)
