"""Pure planning and evaluation of the password policy (no system, no mocks)."""

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _password_policy as pp

PARAMS = dict(minlen=14, minclass=3, dictcheck=True, enforce_for_root=True, retry=3, remember=24,
              faillock_deny=5, faillock_unlock_time=900, faillock_fail_interval=900,
              pass_max_days=365, pass_min_days=1, pass_warn_age=7, encrypt_method="YESCRYPT")

LOGIN_DEFS = """#
# Password aging controls:
#
#\tPASS_MAX_DAYS\tMaximum number of days a password may be used.
PASS_MAX_DAYS\t99999
PASS_MIN_DAYS\t0
PASS_WARN_AGE\t7
UID_MIN\t\t\t 1000
UID_MAX\t\t\t60000
# a hand-written note that must stay
ENCRYPT_METHOD SHA512
"""

FAILLOCK = """# Configuration for locking the user after multiple failed
# The default is 3.
# deny = 3
#
# fail_interval = 900
# unlock_time = 600
"""

HARDENED_AUTH = """# here are the per-package modules (the "Primary" block)
auth\trequisite\t\t\tpam_faillock.so preauth
auth\t[success=2 default=ignore]\tpam_unix.so nullok try_first_pass
auth\t[default=die]\t\t\tpam_faillock.so authfail
auth\trequisite\t\t\tpam_deny.so
"""
HARDENED_ACCOUNT = """account\trequired\t\t\tpam_faillock.so
account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so
"""
HARDENED_PASSWORD = """password\trequisite\t\t\tpam_pwquality.so retry=3
password\trequisite\t\t\tpam_pwhistory.so remember=24 enforce_for_root use_authtok
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt
password\trequisite\t\t\tpam_deny.so
"""


def test_login_defs_edit_keeps_comments_spacing_and_order():
    after = pp.set_values(LOGIN_DEFS, {"PASS_MAX_DAYS": 365, "PASS_MIN_DAYS": 1, "PASS_WARN_AGE": 7,
                                       "ENCRYPT_METHOD": "YESCRYPT"}, style="space")
    assert "PASS_MAX_DAYS\t365\n" in after
    assert "PASS_MIN_DAYS\t1\n" in after
    assert "ENCRYPT_METHOD YESCRYPT\n" in after
    assert "#\tPASS_MAX_DAYS\tMaximum number of days a password may be used.\n" in after
    assert "# a hand-written note that must stay\n" in after
    # nothing but the two values and the method changed
    changed = [(a, b) for a, b in zip(LOGIN_DEFS.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 3 and len(after.splitlines()) == len(LOGIN_DEFS.splitlines())


def test_missing_key_goes_after_its_commented_example():
    after = pp.set_values(FAILLOCK, {"deny": 5, "unlock_time": 900, "fail_interval": 900})
    lines = after.splitlines()
    assert lines[lines.index("# deny = 3") + 1] == "deny = 5"
    assert lines[lines.index("# unlock_time = 600") + 1] == "unlock_time = 900"
    assert pp.parse_conf(after) == {"deny": "5", "unlock_time": "900", "fail_interval": "900"}


def test_duplicate_active_key_is_commented_out_and_edit_is_idempotent():
    text = "deny = 3\nfoo = bar\ndeny = 9\n"
    after = pp.set_values(text, {"deny": 5})
    assert pp.parse_conf(after) == {"deny": "5", "foo": "bar"}
    assert "# deny = 9" in after
    assert pp.set_values(after, {"deny": 5}) == after


def test_only_present_edits_the_main_pwquality_file_without_adding():
    main = "# minlen = 8\nminlen = 8\n# dictcheck = 1\n"
    assert pp.set_values(main, {"minlen": 14, "dictcheck": 1}, only_present=True) == "# minlen = 8\nminlen = 14\n# dictcheck = 1\n"
    assert pp.set_values("# nothing\n", {"minlen": 14}, only_present=True) == "# nothing\n"


def test_bare_flag_is_written_without_value():
    assert pp.set_values("", {"enforce_for_root": True}) == "enforce_for_root\n"


def test_profiles_priorities_and_pwhistory_arguments_follow_pam_version():
    old = pp.plan_profiles(PARAMS, pwhistory_conf_supported=False)
    new = pp.plan_profiles(PARAMS, pwhistory_conf_supported=True)
    assert "Priority: 1024\nAuth-Type: Primary\nAuth:\n\trequisite\t\t\tpam_faillock.so preauth\n" in old["yoroi-faillock-notify"]
    assert "Account:\n\trequired\t\t\tpam_faillock.so\n" in old["yoroi-faillock-notify"]
    assert "Priority: 0\n" in old["yoroi-faillock"] and "pam_faillock.so authfail" in old["yoroi-faillock"]
    assert "Priority: 1023\n" in old["yoroi-pwhistory"]
    assert "pam_pwhistory.so remember=24 enforce_for_root use_authtok\n" in old["yoroi-pwhistory"]
    assert "pam_pwhistory.so use_authtok\n" in new["yoroi-pwhistory"]


def test_normalize_stack_options_fixes_hash_and_conflicting_pwquality_args_only():
    text = ("# comment pam_unix.so sha512\n"
            "password\trequisite\t\t\tpam_pwquality.so retry=3 minlen=8\n"
            "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok sha512\n")
    after = pp.normalize_stack_options(text, "YESCRYPT", pp.pwquality_settings(PARAMS))
    assert after.splitlines() == [
        "# comment pam_unix.so sha512",
        "password\trequisite\t\t\tpam_pwquality.so retry=3",
        "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok yescrypt",
    ]
    assert pp.normalize_stack_options(after, "YESCRYPT", pp.pwquality_settings(PARAMS)) == after


def _texts(**extra):
    texts = {pp.LOGIN_DEFS: LOGIN_DEFS, pp.FAILLOCK_CONF: FAILLOCK, pp.PWQUALITY_CONF: "# minlen = 8\n",
             pp.PWHISTORY_CONF: None}
    texts.update(extra)
    return texts


def test_second_plan_is_empty():
    texts = _texts()
    planned = pp.plan_files(texts, PARAMS, pwhistory_conf_supported=False)
    assert pp.changed_files(texts, planned)  # the first run changes things
    after = dict(texts)
    after.update(planned)
    assert pp.changed_files(after, pp.plan_files(after, PARAMS, False)) == []


def test_evaluate_unhardened_fails_and_hardened_passes():
    texts = _texts()
    before = pp.evaluate(texts, PARAMS, [pp.PWQUALITY_DROPIN], False)
    assert [c for c, r in sorted(before.items()) if r[0]] == ["PWD-011"]
    hardened = dict(texts)
    hardened.update(pp.plan_files(texts, PARAMS, False))
    hardened[pp.PAM_D + "/common-auth"] = HARDENED_AUTH
    hardened[pp.PAM_D + "/common-account"] = HARDENED_ACCOUNT
    hardened[pp.PAM_D + "/common-password"] = HARDENED_PASSWORD
    after = pp.evaluate(hardened, PARAMS, [pp.PWQUALITY_DROPIN], False)
    assert all(result[0] for result in after.values()), after
    findings = pp.control_findings(before, after, False, True, {})
    assert {f["status"] for f in findings} == {"fixed", "pass"}
    assert {f["status"] for f in pp.control_findings(before, after, True, True, {})} == {"fail", "pass"}


def test_main_pwquality_file_overrides_the_dropin():
    texts = _texts()
    texts.update(pp.plan_files(texts, PARAMS, False))
    texts[pp.PAM_D + "/common-password"] = HARDENED_PASSWORD
    texts[pp.PWQUALITY_CONF] = "minlen = 8\n"
    assert pp.evaluate(texts, PARAMS, [pp.PWQUALITY_DROPIN], False)["PWD-002"][0] is False
    assert pp.plan_files(texts, PARAMS, False)[pp.PWQUALITY_CONF] == "minlen = 14\n"


@pytest.mark.parametrize("pam_unix_args, method, ok", [
    ("obscure yescrypt", "ENCRYPT_METHOD YESCRYPT", True),
    ("obscure sha512", "ENCRYPT_METHOD YESCRYPT", False),
    ("obscure yescrypt", "ENCRYPT_METHOD SHA512", False),
])
def test_hashing_control_checks_login_defs_and_pam_unix(pam_unix_args, method, ok):
    texts = {pp.LOGIN_DEFS: method + "\n",
             pp.PAM_D + "/common-password": "password\t[success=1 default=ignore]\tpam_unix.so %s\n" % pam_unix_args}
    assert pp.evaluate(texts, PARAMS, [], False)["PWD-012"][0] is ok


PASSWD = ("root:x:0:0::/root:/bin/bash\n"
          "alice:x:1000:1000::/home/alice:/bin/bash\n"
          "ansible:x:1001:1001::/home/ansible:/bin/bash\n"
          "locked:x:1002:1002::/home/l:/bin/bash\n"
          "ok:x:1003:1003::/home/ok:/bin/bash\n"
          "daemon:x:1:1::/:/usr/sbin/nologin\n")
SHADOW = ("root:$y$x:20000:0:99999:7:::\n"
          "alice:$y$a:20000:0:99999:7:::\n"
          "ansible:$y$b:20000:0:99999:7:::\n"
          "locked:!:20000:0:99999:7:::\n"
          "ok:$y$c:20000:1:365:7:::\n"
          "daemon:*:20000:0:99999:7:::\n")


def test_aging_skips_protected_accounts_and_ignores_locked_ones():
    plans = pp.plan_aging(PASSWD, SHADOW, LOGIN_DEFS, PARAMS, {"root": "root", "ansible": "automation account"})
    by_name = dict((p[0], p) for p in plans)
    assert set(by_name) == {"root", "alice", "ansible", "ok"}
    assert by_name["alice"][1] == "fail" and by_name["alice"][2] == ["--mindays", "1", "--maxdays", "365", "--warndays", "7"]
    assert by_name["ansible"][1] == "skipped" and by_name["root"][1] == "skipped"
    assert by_name["ok"][1] == "pass"
    findings = pp.aging_findings(plans, PARAMS, True, {})
    skipped = [f for f in findings if f["status"] == "skipped"]
    assert {f["subject"] for f in skipped} == {"root", "ansible"}
    assert all("forced password expiry could shut this way in" in f["evidence"] for f in skipped)


KEY_PASSWD = PASSWD + "kpass:x:1004:1004::/home/kp:/bin/bash\nkonly:x:1005:1005::/home/ko:/bin/bash\nkdone:x:1006:1006::/home/kd:/bin/bash\n"
KEY_SHADOW = SHADOW + "kpass:$y$k:17897:0:99999:7:::\nkonly:!:17897:0:365:7:::\nkdone:*:17897::::::\n"


def test_aging_spares_key_holders_and_removes_expiry_from_key_only_accounts():
    """An expired password refuses key logins too (seen on bookworm: 'Password change
    required but no TTY available'), even with a locked password field."""
    plans = pp.plan_aging(KEY_PASSWD, KEY_SHADOW, LOGIN_DEFS, PARAMS, {"root": "root"}, {"kpass", "konly", "kdone", "ok"})
    by_name = dict((p[0], p) for p in plans)
    assert by_name["kpass"][1] == "skipped"  # a password, and a key: aging would lock the key out
    assert by_name["konly"][1] == "fail" and by_name["konly"][2] == ["--maxdays", "-1"]
    assert "kdone" not in by_name  # no password and no maximum age: nothing to do
    assert by_name["alice"][1] == "fail" and by_name["ok"][1] == "pass"
    findings = dict((f["subject"], f) for f in pp.aging_findings(plans, PARAMS, True, {}))
    assert "Password change required but no TTY available" in findings["kpass"]["evidence"]
    assert findings["konly"]["expected"] == pp.KEY_ONLY_EXPECTED
    assert "would run chage --maxdays -1" in findings["konly"]["evidence"]
    applied = dict((f["subject"], f) for f in pp.aging_findings(plans, PARAMS, False, {"konly": (True, "chage --maxdays -1")}))
    assert applied["konly"]["status"] == "fixed"
    # without keys the old plan stands: kpass is aged like any password account
    plain = dict((p[0], p) for p in pp.plan_aging(KEY_PASSWD, KEY_SHADOW, LOGIN_DEFS, PARAMS, {"root": "root"}))
    assert plain["kpass"][1] == "fail" and "konly" not in plain
