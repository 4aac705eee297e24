"""Permissions and banners (PRM-001..PRM-004, BNR-001) on one bookworm lab host, checked
by independent means (stat, cat, a login shell's umask). Nothing here imports the role or
the module.

Drift is planted on top of the image's own (Debian's /etc/issue names the OS, UMASK 022,
homes 0755, /etc/sudoers.d 0755, the cron directories 0755): /etc/shadow world-readable, a
symlink in /etc/cron.d to a file whose mode must stay, a home that is a symlink to a
directory whose mode must stay, a file with no owner. Each check fails first, then `yoroi
apply --tags permissions` runs twice (the second changes nothing). All of it ran for real
in the container: modes, owners, files and a real `su -` login shell.
"""

from __future__ import annotations

import shlex

import pytest

pytestmark = pytest.mark.lab

CONTACT = "lab security desk, security@lab.example"  # the lab inventory's yoroi_site_contact
PROTECTED = {"/home/yoroi", "/home/breakglass"}  # the automation and break-glass accounts: reported only

PLANT = """
set -e
chmod 0644 /etc/shadow
mkdir -p /etc/cron.d /srv/keep
install -m 0666 /dev/null /srv/keep/cron-target
ln -sfn /srv/keep/cron-target /etc/cron.d/planted
mkdir -p /srv/keep/erin-target && chmod 0757 /srv/keep/erin-target
useradd -M -d /home/erin -s /bin/bash erin
ln -sfn /srv/keep/erin-target /home/erin
install -m 0644 /dev/null /opt/orphan && chown 4242:4343 /opt/orphan
chmod 0755 /home/alice
"""


def stat(node, path):
    out = node.host.run("stat -c '%%U:%%G %%a' %s", path)
    assert out.rc == 0, out.stderr
    owner, mode = out.stdout.split()
    return owner, int(mode, 8)


def no_looser(node, path, owner, mode, groups=("root",)):
    found_owner, found_mode = stat(node, path)
    user, group = found_owner.split(":")
    assert user == owner and group in groups, "%s is owned by %s" % (path, found_owner)
    assert found_mode & ~mode == 0, "%s has mode %o, looser than %o" % (path, found_mode, mode)


def check_sensitive(node):
    no_looser(node, "/etc/shadow", "root", 0o640, ("shadow", "root"))
    no_looser(node, "/etc/gshadow", "root", 0o640, ("shadow", "root"))
    no_looser(node, "/etc/passwd", "root", 0o644)
    no_looser(node, "/etc/crontab", "root", 0o600)
    for name in ("cron.d", "cron.hourly", "cron.daily", "cron.weekly", "cron.monthly"):
        no_looser(node, "/etc/" + name, "root", 0o700)
    no_looser(node, "/etc/sudoers", "root", 0o440)
    no_looser(node, "/etc/sudoers.d", "root", 0o750)


def check_umask(node):
    defs = node.host.run("awk '$1 == \"UMASK\" {print $2}' /etc/login.defs").stdout.split()
    assert defs and int(defs[-1], 8) & 0o027 == 0o027, "login.defs UMASK %s" % defs
    shell = node.host.run("su - alice -c umask")
    assert shell.rc == 0, shell.stderr
    assert int(shell.stdout.strip(), 8) & 0o027 == 0o027, "a login shell's umask is %s" % shell.stdout.strip()


def check_homes(node):
    no_looser(node, "/home/alice", "alice", 0o750, ("alice",))
    no_looser(node, "/home/carol", "carol", 0o750, ("carol",))


def check_banners(node):
    for path in ("/etc/issue", "/etc/issue.net"):
        text = node.host.file(path).content_string
        assert CONTACT in text, "%s has no contact: %r" % (path, text)
        for leak in ("Debian", "GNU/Linux", "\\s", "\\r", "\\v", "\\m"):
            assert leak not in text, "%s gives %s away: %r" % (path, leak, text)


CHECKS = {"PRM-001": check_sensitive, "PRM-002": check_umask, "PRM-003": check_homes, "BNR-001": check_banners}


def run_checks(node):
    outcome = {}
    for name, check in CHECKS.items():
        try:
            check(node)
            outcome[name] = None
        except AssertionError as exc:
            outcome[name] = str(exc)
    return outcome


@pytest.fixture(scope="module")
def perms_lab(module_lab, yoroi_cli, tmp_path_factory):
    lab, nodes = module_lab(hosts=1)
    node = nodes[0]
    planted = node.host.run("sh -c %s" % shlex.quote(PLANT))
    assert planted.rc == 0, planted.stderr
    before = run_checks(node)
    runs = {}
    for name in ("apply", "second"):
        argv = ["apply", "--yes", "-i", str(lab.inventory_path), "--limit", node.name, "--tags", "permissions", "-o", "json"]
        res = yoroi_cli.run(*argv, state_dir=tmp_path_factory.mktemp("yoroi-state"))
        runs[name] = (res, yoroi_cli.json(res))
    return node, before, runs, run_checks(node)


def findings(document):
    return dict(((f["control"], f.get("subject")), f) for f in document["findings"]
                if f["control"].startswith(("PRM-", "BNR-")))


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_each_check_fails_on_the_unhardened_host(perms_lab, check):
    _node, before, _runs, _after = perms_lab
    assert before[check] is not None, "%s passed on an unhardened host" % check


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_each_check_passes_after_apply(perms_lab, check):
    _node, _before, _runs, after = perms_lab
    assert after[check] is None, after[check]


def test_apply_fixes_and_reports_what_it_must_not_change(perms_lab):
    node, _before, runs, _after = perms_lab
    res, doc = runs["apply"]
    found = findings(doc)
    assert found[("PRM-001", "/etc/shadow")]["status"] == "fixed"
    assert found[("PRM-003", "/home/alice")]["status"] == "fixed"
    assert found[("BNR-001", "/etc/issue")]["status"] == "fixed"
    # the SSH banner's text (the ssh role's yoroi_ssh_banner_text), in both files
    issue = node.host.file("/etc/issue").content_string
    assert issue == node.host.file("/etc/issue.net").content_string
    assert issue.startswith("Authorized use only.") and "incidents" in issue
    # reported, never changed: symlinks are not followed, an orphan keeps its owner
    assert found[("PRM-001", "/etc/cron.d/planted")]["status"] == "fail"
    assert found[("PRM-003", "/home/erin")]["status"] == "fail"
    assert stat(node, "/srv/keep/cron-target")[1] == 0o666 and stat(node, "/srv/keep/erin-target")[1] == 0o757
    assert found[("PRM-004", "/opt/orphan")]["status"] == "fail"
    assert node.host.run("stat -c %u:%g /opt/orphan").stdout.strip() == "4242:4343"
    for home in PROTECTED:
        if (("PRM-003", home)) in found and found[("PRM-003", home)]["status"] != "pass":
            # an exemption, reported as every protected account is: skipped, with the reason
            assert found[("PRM-003", home)]["status"] == "skipped"
            assert "protected account" in found[("PRM-003", home)]["evidence"]
    unexpected = [f for key, f in found.items() if f["status"] not in ("pass", "fixed", "skipped")
                  and key not in {("PRM-001", "/etc/cron.d/planted"), ("PRM-003", "/home/erin"), ("PRM-004", "/opt/orphan")}
                  and key[1] not in PROTECTED]
    assert not unexpected, (unexpected, res.stderr[-2000:])


def test_second_apply_changes_nothing(perms_lab):
    _node, _before, runs, _after = perms_lab
    res, doc = runs["second"]
    assert [h["changed"] for h in doc["hosts"].values()] == [0], (doc["hosts"], res.stderr[-2000:])
    assert "fixed" not in [f["status"] for f in findings(doc).values()]
