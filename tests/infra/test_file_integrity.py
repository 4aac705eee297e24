"""File integrity (FIM-001..FIM-004) on one bookworm lab host, checked by independent means.

The host is checked unhardened first (no aide package, no database, no timer: every
check must fail there, and so must the audit), then `yoroi apply --tags file_integrity`
runs twice (the second changes nothing) and `yoroi audit --tags file_integrity` once.
Then a file under /etc is changed on purpose and one created; the scheduled check's own
unit runs (`systemctl start yoroi-aide-check.service`), and the journal and
/var/log/syslog (rsyslog) must show AIDE naming both; the audit's FIM-004 must fail
naming them; the documented re-initialization step makes it pass again. Last, the worst
days: a database replaced by a symlink, an interrupted initialization and a policy that
others can write are each reported, and an apply repairs them.

All of AIDE is userland and ran for real in the container: the package, its --init,
--update and --check runs, the systemd timer and service, journald and rsyslog. Nothing
here imports the role or the module.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.lab

POLICY = "/etc/aide/yoroi.conf"
DB_DIR = "/var/lib/yoroi/aide"
DATABASE = DB_DIR + "/aide.db"
TIMER = "yoroi-aide-check.timer"
SERVICE = "yoroi-aide-check.service"
PROBE = "/etc/yoroi-fim-probe"
CHANGED = "/etc/hosts"
CONTROLS = ["FIM-001", "FIM-002", "FIM-003", "FIM-004"]


def check_installed(host):
    out = host.run("dpkg-query -W -f '${Status}' aide")
    assert out.stdout == "install ok installed", "aide is not installed: %s" % (out.stdout + out.stderr)
    # aide alone: aide-common would bring cron, a mailer and a mail server
    assert host.run("dpkg-query -W -f '${Status}' aide-common").stdout != "install ok installed"
    policy = host.file(POLICY)
    assert policy.exists and not policy.is_symlink, "%s is missing" % POLICY
    assert (policy.user, policy.mode) == ("root", 0o600), (policy.user, oct(policy.mode))
    check = host.run("aide --config=%s --config-check", POLICY)
    assert check.rc == 0, check.stdout + check.stderr


def check_database(host):
    directory = host.file(DB_DIR)
    assert directory.exists, "%s is missing" % DB_DIR
    assert (directory.user, directory.mode) == ("root", 0o700), (directory.user, oct(directory.mode))
    database = host.file(DATABASE)
    assert database.exists and database.is_file and not database.is_symlink, "%s is missing" % DATABASE
    assert (database.user, database.group, database.mode) == ("root", "root", 0o600)
    # the database covers system binaries and /etc, and leaves out what churns
    listed = host.run("zcat %s | cut -d' ' -f1", DATABASE)
    assert listed.rc == 0, listed.stderr
    names = set(listed.stdout.splitlines())
    assert {"/usr/bin/ls", "/usr/sbin/sshd", "/etc/passwd", "/etc/ssh/sshd_config", "/boot"} <= names
    assert "/etc/adjtime" not in names and not [n for n in names if n.startswith("/var/log")]


def check_timer(host):
    active = host.run("systemctl is-active %s", TIMER).stdout.strip()
    enabled = host.run("systemctl is-enabled %s", TIMER).stdout.strip()
    assert (active, enabled) == ("active", "enabled"), "%s is %s, %s" % (TIMER, active, enabled)
    exec_start = host.check_output("systemctl show -p ExecStart --value %s", SERVICE)
    assert "--check" in exec_start and POLICY in exec_start, exec_start
    assert "report_url=syslog:" in host.file(POLICY).content_string


CHECKS = {"installed and policy": check_installed, "database": check_database, "timer": check_timer}


def run_checks(host):
    outcome = {}
    for name, check in CHECKS.items():
        try:
            check(host)
            outcome[name] = None
        except AssertionError as exc:
            outcome[name] = str(exc) or "failed"
    return outcome


def fim(document):
    return [f for f in document["findings"] if f["control"].startswith("FIM-")]


def statuses(document):
    return dict((f["control"], f["status"]) for f in fim(document))


def yoroi(yoroi_cli, lab, node, state, command, *extra):
    argv = [command, "-i", str(lab.inventory_path), "--limit", node.name, "--tags", "file_integrity", "-o", "json",
            *extra]
    if command == "apply":
        argv.insert(1, "--yes")
    res = yoroi_cli.run(*argv, state_dir=state)
    return res, yoroi_cli.json(res)


@pytest.fixture(scope="module")
def fim_lab(module_lab, apply_twice_and_audit, yoroi_cli, tmp_path_factory):
    lab, nodes = module_lab(hosts=1)
    node = nodes[0]
    before = run_checks(node.host)
    audit_before = yoroi(yoroi_cli, lab, node, tmp_path_factory.mktemp("fim-state"), "audit")
    # the audit installed nothing
    assert run_checks(node.host)["installed and policy"] is not None
    started = time.monotonic()
    runs = apply_twice_and_audit(lab, node, "file_integrity")
    return lab, node, before, audit_before, runs, run_checks(node.host), time.monotonic() - started


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_each_check_fails_on_the_unhardened_host(fim_lab, check):
    _lab, _node, before, _audit, _runs, _after, _took = fim_lab
    assert before[check] is not None, "%s passed on an unhardened host" % check


def test_the_audit_fails_every_control_on_the_unhardened_host(fim_lab):
    _lab, _node, _before, (res, doc), _runs, _after, _took = fim_lab
    assert res.returncode == 2, (res.returncode, fim(doc))
    assert statuses(doc) == dict((c, "fail") for c in CONTROLS), fim(doc)


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_each_check_passes_after_apply(fim_lab, check):
    _lab, _node, _before, _audit, _runs, after, _took = fim_lab
    assert after[check] is None, after[check]


def test_apply_fixes_every_control_then_changes_nothing_and_the_audit_agrees(fim_lab):
    _lab, _node, _before, _audit, runs, _after, took = fim_lab
    res, doc = runs["apply"]
    assert res.returncode == 0, (fim(doc), res.stderr[-2000:])
    assert statuses(doc) == {"FIM-001": "fixed", "FIM-002": "fixed", "FIM-003": "fixed", "FIM-004": "fixed"}, fim(doc)
    database = [f for f in fim(doc) if f["control"] == "FIM-002"][0]
    assert "built by aide --init in" in database["evidence"], database
    res, doc = runs["second"]
    assert res.returncode == 0 and [h["changed"] for h in doc["hosts"].values()] == [0], (doc["hosts"], fim(doc))
    assert set(statuses(doc).values()) == {"pass"}, fim(doc)
    res, audit = runs["audit"]
    assert res.returncode == 0, fim(audit)
    assert statuses(audit) == statuses(doc)
    print("apply, second apply and audit took %.1f s" % took)


def syslog_names(host, since, paths, deadline=20.0):
    """The lines of journald (`journalctl -t aide`) and rsyslog's /var/log/syslog that name
    each of ``paths``, waiting for rsyslog to write them."""
    end = time.monotonic() + deadline
    while True:
        journal = host.run("journalctl -t aide --no-pager -o cat --since %s", since).stdout
        # rsyslog writes "HOST aide: #012f >.... mc..H..   : /etc/hosts"
        syslog = host.run("grep -F ' aide: ' /var/log/syslog").stdout
        found = dict((path, ([line for line in journal.splitlines() if line.endswith(": " + path)],
                             [line for line in syslog.splitlines() if line.endswith(": " + path)])) for path in paths)
        if all(j and s for j, s in found.values()) or time.monotonic() > end:
            return found, journal
        time.sleep(0.5)


def test_a_file_changed_on_purpose_is_named_by_the_check_in_syslog_then_reinit_clears_it(
        fim_lab, yoroi_cli, tmp_path_factory):
    lab, node, _before, _audit, _runs, _after, _took = fim_lab
    host = node.host
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    host.check_output("echo '# yoroi file integrity probe' >> %s && echo probe > %s" % (CHANGED, PROBE))
    # the scheduled check's own unit, as the timer starts it
    started = host.run("systemctl start %s", SERVICE)
    assert started.rc == 0, started.stderr
    found, journal = syslog_names(host, since, [CHANGED, PROBE])
    for path, (in_journal, in_syslog) in found.items():
        assert in_journal, "the journal has no aide line naming %s:\n%s" % (path, journal[-3000:])
        assert in_syslog, "/var/log/syslog has no aide line naming %s" % path
    assert "AIDE found differences between database and filesystem!!" in journal

    state = tmp_path_factory.mktemp("fim-state")
    res, doc = yoroi(yoroi_cli, lab, node, state, "audit")
    assert res.returncode == 2, fim(doc)
    last = [f for f in fim(doc) if f["control"] == "FIM-004"][0]
    assert last["status"] == "fail", last
    assert "added %s" % PROBE in last["evidence"] and "changed %s" % CHANGED in last["evidence"], last
    assert "yoroi_file_integrity_reinit=true" in last["evidence"]

    # the documented step after a planned change
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    res, doc = yoroi(yoroi_cli, lab, node, state, "apply", "-e", "yoroi_file_integrity_reinit=true")
    assert res.returncode == 0, fim(doc)
    assert statuses(doc)["FIM-004"] == "fixed", fim(doc)
    # the update that accepted them wrote what it accepted to syslog too
    found, journal = syslog_names(host, since, [PROBE])
    assert found[PROBE][0], journal[-3000:]
    res, doc = yoroi(yoroi_cli, lab, node, state, "audit")
    assert res.returncode == 0, fim(doc)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    assert host.run("systemctl start %s", SERVICE).rc == 0
    journal = host.run("journalctl -t aide --no-pager -o cat --since %s", since).stdout
    assert "AIDE found NO differences between database and filesystem. Looks okay!!" in journal, journal[-2000:]


def audit_finding(yoroi_cli, lab, node, state, control):
    res, doc = yoroi(yoroi_cli, lab, node, state, "audit")
    return res.returncode, [f for f in fim(doc) if f["control"] == control][0]


def test_worst_days_are_reported_and_repaired(fim_lab, yoroi_cli, tmp_path_factory):
    lab, node, _before, _audit, _runs, _after, _took = fim_lab
    host = node.host
    state = tmp_path_factory.mktemp("fim-state")

    # a database replaced by a symlink to one an attacker controls
    host.check_output("cp %s /tmp/planted.db && chown nobody /tmp/planted.db && ln -sfn /tmp/planted.db %s"
                      % (DATABASE, DATABASE))
    rc, item = audit_finding(yoroi_cli, lab, node, state, "FIM-002")
    assert rc == 2 and item["status"] == "fail" and "symlink" in item["evidence"], item

    # an interrupted initialization: aide.db.new left, no aide.db
    host.check_output("rm -f %s && touch %s.new && chmod 0600 %s.new" % (DATABASE, DATABASE, DATABASE))
    rc, item = audit_finding(yoroi_cli, lab, node, state, "FIM-002")
    assert rc == 2 and item["status"] == "fail" and "interrupted" in item["evidence"], item

    # a policy that others can write is not trusted
    host.check_output("chmod 0666 %s" % POLICY)
    rc, item = audit_finding(yoroi_cli, lab, node, state, "FIM-001")
    assert rc == 2 and item["status"] == "fail" and "writable by group or others" in item["evidence"], item

    res, doc = yoroi(yoroi_cli, lab, node, state, "apply")
    assert res.returncode == 0, fim(doc)
    assert statuses(doc)["FIM-001"] == "fixed" and statuses(doc)["FIM-002"] == "fixed", fim(doc)
    assert run_checks(host) == dict((name, None) for name in CHECKS)
    assert host.file("/tmp/planted.db").user == "nobody"  # the symlink's target was not touched
