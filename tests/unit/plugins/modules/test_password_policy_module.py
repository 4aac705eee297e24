"""The password_policy module on a tmp tree, with the host's real pam-auth-update.

pam-auth-update runs for real with ``--root`` against the tmp tree (staged and "live");
only the live call's root and the login proof are redirected, so nothing on the host is
touched. Skipped where pam-auth-update or its templates are missing (not Debian).
"""

import os
import shutil

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import password_policy as mod

PAM_AUTH_UPDATE = shutil.which("pam-auth-update") or "/usr/sbin/pam-auth-update"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(PAM_AUTH_UPDATE) and os.path.exists("/usr/share/pam/common-auth")
         and os.path.exists("/usr/share/pam-configs/unix")),
    reason="needs Debian's pam-auth-update")

PWQUALITY = mod.pp.PWQUALITY_PROFILE
COMMON_SKELETON = """#
# /etc/pam.d/common-TYPE - a hand-written comment that must survive
#
# here are the per-package modules (the "Primary" block)
# here's the fallback if no module succeeds
TYPE\trequisite\t\t\tpam_deny.so
# prime the stack with a positive return value if there isn't one already;
TYPE\trequired\t\t\tpam_permit.so
# and here are more per-package modules (the "Additional" block)
# end of pam-auth-update config
"""
LOGIN_DEFS = "# aging\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\nUID_MIN\t1000\nUID_MAX\t60000\nENCRYPT_METHOD SHA512\n"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for sub in ("etc/pam.d", "etc/security/pwquality.conf.d", "var/lib/pam", "usr/share/pam-configs", "lib/security", "debconf"):
        (root / sub).mkdir(parents=True)
    for pam_type in mod.pp.COMMON_TYPES:
        # the skeleton of Debian's files; pam-auth-update --force below fills the blocks
        (root / "etc/pam.d" / ("common-" + pam_type)).write_text(COMMON_SKELETON.replace("TYPE", pam_type.split("-", maxsplit=1)[0]))
    shutil.copy("/usr/share/pam-configs/unix", root / "usr/share/pam-configs/unix")
    (root / "usr/share/pam-configs/pwquality").write_text(PWQUALITY)
    (root / "etc/security/pwquality.conf").write_text("# minlen = 8\n")
    (root / "etc/security/faillock.conf").write_text("# deny = 3\n# unlock_time = 600\n")
    (root / "etc/login.defs").write_text(LOGIN_DEFS)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/a:/bin/bash\nops:x:1001:1001::/home/o:/bin/bash\n")
    (root / "etc/shadow").write_text("root:$y$r:20000:0:99999:7:::\nalice:$y$a:20000:0:99999:7:::\nops:$y$o:20000:0:99999:7:::\n")
    for name in ("pam_unix.so", "pam_deny.so", "pam_permit.so", "pam_faillock.so", "pam_pwhistory.so", "pam_pwquality.so",
                 "pam_succeed_if.so"):
        (root / "lib/security" / name).write_bytes(b"\x7fELF")
    env = dict(DEBIAN_FRONTEND="noninteractive", LC_ALL="C", DEBCONF_SYSTEMRC=str(root / "debconf/rc"))
    (root / "debconf/rc").write_text(
        "Config: c\nTemplates: t\n\nName: c\nDriver: File\nFilename: %s/debconf/config.dat\n\n"
        "Name: t\nDriver: File\nFilename: %s/debconf/templates.dat\n" % (root, root))
    import subprocess
    subprocess.run([PAM_AUTH_UPDATE, "--root", str(root), "--package", "--force"], env=dict(os.environ, **env), check=True,
                   capture_output=True)
    patch = dict(PWQUALITY_CONF="etc/security/pwquality.conf", PWQUALITY_DIR="etc/security/pwquality.conf.d",
                 FAILLOCK_CONF="etc/security/faillock.conf", PWHISTORY_CONF="etc/security/pwhistory.conf",
                 LOGIN_DEFS="etc/login.defs", PASSWD="etc/passwd", SHADOW="etc/shadow", PAM_D="etc/pam.d",
                 PAM_CONFIGS="usr/share/pam-configs", PAM_STATE="var/lib/pam", DEBCONF_DIR="debconf")
    for name, rel in patch.items():
        monkeypatch.setattr(mod, name, str(root / rel))
    monkeypatch.setattr(mod, "PAM_MODULE_DIRS", (str(root / "lib/security"),))

    real_run = mod.run_pam_auth_update
    calls = []

    def live_in_tree(module, root_dir=None, force=False, env=None):
        if root_dir is None:  # the live run: into the tree, with the tree's debconf
            calls.append(force)
            return real_run(module, str(root), force, {"DEBCONF_SYSTEMRC": str(root / "debconf/rc")})
        return real_run(module, root_dir, force, env)

    monkeypatch.setattr(mod, "run_pam_auth_update", live_in_tree)
    monkeypatch.setattr(mod, "prove_login", lambda module: None)
    monkeypatch.setattr(mod.os, "access", lambda path, how: True)
    return root, calls


def snapshot(root):
    files = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            if "/debconf/" in path:
                continue
            with open(path, "rb") as handle:
                files[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return files


ARGS = dict(automation_account="ops", guard_timeout=0)  # no systemd here; the lab proves the guard


def by_control(result):
    return dict((f["control"], f["status"]) for f in result["findings"] if "subject" not in f)


def test_check_mode_plans_everything_and_writes_nothing(tree, run_module):
    root, calls = tree
    before = snapshot(root)
    result, failed = run_module(mod, ARGS, check_mode=True, diff=True)
    assert not failed, result
    assert result["changed"] is True
    assert snapshot(root) == before
    assert calls == []
    assert set(by_control(result).values()) == {"fail", "pass"}
    assert by_control(result)["PWD-007"] == "fail"
    headers = [d["before_header"] for d in result["diff"]]
    assert str(root / "etc/pam.d/common-auth") in headers and str(root / "etc/login.defs") in headers
    auth = [d for d in result["diff"] if d["before_header"].endswith("common-auth")][0]["after"]
    assert "pam_faillock.so preauth" in auth and "pam_faillock.so authfail" in auth


def test_apply_then_second_run_changes_nothing(tree, run_module):
    root, calls = tree
    result, failed = run_module(mod, ARGS, diff=True)
    assert not failed, result
    assert result["changed"] and result["pam_auth_update"] == "applied"
    assert set(by_control(result).values()) <= {"fixed", "pass"}
    aging = dict((f["subject"], f["status"]) for f in result["findings"] if f.get("subject"))
    assert aging == {"root": "skipped", "ops": "skipped", "alice": "error"}  # chage cannot touch the tmp tree's alice
    password = (root / "etc/pam.d/common-password").read_text()
    assert password.index("pam_pwquality.so") < password.index("pam_pwhistory.so") < password.index("pam_unix.so")
    assert "ENCRYPT_METHOD YESCRYPT" in (root / "etc/login.defs").read_text()

    # make alice compliant by hand so the second run has nothing to do
    (root / "etc/shadow").write_text((root / "etc/shadow").read_text().replace("alice:$y$a:20000:0:99999:7", "alice:$y$a:20000:1:365:7"))
    before = snapshot(root)
    again, failed = run_module(mod, ARGS, diff=True)
    assert not failed, again
    assert again["changed"] is False and again["pam_auth_update"] == "unchanged"
    assert "diff" not in again
    assert set(by_control(again).values()) == {"pass"}
    assert snapshot(root) == before  # no file rewritten, every mtime kept
    assert len(calls) == 1


def test_hand_edited_common_auth_is_backed_up_and_forced(tree, run_module):
    root, calls = tree
    auth = root / "etc/pam.d/common-auth"
    edited = auth.read_text().replace("pam_unix.so nullok\n", "pam_unix.so nullok\nauth\toptional\tpam_echo.so hand\n")
    auth.write_text(edited)
    result, failed = run_module(mod, ARGS, diff=True)
    assert not failed, result
    assert result["pam_auth_update"] == "applied-forced" and calls == [True]
    backup = [b for b in result["backups"] if os.path.basename(b).startswith("common-auth.")]
    assert backup and open(backup[0]).read() == edited
    diff = [d for d in result["diff"] if d["before_header"] == str(auth)][0]
    assert "pam_echo.so hand" in diff["before"] and "pam_echo.so" not in diff["after"]
    assert "pam_faillock.so preauth" in diff["after"]


def test_failed_login_proof_rolls_every_file_back(tree, run_module, monkeypatch):
    root, _calls = tree
    before = dict((path, content) for path, (content, _mtime) in snapshot(root).items())
    monkeypatch.setattr(mod, "prove_login", lambda module: "PAM service sshd refused the right password")
    result, failed = run_module(mod, ARGS, diff=True)
    assert failed
    assert "rolled back" in result["msg"] and result["pam_auth_update"] == "rolled-back"
    assert set(f["status"] for f in result["findings"]) == {"error"}
    after = dict((path, content) for path, (content, _mtime) in snapshot(root).items() if not path.endswith("~"))
    assert after == before  # new files removed, changed ones restored (backups stay beside them)


def test_profile_naming_a_missing_module_is_refused_before_any_change(tree, run_module):
    root, calls = tree
    (root / "lib/security/pam_faillock.so").unlink()
    before = snapshot(root)
    result, failed = run_module(mod, ARGS)
    assert failed and "pam_faillock.so" in result["msg"]
    assert snapshot(root) == before and calls == []


@pytest.mark.parametrize("args, option", [
    (dict(minlen=7), "minlen"),
    (dict(faillock_deny=0), "faillock_deny"),
    (dict(faillock_deny=101), "faillock_deny"),
    (dict(pass_min_days=400), "pass_min_days"),
    (dict(encrypt_method="MD5"), "encrypt_method"),
])
def test_bad_value_fails_naming_the_option_before_anything_changes(tree, run_module, args, option):
    root, _calls = tree
    before = snapshot(root)
    result, failed = run_module(mod, dict(ARGS, **args))
    assert failed and option in result["msg"]
    assert snapshot(root) == before


def test_break_glass_accounts_skip_faillock_in_the_generated_stack(tree, run_module):
    """Wrong passwords must not lock the emergency account: pam_succeed_if jumps over both
    pam_faillock lines for it, in the common-auth that pam-auth-update really writes."""
    root, _calls = tree
    result, failed = run_module(mod, dict(ARGS, break_glass_accounts=["breakglass", "ops2"]), diff=True)
    assert not failed, result
    lines = [line.split() for line in (root / "etc/pam.d/common-auth").read_text().splitlines()
             if line.startswith("auth")]
    modules = [next(w for w in words if w.endswith(".so")) for words in lines]
    skip = [i for i, name in enumerate(modules) if name == "pam_succeed_if.so"]
    assert len(skip) == 2, lines
    for i in skip:
        assert lines[i][1] == "[success=1" and lines[i][-3:] == ["user", "in", "breakglass:ops2"], lines[i]
    # each exemption stands right before a faillock line, pam_unix between the two
    assert modules[skip[0] + 1] == "pam_faillock.so" and lines[skip[0] + 1][-1] == "preauth"
    assert modules[skip[1] + 1] == "pam_faillock.so" and lines[skip[1] + 1][-1] == "authfail"
    assert "pam_unix.so" in modules[skip[0] + 2:skip[1]]
    exempt = dict((f["subject"], f) for f in result["findings"] if f["control"] == "PWD-007" and f.get("subject"))
    assert set(exempt) == {"breakglass", "ops2"}
    assert all(f["status"] == "skipped" and "exempt" in f["actual"] for f in exempt.values())
    again = run_module(mod, dict(ARGS, break_glass_accounts=["breakglass", "ops2"]), check_mode=True)[0]
    assert all(f["status"] == "skipped" for f in again["findings"] if f.get("subject") in ("breakglass", "ops2"))


def test_break_glass_name_that_cannot_stand_in_a_pam_list_is_refused(tree, run_module):
    root, _calls = tree
    before = snapshot(root)
    result, failed = run_module(mod, dict(ARGS, break_glass_accounts=["ops:root"]))
    assert failed and "break_glass_accounts" in result["msg"]
    assert snapshot(root) == before
