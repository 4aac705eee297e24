"""File permissions and banners logic (_permissions.py): table-driven, with a second run
(the planned state plans nothing) and check mode (drift is fail, nothing fixed)."""

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils import _permissions as prm

UIDS = {"root": 0, "alice": 1000, "deploy": 1001}
GIDS = {"root": 0, "shadow": 42, "alice": 1000}
NAMES = dict((v, k) for k, v in UIDS.items())
GROUPS = dict((v, k) for k, v in GIDS.items())
SHADOW = prm.Target("PRM-001", "/etc/shadow", "file", "root", ("shadow", "root"), 0o640, None)
SUDOERS_D = prm.Target("PRM-001", "/etc/sudoers.d", "directory", "root", ("root",), 0o750, None)
HOME = prm.Target("PRM-003", "/home/alice", "directory", "alice", None, 0o750, None)
KEPT = HOME._replace(keep="the home of a protected account (automation account) is reported, never changed")

# (target, Info read, chmod planned, chown planned, problems contain)
CASES = [
    # Debian's own: root:shadow 0640 passes; root:root is allowed too (stricter)
    (SHADOW, prm.Info("file", 0, 42, 0o640), None, None, []),
    (SHADOW, prm.Info("file", 0, 0, 0o600), None, None, []),
    # never loosened: 0000 stays
    (SHADOW, prm.Info("file", 0, 42, 0o000), None, None, []),
    # made stricter: only the bits the policy does not allow go
    (SHADOW, prm.Info("file", 0, 42, 0o644), 0o640, None, ["mode 0644"]),
    (SHADOW, prm.Info("file", 0, 42, 0o4755), 0o640, None, ["mode 4755"]),
    # a wrong owner and group are set (the first allowed group)
    (SHADOW, prm.Info("file", 1000, 1000, 0o640), None, (0, 42), ["owner 1000", "group 1000"]),
    (SHADOW, prm.Info("file", 0, 1000, 0o600), None, (-1, 42), ["group 1000"]),
    (SUDOERS_D, prm.Info("directory", 0, 0, 0o755), 0o750, None, ["mode 0755"]),
    (SUDOERS_D, prm.Info("directory", 0, 0, 0o700), None, None, []),
    # a symlink or another kind is reported, never changed
    (SHADOW, prm.Info("symlink", 1000, 1000, 0o777), None, None, ["symbolic link"]),
    (SUDOERS_D, prm.Info("file", 0, 0, 0o644), None, None, ["a file, not a directory"]),
    # a home: others lose their access; its owner is reported, not changed
    (HOME, prm.Info("directory", 1000, 1000, 0o755), 0o750, None, ["mode 0755"]),
    (HOME, prm.Info("directory", 1000, 1000, 0o700), None, None, []),
    # a home the account does not own is reported, never tightened (0750 root:root would shut alice out)
    (HOME, prm.Info("directory", 0, 0, 0o755), None, None, ["mode 0755", "owner 0", "not the account's own directory"]),
    (KEPT, prm.Info("directory", 1000, 1000, 0o777), None, None, ["mode 0777"]),
]


@pytest.mark.parametrize("target,info,chmod,chown,problems", CASES)
def test_evaluate_plans_only_what_makes_it_stricter(target, info, chmod, chown, problems):
    found, planned_mode, planned_owner = prm.evaluate(target, info, UIDS, GIDS)
    assert (planned_mode, planned_owner) == (chmod, chown)
    assert len(found) == len(problems) and all(p in f for p, f in zip(problems, found))
    if planned_mode is not None:
        assert planned_mode & ~info.mode == 0  # never a bit the file did not have
    # second run: the planned state plans nothing
    after = prm.planned_info(info, planned_mode, planned_owner)
    assert prm.evaluate(target, after, UIDS, GIDS)[1:] == (None, None)


@pytest.mark.parametrize("check_mode,status", [(True, "fail"), (False, "fixed")])
def test_target_findings_fold_check_mode_and_apply(check_mode, status):
    before = {"/etc/shadow": prm.Info("file", 0, 42, 0o644)}
    after = {"/etc/shadow": prm.Info("file", 0, 42, 0o640)}
    (item,) = prm.target_findings([SHADOW], before, after, UIDS, GIDS, NAMES, GROUPS, check_mode, {})
    assert item["status"] == status and item["subject"] == "/etc/shadow"
    assert item["actual"] == ("root:shadow 0644" if check_mode else "root:shadow 0640")
    # second run
    (again,) = prm.target_findings([SHADOW], after, after, UIDS, GIDS, NAMES, GROUPS, check_mode, {})
    assert again["status"] == "pass"


def test_target_findings_error_missing_symlink_and_kept():
    before = {"/etc/shadow": prm.Info("file", 0, 42, 0o644), "/home/alice": prm.Info("directory", 1000, 1000, 0o777)}
    found = prm.target_findings([SHADOW, KEPT, SUDOERS_D], before, before, UIDS, GIDS, NAMES, GROUPS, False,
                                {"/etc/shadow": "Operation not permitted"})
    assert [f["status"] for f in found] == ["error", "skipped", "skipped"]  # a protected home: an exemption
    assert "protected account" in found[1]["evidence"]
    link = {"/etc/shadow": prm.Info("symlink", 0, 0, 0o777)}
    (item,) = prm.target_findings([SHADOW], link, link, UIDS, GIDS, NAMES, GROUPS, False, {})
    assert item["status"] == "fail" and "not followed" in item["evidence"] and item["actual"] == "symlink"


def test_sensitive_targets_expand_globs():
    listing = {"/etc/ssh/ssh_host_*_key": ["/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ed25519_key"],
               "/etc/sudoers.d/*": ["/etc/sudoers.d/README"]}
    targets = prm.sensitive_targets(lambda pattern: listing.get(pattern, []))
    paths = [t.path for t in targets]
    assert "/etc/ssh/ssh_host_ed25519_key" in paths and "/etc/ssh/ssh_host_rsa_key.pub" not in paths
    assert all("*" not in p for p in paths) and "/etc/sudoers.d/README" in paths
    modes = dict((t.path, (t.kind, t.mode)) for t in targets)
    assert modes["/etc/cron.daily"] == ("directory", 0o700) and modes["/etc/crontab"] == ("file", 0o600)
    assert modes["/etc/sudoers"] == ("file", 0o440) and modes["/etc/sudoers.d/README"] == ("file", 0o440)


PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000::/home/alice:/bin/bash
deploy:x:1001:1001::/home/deploy:/bin/bash
shared:x:1002:1002::/home/alice:/bin/bash
"""


def test_home_targets_root_and_users_protected_kept():
    accounts = _hostfiles.parse_passwd(PASSWD)
    targets = prm.home_targets(accounts, 1000, {"root": "root", "deploy": "automation account"})
    assert [(t.path, t.owner, bool(t.keep)) for t in targets] == [
        ("/root", "root", True), ("/home/alice", "alice", False), ("/home/deploy", "deploy", True)]


LOGIN_DEFS = "# comment\nUMASK\t\t022\nHOME_MODE\t0700\n"


@pytest.mark.parametrize("login_defs,profile,changes", [
    (LOGIN_DEFS, None, {prm.LOGIN_DEFS: "UMASK\t\t027\n", prm.PROFILE_FILE: "umask 027\n"}),
    # stricter than the policy: kept
    ("UMASK 077\n", prm.render_profile("027"), {}),
    ("UMASK 027\n", "umask 022\n", {prm.PROFILE_FILE: "umask 027\n"}),
    # no UMASK line: added
    ("", prm.render_profile("027"), {prm.LOGIN_DEFS: "UMASK\t027\n"}),
])
def test_plan_umask_and_second_run(login_defs, profile, changes):
    files = prm.plan_umask("027", login_defs, profile)
    assert set(files) == set(changes)
    for path, text in changes.items():
        assert text in files[path][1]
    after = {prm.LOGIN_DEFS: login_defs, prm.PROFILE_FILE: profile}
    after.update((path, new) for path, (_old, new) in files.items())
    assert prm.plan_umask("027", after[prm.LOGIN_DEFS], after[prm.PROFILE_FILE]) == {}
    if files:
        assert "HOME_MODE" not in login_defs or "HOME_MODE\t0700" in after[prm.LOGIN_DEFS]
        before = {prm.LOGIN_DEFS: login_defs, prm.PROFILE_FILE: profile}
        assert "fail" in [f["status"] for f in prm.umask_findings("027", before, after, True)]
        assert set(f["status"] for f in prm.umask_findings("027", before, after, False)) <= {"fixed", "pass"}
    assert set(f["status"] for f in prm.umask_findings("027", after, after, False)) == {"pass"}


@pytest.mark.parametrize("value,ok", [("027", True), ("0077", True), ("022", False), ("007", False), ("x", False), (None, False)])
def test_umask_strict_enough(value, ok):
    assert prm.strict_enough(value, "027") is ok


SITE = "Authorized use only.\nReport incidents to: {contact}\n"


@pytest.mark.parametrize("text,problems", [
    ("Authorized use only.\nReport incidents to: desk@example.org\n", []),
    ("Debian GNU/Linux 12 \\n \\l\n\n", ["differs", "Debian, GNU/Linux"]),
    ("Welcome to \\s \\r on \\m\n", ["differs", "\\s, \\r, \\m"]),
    (None, ["missing"]),
])
def test_banner_problems(text, problems):
    wanted = prm.render_banner(SITE, "desk@example.org")
    found = prm.banner_problems(text, wanted, "desk@example.org")
    assert len(found) == len(problems) and all(p in f for p, f in zip(problems, found))


def test_banner_is_the_ssh_banners_rendering():
    from ansible_collections.yoroi.baseline.plugins.module_utils import _sshd
    assert prm.render_banner(SITE, "desk") == _sshd.render_banner(SITE, "desk")


def test_banner_findings_check_apply_second_run_and_no_contact():
    wanted = prm.render_banner(SITE, "desk")
    before = {"/etc/issue": "Debian GNU/Linux 12 \\n \\l\n", "/etc/issue.net": wanted}
    after = {"/etc/issue": wanted, "/etc/issue.net": wanted}
    paths = ["/etc/issue", "/etc/issue.net"]
    assert [f["status"] for f in prm.banner_findings(paths, wanted, "desk", before, after, True)] == ["fail", "pass"]
    assert [f["status"] for f in prm.banner_findings(paths, wanted, "desk", before, after, False)] == ["fixed", "pass"]
    assert [f["status"] for f in prm.banner_findings(paths, wanted, "desk", after, after, False)] == ["pass", "pass"]
    no_contact = prm.render_banner(SITE, "")
    found = prm.banner_findings(["/etc/issue"], no_contact, "", {"/etc/issue": no_contact}, {"/etc/issue": no_contact}, False)
    assert found[0]["status"] == "fail" and "yoroi_site_contact" in found[0]["actual"]
    leaky = prm.render_banner("Debian host, call {contact}\n", "desk")
    found = prm.banner_findings(["/etc/issue"], leaky, "desk", {"/etc/issue": leaky}, {"/etc/issue": leaky}, False)
    assert [f["status"] for f in found] == ["fail", "fail"]


def test_unowned_reported_only():
    found = prm.unowned([("/etc/a", 0, 0), ("/opt/b", 4242, 0), ("/var/c", 0, 4343)], {0}, {0})
    assert found == [("/opt/b", "no owner (uid 4242)"), ("/var/c", "no group (gid 4343)")]
    assert [f["status"] for f in prm.unowned_findings(found, 2)] == ["fail", "fail", "fail"]
    assert [(f["status"], f["actual"]) for f in prm.unowned_findings([], 0)] == [("pass", "none found")]


def test_a_home_that_is_a_shared_directory_is_reported_never_tightened():
    """An account whose home is /tmp (or /srv, or a directory it does not own) must not
    make the role chmod that directory 0750: the sticky bit and everyone's access would go."""
    from ansible_collections.yoroi.baseline.plugins.module_utils import _permissions as prm
    uids, gids = {"web": 1001}, {}
    tmp = prm.Target("PRM-003", "/tmp", "directory", "web", None, prm.HOME_MODE, None)
    problems, chmod, chown = prm.evaluate(tmp, prm.Info("directory", 0, 0, 0o1777), uids, gids)
    assert chmod is None and chown is None and any("reported, not changed" in p for p in problems)
    srv = prm.Target("PRM-003", "/srv/shared", "directory", "web", None, prm.HOME_MODE, None)
    problems, chmod, chown = prm.evaluate(srv, prm.Info("directory", 0, 0, 0o755), uids, gids)
    assert chmod is None and problems
    own = prm.Target("PRM-003", "/home/web", "directory", "web", None, prm.HOME_MODE, None)
    problems, chmod, chown = prm.evaluate(own, prm.Info("directory", 1001, 1001, 0o755), uids, gids)
    assert chmod == 0o750
