"""File integrity logic (_file_integrity): the policy and units rendered, AIDE's JSON reports
and `systemctl show` as recorded on bookworm (AIDE 0.18.3) and trixie (AIDE 0.19.1) lab
hosts, and the judgement of every control - first run, second run and check mode."""

from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _file_integrity as fim

RECORDED = Path(__file__).resolve().parent / "recorded" / "aide"
NOW = fim.parse_time("2026-11-28 03:00:00 +0000")
HOUR = 3600.0
DAY = 86400.0
POLICY = fim.render_policy()
SERVICE = fim.render_service(3600)
TIMER = fim.render_timer("daily", 3600)


def recorded(name):
    return (RECORDED / name).read_text()


def root_file(mode=0o600, age=HOUR):
    return fim.Stat("file", 0, mode, NOW - age)


def hardened(**changes):
    """A host as an apply leaves it, the last run a clean check an hour ago; ``changes``
    replace any State argument."""
    values = dict(
        installed=True, policy_text=POLICY, policy_stat=root_file(age=2 * DAY), policy_dir_stat=fim.Stat("dir", 0, 0o755, 0),
        db_stat=root_file(age=DAY), new_db_stat=None, db_dir_stat=fim.Stat("dir", 0, 0o700, 0),
        service_text=SERVICE, timer_text=TIMER,
        units=fim.parse_systemctl_show(recorded("bookworm-systemctl-show-after-check.txt")),
        report_text=recorded("bookworm-clean.json").replace("2026-11-28 02:30", "2026-11-28 02:00"), now=NOW)
    values.update(changes)
    return fim.State(**values)


UNHARDENED = fim.State(installed=False, policy_text=None, policy_stat=None, policy_dir_stat=None, db_stat=None,
                       new_db_stat=None, db_dir_stat=None, service_text=None, timer_text=None,
                       units=fim.parse_systemctl_show(recorded("bookworm-systemctl-show-no-units.txt")),
                       report_text=None, now=NOW)


# --- rendering ----------------------------------------------------------------------------

def test_the_policy_covers_binaries_and_configuration_and_leaves_out_what_churns():
    lines = POLICY.splitlines()
    for path in ("/usr/bin", "/usr/sbin", "/usr/lib", "/boot", "/etc", "/bin", "/sbin"):
        assert "%s YoroiFile" % path in lines
    for path in ("/etc/mtab", "/etc/adjtime", "/var/log", "/var/cache", "/var/lib/apt/lists"):
        assert "!%s(/.*)?$" % fim.rule_regex(path) in lines
    assert "!/etc/\\.updated(/.*)?$" in lines  # '.' is a literal, not "any character"
    assert fim.SYSLOG_URL in lines and "report_url=file:/var/lib/yoroi/aide/report.json" in lines
    # report options apply to the report_url lines after them: plain to syslog, JSON to the file
    assert lines.index("report_format=plain") < lines.index(fim.SYSLOG_URL) < lines.index("report_format=json")
    assert "database_in=file:/var/lib/yoroi/aide/aide.db" in lines
    assert fim.covered_from(POLICY) == sorted(fim.COVERED)
    assert fim.render_policy() == POLICY  # deterministic: an unchanged host renders the same bytes


def test_site_paths_are_added_and_excluded():
    text = fim.render_policy(["/opt/app/bin", "/srv/www+1"], ["/etc/ssh/moduli", "/etc/cups"])
    lines = text.splitlines()
    assert "/opt/app/bin YoroiFile" in lines and "/srv/www\\+1 YoroiFile" in lines
    assert "!/etc/ssh/moduli(/.*)?$" in lines and "!/etc/cups(/.*)?$" in lines


@pytest.mark.parametrize("extra,exclude,why", [
    (["opt/app"], [], "absolute, normalized"),
    (["/opt/../etc"], [], "absolute, normalized"),
    (["/opt/app/"], [], "absolute, normalized"),
    (["/opt//app"], [], "absolute, normalized"),
    (["/opt/app\n!/etc"], [], "absolute, normalized"),
    (["/opt/a b"], [], "absolute, normalized"),
    ([], ["/var/lib/*"], "absolute, normalized"),
    ([], ["/etc/ssh.*"], "absolute, normalized"),
    ([], ["@@include /tmp/x"], "absolute, normalized"),
    ([], ["/etc"], "would exclude the covered path /etc"),
    ([], ["/usr"], "would exclude the covered path /usr/bin"),
    (["/opt/app"], ["/opt"], "would exclude the covered path /opt/app"),
])
def test_a_path_that_cannot_stand_in_the_policy_is_refused(extra, exclude, why):
    with pytest.raises(fim.PolicyError, match=".*") as caught:
        fim.render_policy(extra, exclude)
    assert why in str(caught.value)


def test_the_units_run_the_check_quietly_and_report_to_syslog():
    assert "ExecStart=/usr/bin/aide --config=/etc/aide/yoroi.conf --check" in SERVICE.splitlines()
    assert "SuccessExitStatus=1 2 3 4 5 6 7" in SERVICE and "SyslogIdentifier=aide" in SERVICE
    assert "Nice=19" in SERVICE and "IOSchedulingClass=idle" in SERVICE
    assert "OnCalendar=daily" in TIMER and "Persistent=true" in TIMER and "WantedBy=timers.target" in TIMER
    with pytest.raises(fim.PolicyError):
        fim.render_timer("daily\nExecStart=/bin/sh", 0)


# --- parsing recorded outputs ------------------------------------------------------------

@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_reports_recorded_on_both_releases(release):
    init = fim.parse_report(recorded("%s-init.json" % release))[0]
    assert init.kind == "init" and not init.differences and init.time is not None
    clean = fim.parse_report(recorded("%s-clean.json" % release))[0]
    assert clean.kind == "check" and not clean.differences and clean.paths() == []
    changed = fim.parse_report(recorded("%s-changed.json" % release))[0]
    assert changed.kind == "check" and changed.differences
    assert changed.paths() == [("added", "/etc/yoroi-fim-probe"), ("changed", "/etc"), ("changed", "/etc/hosts")]
    update = fim.parse_report(recorded("%s-update.json" % release))[0]
    assert update.kind == "update" and update.differences and ("added", "/etc/yoroi-fim-probe") in update.paths()
    assert changed.version == {"bookworm": "0.18.3", "trixie": "0.19.1"}[release]


@pytest.mark.parametrize("text,why", [
    (None, "no check has run"),
    ('{"outline": "AIDE found', "not JSON (a check may be running)"),
    ("[]", "has no outline"),
    ('{"start_time": "x"}', "has no outline"),
])
def test_a_report_that_cannot_be_read(text, why):
    report, error = fim.parse_report(text)
    assert report is None and why in error


def test_systemctl_show_recorded():
    units = fim.parse_systemctl_show(recorded("bookworm-systemctl-show-after-check.txt"))
    assert units[fim.TIMER_NAME]["UnitFileState"] == "enabled" and units[fim.TIMER_NAME]["ActiveState"] == "active"
    assert units[fim.SERVICE_NAME]["ExecMainStatus"] == "5" and units[fim.SERVICE_NAME]["Result"] == "success"
    missing = fim.parse_systemctl_show(recorded("bookworm-systemctl-show-no-units.txt"))
    assert missing[fim.TIMER_NAME]["UnitFileState"] == ""


# --- judging -----------------------------------------------------------------------------

def test_the_unhardened_host_fails_everything_in_check_mode():
    findings = [fim.policy_finding(UNHARDENED, UNHARDENED, POLICY, True, False),
                fim.database_finding(UNHARDENED, UNHARDENED, 90, True, False),
                fim.schedule_finding(UNHARDENED, UNHARDENED, SERVICE, TIMER, True, False),
                fim.check_finding(UNHARDENED, UNHARDENED, 48, 50, True, False)]
    assert [(f["control"], f["status"]) for f in findings] == [
        ("FIM-001", "fail"), ("FIM-002", "fail"), ("FIM-003", "fail"), ("FIM-004", "fail")]
    assert findings[0]["actual"] == "aide is not installed"
    assert "no check has run" in findings[3]["evidence"]


def test_first_apply_fixes_second_run_passes_and_check_mode_agrees():
    after = hardened(report_text=recorded("bookworm-init.json").replace("2026-11-28 02:30", "2026-11-28 02:59"))
    first = [fim.policy_finding(UNHARDENED, after, POLICY, False, True),
             fim.database_finding(UNHARDENED, after, 90, False, True),
             fim.schedule_finding(UNHARDENED, after, SERVICE, TIMER, False, True),
             fim.check_finding(UNHARDENED, after, 48, 50, False, True)]
    assert [f["status"] for f in first] == ["fixed"] * 4
    assert first[3]["actual"].startswith("database initialized at 2026-11-28 02:59 UTC")
    for check_mode in (False, True):
        again = [fim.policy_finding(after, after, POLICY, check_mode, False),
                 fim.database_finding(after, after, 90, check_mode, False),
                 fim.schedule_finding(after, after, SERVICE, TIMER, check_mode, False),
                 fim.check_finding(after, after, 48, 50, check_mode, False)]
        assert [f["status"] for f in again] == ["pass"] * 4, again
    assert fim.reinit_reason(after, {}, False, 90) == ""


@pytest.mark.parametrize("changes,why", [
    (dict(db_stat=fim.Stat("link", 0, 0o777, NOW)), "symlink (never followed)"),
    (dict(db_stat=fim.Stat("file", 1000, 0o600, NOW - HOUR)), "owned by uid 1000, not root"),
    (dict(db_stat=root_file(0o644)), "mode 0644 (open to group or others)"),
    (dict(db_stat=None, new_db_stat=root_file()), "aide.db.new was left by an interrupted initialization"),
    (dict(db_stat=None), "aide.db is missing"),
    (dict(db_dir_stat=fim.Stat("dir", 1000, 0o700, 0)), "/var/lib/yoroi/aide is owned by uid 1000"),
    (dict(db_dir_stat=fim.Stat("link", 0, 0o777, 0)), "/var/lib/yoroi/aide is a symlink"),
    (dict(db_stat=root_file(age=3 * DAY)), "older than the policy /etc/aide/yoroi.conf (stale)"),
    (dict(db_stat=root_file(age=100 * DAY), policy_stat=root_file(age=200 * DAY)), "100 days old, more than 90 (stale)"),
])
def test_a_database_that_is_not_trusted_or_stale_fails(changes, why):
    state = hardened(**changes)
    item = fim.database_finding(state, state, 90, True, False)
    assert item["status"] == "fail" and why in item["evidence"], item


@pytest.mark.parametrize("changes,why", [
    (dict(policy_stat=root_file(0o666)), "mode 0666 (writable by group or others)"),
    (dict(policy_stat=fim.Stat("file", 1000, 0o600, NOW)), "owned by uid 1000"),
    (dict(policy_stat=fim.Stat("link", 0, 0o777, NOW), policy_text=None), "a symlink"),
    (dict(policy_dir_stat=fim.Stat("dir", 0, 0o777, 0)), "/etc/aide is mode 0777"),
    (dict(policy_text=POLICY.replace("/etc YoroiFile\n", "")), "/etc/aide/yoroi.conf"),
])
def test_a_policy_others_can_write_or_that_differs_fails(changes, why):
    state = hardened(**changes)
    item = fim.policy_finding(state, state, POLICY, True, False)
    assert item["status"] == "fail" and why in item["evidence"], item


@pytest.mark.parametrize("changes,why", [
    (dict(timer_text=None), "yoroi-aide-check.timer missing"),
    (dict(service_text=SERVICE.replace("--check", "--version")), "yoroi-aide-check.service differs"),
    (dict(units={}), "yoroi-aide-check.timer is not loaded"),
    (dict(policy_text=POLICY.replace(fim.SYSLOG_URL + "\n", "")), "no report to syslog"),
])
def test_a_check_that_is_not_scheduled_or_not_logged_fails(changes, why):
    state = hardened(**changes)
    item = fim.schedule_finding(state, state, SERVICE, TIMER, True, False)
    assert item["status"] == "fail" and why in item["evidence"], item


def test_changes_found_by_the_last_check_fail_naming_the_paths():
    state = hardened(report_text=recorded("trixie-changed.json").replace("2026-11-28 02:30", "2026-11-28 02:50"))
    item = fim.check_finding(state, state, 48, 50, True, False)
    assert item["status"] == "fail" and item["actual"] == "changes found at 2026-11-28 02:50 UTC: 1 added, 2 changed"
    assert item["evidence"].startswith("added /etc/yoroi-fim-probe; changed /etc; changed /etc/hosts")
    assert fim.REINIT_STEP in item["evidence"]
    item = fim.check_finding(state, state, 48, 2, True, False)
    assert "changed /etc and 1 more" in item["evidence"]


@pytest.mark.parametrize("changes,status,words", [
    (dict(report_text=recorded("bookworm-clean.json")), "pass", "no change found at 2026-11-28 02:30 UTC"),
    (dict(report_text=recorded("trixie-update.json")), "pass", "database re-initialized at"),
    (dict(now=NOW + 3 * DAY), "fail", "no AIDE run since 2026-11-28 02:00 UTC"),
    (dict(units={fim.SERVICE_NAME: {"Id": fim.SERVICE_NAME, "Result": "exit-code", "ExecMainStatus": "17"}}),
     "fail", "the last scheduled check failed (exit-code, exit 17)"),
])
def test_the_last_run(changes, status, words):
    state = hardened(**changes)
    item = fim.check_finding(state, state, 48, 50, True, False)
    assert item["status"] == status and words in item["actual"], item


def test_a_re_initialization_says_what_it_accepted():
    state = hardened(report_text=recorded("trixie-update.json"))
    item = fim.check_finding(state, state, 48, 50, True, False)
    assert item["evidence"] == "the update accepted 1 added, 2 changed (each named in syslog, ident aide)"


@pytest.mark.parametrize("before,writes,reinit,reason", [
    (UNHARDENED, {}, False, "/var/lib/yoroi/aide is missing"),
    (hardened(), {}, False, ""),
    (hardened(), {}, True, "re-initialization was asked for"),
    (hardened(), {fim.POLICY: None}, False, "this run changed /etc/aide/yoroi.conf"),
    (hardened(db_stat=root_file(age=3 * DAY)), {}, False, "older than the policy"),
    (hardened(db_stat=fim.Stat("link", 0, 0o777, NOW)), {}, False, "symlink"),
    # only old: never rebuilt on its own, it would accept whatever changed meanwhile
    (hardened(db_stat=root_file(age=100 * DAY), policy_stat=root_file(age=200 * DAY)), {}, False, ""),
])
def test_when_the_database_is_rebuilt(before, writes, reinit, reason):
    got = fim.reinit_reason(before, writes, reinit, 90)
    assert (reason in got) if reason else got == ""


@pytest.mark.parametrize("mode,rc,ok", [
    ("init", 0, True), ("init", 1, False), ("init", 17, False), ("init", 124, False),
    ("update", 0, True), ("update", 5, True), ("update", 7, True), ("update", 14, False), ("update", 19, False),
])
def test_which_exit_codes_wrote_a_database(mode, rc, ok):
    assert fim.run_ok(mode, rc) is ok


def test_aide_argv():
    assert fim.aide_argv("init") == ["--config=/etc/aide/yoroi.conf", "--init"]
    with pytest.raises(ValueError):
        fim.aide_argv("check")


def test_what_syslog_carries_names_every_path_the_audit_reports():
    """The plain report AIDE sent to syslog (journalctl -t aide, bookworm lab host, the
    policy's report_level=list_entries): one line per path, as FIM-004 names them."""
    lines = recorded("bookworm-check-changed-syslog.txt").splitlines()
    assert "AIDE found differences between database and filesystem!!" in lines
    report = fim.parse_report(recorded("bookworm-changed.json"))[0]
    for _kind, path in report.paths():
        assert [line for line in lines if line.endswith(": " + path)], path
