"""The patching logic (plugins/module_utils/_patching.py) on outputs recorded on a bookworm
lab host (recorded/patching/): ``apt-get -s -o Debug::NoLocking=1 dist-upgrade`` with the
Debian mirror's security suite and the lab's own security repository (yoroi-patch-probe
1.0 -> 1.1), the same with tzdata held, the two Release files, ``needrestart -b``,
``apt-config dump`` before and after unattended-upgrades was installed, ``apt-mark showhold``.
"""

import datetime
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _patching as pat

RECORDED = Path(__file__).resolve().parent / "recorded" / "patching"
NOW = 1795834932.0 + 3 * 86400  # three days after the lab suite last changed
SUITE_TIME = 1795834932.0


def text(name):
    return (RECORDED / name).read_text()


def updates(name="bookworm-dist-upgrade.txt"):
    return pat.parse_updates(text(name))


def times():
    return pat.release_times([(pat.parse_release(text("lab-Release")), SUITE_TIME),
                              (pat.parse_release(text("debian-security-InRelease.head")), SUITE_TIME - 86400)])


def by_name(found):
    return dict((u["name"], u) for u in found)


def test_the_simulation_splits_security_from_other_updates_by_the_candidates_origin():
    found = by_name(updates())
    assert len(found) == 16
    probe = found["yoroi-patch-probe"]
    assert (probe["installed"], probe["candidate"], probe["security"]) == ("1.0", "1.1", True)
    assert probe["origins"] == ["Debian-Security:bookworm-security"]
    assert found["openssl"]["origins"] == ["Debian-Security:12/oldstable-security"]
    assert all(u["security"] for u in found.values())
    # a held package is not offered (apt-mark hold tzdata), unless holds are ignored
    assert "tzdata" not in by_name(updates("bookworm-dist-upgrade-held.txt"))
    assert by_name(updates("bookworm-dist-upgrade-ignore-hold.txt"))["tzdata"]["security"]


def test_a_held_packages_pending_security_update_still_counts_and_is_marked_held():
    found = updates("bookworm-dist-upgrade-ignore-hold.txt")
    assert "tzdata" not in [u["name"] for u in pat.to_upgrade(found, "security", {"tzdata"})]
    result = pat.security_finding(found, found, times(), 0, NOW, True, False, held={"tzdata"})
    assert result["status"] == "fail" and "tzdata 2026b-0+deb12u1->2026f-0+deb12u1 (4.0 days, held)" in result["evidence"]


@pytest.mark.parametrize("origin,key", [
    ("Debian-Security:12/oldstable-security", ("Debian-Security", "oldstable-security")),
    ("Debian-Security:bookworm-security", ("Debian-Security", "bookworm-security")),
    ("Debian:12.5/stable", ("Debian", "stable")),
])
def test_an_origin_names_its_label_and_suite(origin, key):
    assert pat.origin_key(origin) == key


def test_release_files_give_the_suites_time_and_the_signed_one_is_read_past_its_armour():
    fields = pat.parse_release(text("debian-security-InRelease.head"))
    assert fields == {"Origin": "Debian", "Label": "Debian-Security", "Suite": "oldstable-security",
                      "Codename": "bookworm-security"}
    known = times()
    assert known[("Debian-Security", "bookworm-security")] == SUITE_TIME  # the lab's, newer than Debian's
    assert known[("Debian-Security", "oldstable-security")] == SUITE_TIME - 86400
    probe = by_name(updates())["yoroi-patch-probe"]
    assert pat.pending_since(probe, known) == SUITE_TIME


@pytest.mark.parametrize("max_days,late", [(0, 16), (2, 16), (3, 15), (4, 0), (30, 0)])
def test_security_updates_pending_longer_than_the_limit_fail_pat_001_naming_them(max_days, late):
    found = updates()
    result = pat.security_finding(found, found, times(), max_days, NOW, True, False)
    assert result["status"] == ("fail" if late else "pass")
    if late:
        assert result["actual"].startswith("%d security update(s) pending longer" % late)
        assert ("yoroi-patch-probe 1.0->1.1" in result["evidence"]) == (late == 16)
    else:
        assert "yoroi-patch-probe 1.0->1.1" in result["evidence"]


def test_an_update_whose_suite_time_is_unknown_is_overdue():
    found = updates()
    result = pat.security_finding(found, found, {}, 30, NOW, True, False)
    assert result["status"] == "fail" and "pending since unknown" in result["evidence"]


def test_an_upgrade_fixes_pat_001_a_second_run_passes_and_check_mode_plans_it():
    before = updates()
    plan = pat.to_upgrade(before, "security", held=set())
    assert len(plan) == 16
    planned = set(u["name"] for u in plan)
    after = [u for u in before if u["name"] not in planned]
    check = pat.security_finding(before, after, times(), 0, NOW, True, True)
    assert check["status"] == "fail"  # check mode: the drift is reported
    fixed = pat.security_finding(before, after, times(), 0, NOW, False, True, upgraded=[pat.describe(u) for u in plan])
    assert fixed["status"] == "fixed" and "upgraded yoroi-patch-probe 1.0->1.1" in fixed["evidence"]
    again = pat.security_finding(after, after, times(), 0, NOW, False, False)
    assert again["status"] == "pass" and pat.to_upgrade(after, "security", set()) == []
    failed = pat.security_finding(before, before, times(), 0, NOW, False, True, applied_ok=False)
    assert failed["status"] == "error"


def test_held_packages_and_other_updates_stay_out_of_a_security_upgrade():
    found = updates() + [{"name": "bash", "installed": "5.2.15-2+b2", "candidate": "5.2.15-2+b7",
                          "origins": ["Debian:12.8/oldstable"], "security": False}]
    names = [u["name"] for u in pat.to_upgrade(found, "security", {"openssl", "apt"})]
    assert "bash" not in names and "openssl" not in names and "apt" not in names and "yoroi-patch-probe" in names
    assert "bash" in [u["name"] for u in pat.to_upgrade(found, "all", set())]
    assert pat.other_finding(found, "security", set())["status"] == "pass"
    other = pat.other_finding(found, "all", set())
    assert other["status"] == "fail" and other["evidence"] == "bash 5.2.15-2+b2->5.2.15-2+b7"


def test_needrestart_batch_output_names_the_services_and_fails_pat_004():
    state = pat.parse_needrestart(text("needrestart-b.txt"))
    assert state["services"] == ["rsyslog.service", "ssh.service", "systemd-journald.service",
                                 "systemd-logind.service", "systemd-manager", "yoroi-patch-repo.service"]
    assert state["kernel"] is None  # a container: needrestart does not report the kernel
    result = pat.restart_finding(state)
    assert result["status"] == "fail" and "ssh.service" in result["evidence"]
    assert pat.restart_finding({"services": [], "kernel": 1})["status"] == "pass"
    assert pat.restart_finding({"services": [], "kernel": 3})["status"] == "fail"
    assert pat.restart_finding(None)["status"] == "skipped"


def test_a_required_reboot_fails_pat_003_with_the_packages_and_since_when():
    result = pat.reboot_finding(True, pat.parse_lines("linux-image-6.1.0-28-amd64\nlibc6\n"), NOW - 86400, NOW)
    assert result["status"] == "fail" and "1.0 days" in result["actual"]
    assert result["evidence"] == "packages: linux-image-6.1.0-28-amd64, libc6"
    assert pat.reboot_finding(False, [], None, NOW)["status"] == "pass"


@pytest.mark.parametrize("recorded,installed,enabled,security", [
    ("apt-config-minbase.txt", False, False, False),
    ("apt-config-unattended.txt", True, True, True),
])
def test_unattended_upgrades_state_from_apt_config(recorded, installed, enabled, security):
    state = pat.unattended_state(installed, text(recorded))
    assert (state["installed"], state["enabled"], state["security"]) == (installed, enabled, security)
    if installed:
        assert "origin=Debian,codename=${distro_codename}-security,label=Debian-Security" in state["origins"]


@pytest.mark.parametrize("policy,recorded,installed,status", [
    ("report", "apt-config-minbase.txt", False, "pass"),
    ("report", "apt-config-unattended.txt", True, "pass"),
    ("enabled", "apt-config-minbase.txt", False, "fail"),
    ("enabled", "apt-config-unattended.txt", True, "pass"),
    ("disabled", "apt-config-unattended.txt", True, "fail"),
    ("disabled", "apt-config-minbase.txt", False, "pass"),
])
def test_pat_005_follows_the_sites_policy_and_reports_the_state_either_way(policy, recorded, installed, status):
    state = pat.unattended_state(installed, text(recorded))
    result = pat.unattended_finding(policy, state, state, True, False)
    assert result["status"] == status
    assert result["actual"].startswith("installed" if installed else "not installed")


def test_the_auto_upgrades_file_turns_unattended_upgrades_on_and_off():
    on = pat.unattended_state(True, pat.render_auto_upgrades(True))
    off = pat.unattended_state(True, pat.render_auto_upgrades(False))
    assert on["enabled"] and not off["enabled"]


def test_the_hold_list_is_applied_to_installed_packages_only():
    held = pat.parse_lines(text("showhold.txt"))
    assert held == ["tzdata"]
    check = pat.hold_finding(["tzdata", "openssl", "nginx"], ["tzdata", "openssl"], held, held + ["openssl"], True, True)
    assert check["status"] == "fail"
    applied = pat.hold_finding(["tzdata", "openssl", "nginx"], ["tzdata", "openssl"], held, held + ["openssl"], False, True)
    assert applied["status"] == "fixed" and "not installed (nothing to hold): nginx" in applied["evidence"]
    again = pat.hold_finding(["tzdata"], ["tzdata"], held, held, False, False)
    assert again["status"] == "pass"
    with pytest.raises(ValueError, match="not a Debian package name"):
        pat.check_holds(["openssl", "-y"])


@pytest.mark.parametrize("window,when,inside", [
    ("Sat 02:00-04:00", "2026-11-28 02:00", True),
    ("Sat 02:00-04:00", "2026-11-28 03:59", True),
    ("Sat 02:00-04:00", "2026-11-28 04:00", False),
    ("Sat 02:00-04:00", "2026-11-27 03:00", False),
    ("Fri 22:00-02:00", "2026-11-28 01:30", True),   # past midnight, into Saturday
    ("Fri 22:00-02:00", "2026-11-27 01:30", False),  # Friday early morning is not in it
    ("Mon-Fri 12:00-13:00", "2026-11-25 12:30", True),
    ("Sat-Mon 00:00-24:00", "2026-11-30 23:59", True),
    ("Tue 01:00-02:00; Sat 02:00-03:00", "2026-11-28 02:30", True),
])
def test_maintenance_windows(window, when, inside):
    now = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M")
    assert pat.inside_window(pat.parse_window(window), now) is inside


@pytest.mark.parametrize("window,reason", [
    ("Saturday 02:00-04:00", "is not DAYS"),
    ("Sat 02:00-02:00", "empty"),
    ("Sat 25:00-04:00", "not a time"),
    ("Sat,Foo 02:00-04:00", "unknown day"),
    ("", "no maintenance window"),
])
def test_a_malformed_window_is_refused(window, reason):
    with pytest.raises(ValueError, match=reason):
        pat.parse_window(window)


def test_the_window_is_judged_in_the_sites_time_zone_and_force_overrides_it():
    saturday_0230_utc = datetime.datetime(2026, 11, 28, 2, 30, tzinfo=datetime.timezone.utc)
    allowed, found = pat.window_decision("Sat 02:00-04:00", "UTC", False, saturday_0230_utc)
    assert allowed and found["status"] == "pass"
    # 02:30 UTC is 11:30 in Tokyo: outside its 02:00-04:00
    allowed, found = pat.window_decision("Sat 02:00-04:00", "Asia/Tokyo", False, saturday_0230_utc)
    assert not allowed and found["status"] == "skipped" and "nothing was changed" in found["evidence"]
    assert "Sat 11:30 JST" in found["actual"]
    allowed, found = pat.window_decision("Sat 02:00-04:00", "Asia/Tokyo", True, saturday_0230_utc)
    assert allowed and found["actual"].startswith("forced")
    assert pat.window_decision("", "UTC", False, saturday_0230_utc)[0] is False
    with pytest.raises(ValueError, match="unknown time zone"):
        pat.window_decision("Sat 02:00-04:00", "Mars/Olympus", False, saturday_0230_utc)


def test_health_names_what_is_wrong():
    ports = pat.parse_ports(["22", "tcp/8080", "udp/53"])
    assert ports == [("tcp", 22), ("tcp", 8080), ("udp", 53)]
    problems = pat.health({"ssh.service": "active", "cron.service": "inactive"}, ports, {("tcp", 22), ("udp", 53)})
    assert problems == ["cron.service is inactive", "nothing listens on tcp/8080"]
    assert pat.health_finding(problems, ["ssh.service", "cron.service"], ports)["status"] == "fail"
    assert pat.health({"ssh.service": "active"}, [("tcp", 22)], {("tcp", 22)}) == []
    for bad in (["0"], ["ssh"], ["tcp/70000"]):
        with pytest.raises(ValueError):
            pat.parse_ports(bad)
