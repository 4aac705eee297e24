"""Pure logic of the stale_accounts module: parsing and deciding, no system access."""

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _accounts as acc

NOW = 1_800_000_000  # a fixed "now" so every age below is exact
DAY = acc.DAY
TODAY = NOW // DAY

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
backupsvc:x:998:998::/var/lib/backupsvc:/bin/bash
yoroi:x:1000:1000::/home/yoroi:/bin/bash
alice:x:1001:1001::/home/alice:/bin/bash
bob:x:1002:1002::/home/bob:/bin/bash
carol:x:1003:1003::/home/carol:/bin/bash
dave:x:1004:1004::/home/dave:/bin/bash
toor:x:0:0::/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
SHADOW = """root:$y$j9T$x:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
sync:*:19000:0:99999:7:::
backupsvc:!:19000::::::
yoroi:!:19000:0:99999:7:::
alice:$y$j9T$a:{today}:0:99999:7:::
bob:$y$j9T$b:{today}:0:99999:7:::
carol:$y$j9T$c:17956:0:99999:7:::
dave::{today}:0:99999:7:::
toor:$y$j9T$t:{today}:0:99999:7:::
nobody:*:19000:0:99999:7:::
""".format(today=TODAY)
SHELLS = "# /etc/shells\n/bin/sh\n/bin/bash\n/usr/bin/bash\n"


def lastlog(records):
    """A sparse lastlog file with {uid: epoch}."""
    size = acc.LASTLOG_RECORD.size
    data = bytearray(size * (max(records) + 1))
    for uid, when in records.items():
        acc.LASTLOG_RECORD.pack_into(data, uid * size, when, b"pts/0", b"192.0.2.10")
    return bytes(data)


def wtmp(entries):
    """A wtmp file with (type, user, epoch) entries."""
    out = b""
    for kind, user, when in entries:
        out += acc.UTMP_RECORD.pack(kind, 0, 100, b"pts/1", b"ts/1", user.encode(), b"198.51.100.7", 0, 0, 0, when, 0, 0, 0, 0, 0, b"")
    return out


@pytest.fixture
def accounts():
    return acc.join_shadow(acc.parse_passwd(PASSWD), acc.parse_shadow(SHADOW))


def test_record_sizes_match_the_c_structs():
    assert acc.LASTLOG_RECORD.size == 292
    assert acc.UTMP_RECORD.size == 384


def test_parse_passwd_skips_junk_and_nis_lines():
    rows = acc.parse_passwd("+::::::\n# c\nbad:line\nok:x:5:5::/h:/bin/sh\nbaduid:x:z:1::/:/bin/sh\n")
    assert [(a.name, a.uid) for a in rows] == [("ok", 5)]


def test_shadow_fields_are_joined(accounts):
    by_name = {a.name: a for a in accounts}
    assert by_name["dave"].password == ""
    assert by_name["carol"].last_change == 17956
    assert by_name["root"].expire is None


def test_lastlog_reads_only_asked_uids_and_ignores_zero_times():
    data = lastlog({1001: NOW - 2 * DAY, 1002: 0})
    logins = acc.parse_lastlog(data, [1001, 1002, 5000])
    assert list(logins) == [1001]
    assert logins[1001][0] == NOW - 2 * DAY
    assert "192.0.2.10" in logins[1001][1]


def test_wtmp_keeps_newest_user_process_only():
    data = wtmp([(7, "bob", NOW - 500 * DAY), (7, "bob", NOW - 400 * DAY), (8, "bob", NOW), (2, "reboot", NOW)])
    logins = acc.parse_wtmp(data)
    assert logins["bob"][0] == NOW - 400 * DAY
    assert "reboot" not in logins


def test_merge_takes_the_newest_over_sources(accounts):
    by_uid = {1002: (NOW - 400 * DAY, "lastlog")}
    newest = acc.merge_logins(accounts, by_uid, [{"bob": (NOW - 10 * DAY, "wtmp")}])
    assert newest["bob"] == (NOW - 10 * DAY, "wtmp")


def classify(accounts, logins):
    return acc.classify(accounts, logins, NOW, 90, 1000, 60000, acc.parse_shells(SHELLS))


def test_classify_finds_each_kind_once(accounts):
    logins = {"alice": (NOW - 2 * DAY, "x"), "bob": (NOW - 400 * DAY, "x"), "yoroi": (NOW, "x")}
    found = {(kind, a.name) for kind, a, dummy in classify(accounts, logins)}
    assert found == {
        ("stale", "bob"),
        ("never_used", "carol"),
        ("empty_password", "dave"),
        ("extra_uid0", "toor"),
        ("system_shell", "backupsvc"),
    }


def test_login_exactly_at_the_limit_is_not_stale(accounts):
    logins = {"alice": (NOW - 90 * DAY, "x"), "bob": (NOW - 90 * DAY - 1, "x")}
    kinds = {(k, a.name) for k, a, dummy in classify(accounts, logins)}
    assert ("stale", "alice") not in kinds
    assert ("stale", "bob") in kinds


def test_sync_shell_and_nologin_are_not_login_shells(accounts):
    kinds = {(k, a.name) for k, a, dummy in classify(accounts, {})}
    assert ("system_shell", "sync") not in kinds
    assert ("system_shell", "daemon") not in kinds
    assert ("system_shell", "root") not in kinds


def test_plan_protects_skips_and_passes_disabled(accounts):
    by_name = {a.name: a for a in accounts}
    by_name["carol"].expire = 1  # already expired long ago
    offences = classify(accounts, {"bob": (NOW - 400 * DAY, "x")})
    decisions = acc.plan(offences, dict(acc.DEFAULT_POLICY), {"root", "toor"}, NOW)
    status = {(k, a.name): (action, s) for k, a, dummy, action, s in decisions}
    assert status[("stale", "bob")] == ("lock", acc.FAIL)
    assert status[("never_used", "carol")] == ("none", acc.PASS)
    assert status[("extra_uid0", "toor")] == ("none", acc.SKIPPED)


def test_remove_policy_does_not_accept_a_disabled_account(accounts):
    by_name = {a.name: a for a in accounts}
    by_name["carol"].expire = 1
    offences = classify(accounts, {})
    policy = dict(acc.DEFAULT_POLICY, never_used="remove")
    decisions = acc.plan(offences, policy, {"root"}, NOW)
    assert [(action, s) for k, a, dummy, action, s in decisions if a.name == "carol"] == [("remove", acc.FAIL)]


def test_commands_lock_both_password_and_account():
    account = acc.Account("bob", 1002, 1002, "/home/bob", "/bin/bash")
    assert acc.commands_for("lock", account) == [["usermod", "--lock", "--expiredate", "1", "bob"]]
    assert acc.commands_for("expire", account) == [["usermod", "--expiredate", "1", "bob"]]
    assert acc.commands_for("report", account) == []


def test_findings_cover_every_control(accounts):
    offences = classify(accounts, {"alice": (NOW, "x"), "bob": (NOW - 400 * DAY, "x"), "yoroi": (NOW, "x")})
    decisions = acc.plan(offences, dict(acc.DEFAULT_POLICY), {"root"}, NOW)
    check = acc.build_findings(decisions, {}, True, 90, 5, TODAY)
    assert {f["control"] for f in check} == set(acc.CONTROLS.values())
    assert all(f["status"] == acc.FAIL for f in check if f.get("subject"))
    outcomes = {(k, a.name): (True, "done") for k, a, *dummy in decisions}
    applied = acc.build_findings(decisions, outcomes, False, 90, 5, TODAY)
    assert all(f["status"] == acc.FIXED for f in applied if f.get("subject"))


def test_failed_action_is_an_error_not_a_fix(accounts):
    offences = classify(accounts, {"alice": (NOW, "x"), "bob": (NOW - 400 * DAY, "x"), "yoroi": (NOW, "x")})
    decisions = acc.plan(offences, dict(acc.DEFAULT_POLICY), {"root"}, NOW)
    outcomes = {(k, a.name): (False, "usermod failed") for k, a, *dummy in decisions}
    applied = acc.build_findings(decisions, outcomes, False, 90, 5, TODAY)
    assert {f["status"] for f in applied if f.get("subject")} == {acc.ERROR}


def test_clean_host_gives_one_pass_per_control():
    clean = acc.join_shadow(acc.parse_passwd("root:x:0:0::/root:/bin/bash\n"), acc.parse_shadow("root:$y$x:19000:0:99999:7:::\n"))
    result = acc.build_findings(acc.plan(classify(clean, {}), dict(acc.DEFAULT_POLICY), {"root"}, NOW), {}, True, 90, 0, TODAY)
    assert sorted(f["control"] for f in result) == sorted(acc.CONTROLS.values())
    assert {f["status"] for f in result} == {acc.PASS}


def test_read_lastlog_seeks_to_the_asked_uids_only():
    import io

    data = lastlog({1001: NOW - 2 * DAY, 1002: 0, 3000: NOW - 5 * DAY})

    class Counting(io.BytesIO):
        asked = []

        def read(self, size=-1):
            self.asked.append(size)
            return io.BytesIO.read(self, size)

    handle = Counting(data)
    logins = acc.read_lastlog(handle, [1002, 1001, 1001, 5000, -1], len(data))
    assert logins == {1001: (NOW - 2 * DAY, "lastlog: pts/0 from 192.0.2.10")}
    # one record per distinct UID inside the file, nothing for UIDs past its end
    assert handle.asked == [acc.LASTLOG_RECORD.size] * 2


# journalctl -o short-unix, recorded on lab hosts: bookworm (sshd) and trixie (sshd-session)
SSHD_LOG = """\
1795822181.868637 lab-acctb-1 sshd[148]: Accepted publickey for yoroi from 10.89.1.1 port 41260 ssh2: ED25519 SHA256:phfrgPRXW
1795822190.128880 lab-acctb-1 sshd[171]: Accepted publickey for kuser from 10.89.1.1 port 50610 ssh2: ED25519 SHA256:phfrgPRXW
1795822150.000001 lab-acctb-1 sshd[160]: Accepted password for kuser from 10.89.1.9 port 50600 ssh2
1795822192.589732 lab-acctt-1 sshd-session[189]: Accepted publickey for carol from 10.89.2.1 port 37330 ssh2: ED25519 SHA256:8Ppq
1795822193.000000 lab-acctb-1 sshd[200]: Failed password for alice from 10.89.1.1 port 50700 ssh2
1795822194.000000 lab-acctb-1 su[201]: Accepted publickey for mallory from 10.0.0.1 port 1 ssh2
"""


def test_sshd_log_gives_the_newest_accepted_login_per_user():
    logins = acc.parse_sshd_accepted(SSHD_LOG)
    assert set(logins) == {"yoroi", "kuser", "carol"}  # not a failure, not another program
    assert logins["kuser"] == (1795822190, "sshd log: Accepted publickey from 10.89.1.1")
    assert logins["carol"][0] == 1795822192


def test_authorized_keys_with_only_comments_hold_no_key():
    assert acc.has_authorized_key("# none\n\nssh-ed25519 AAAA x@y\n")
    assert not acc.has_authorized_key("# none\n   \n")
    assert not acc.has_authorized_key(None)


def test_key_holders_are_reported_not_locked_unless_the_sshd_log_covers_the_window(accounts):
    logins = {"bob": (NOW - 400 * DAY, "lastlog")}
    offences = classify(accounts, logins)
    decisions = acc.plan(offences, dict(acc.DEFAULT_POLICY), {"root"}, NOW)
    spared = acc.spare_key_holders(decisions, {"bob", "carol", "dave"}, False, 90)
    by = {(k, a.name): (action, status, detail) for k, a, detail, action, status in spared}
    assert by[("stale", "bob")][:2] == ("report", "fail")
    assert by[("never_used", "carol")][:2] == ("report", "fail")
    assert acc.KEY_HOLDER_NOTE in by[("never_used", "carol")][2]
    assert by[("empty_password", "dave")][0] == "lock"  # a key does not excuse an empty password
    findings = acc.build_findings(spared, {}, False, 90, 6, TODAY)
    carol = [f for f in findings if f.get("subject") == "carol"][0]
    assert carol["status"] == "fail" and "policy is report" not in carol["evidence"]
    # when the sshd log reaches back over the whole window, its silence is evidence
    covered = acc.spare_key_holders(decisions, {"bob", "carol"}, True, 90)
    assert covered == decisions


def test_read_wtmp_reads_in_bounded_chunks_and_keeps_the_newest():
    import io

    data = wtmp([(7, "bob", NOW - 500 * DAY), (7, "alice", NOW - 3 * DAY), (7, "bob", NOW - 400 * DAY),
                 (8, "bob", NOW), (7, "alice", NOW - 9 * DAY)])

    class Bounded(io.BytesIO):
        def read(self, size=-1):
            assert 0 < size <= 2 * acc.UTMP_RECORD.size, "wtmp read of %s bytes" % size
            return io.BytesIO.read(self, size)

    logins = acc.read_wtmp(Bounded(data + b"\0" * 10), records_per_read=2)
    assert logins == acc.parse_wtmp(data)
    assert logins["bob"][0] == NOW - 400 * DAY and logins["alice"][0] == NOW - 3 * DAY
