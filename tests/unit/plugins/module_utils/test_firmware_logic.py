"""The firmware logic (plugins/module_utils/_firmware.py) on fwupdmgr's JSON recorded on a
bookworm lab host with fwupd 2.0.20 (Debian's 2.0.20-1~deb12u2, the same version trixie
ships): the test devices' fake webcam at 1.2.2 with 1.2.3 and 1.2.4 offered by the local
remote fwupd-tests, the same after `fwupdmgr install` of 1.2.4, a host with no updatable
device, fwupd refused in a container, and an offline refresh."""

from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _firmware as fwu

REC = Path(__file__).resolve().parent / "recorded" / "fwupd"
WEBCAM = "08d460be0f1f9f128413f816022a6439e0078018"
WEBCAM_GUID = "b585990a-003e-5270-89d5-3705a17f9a43"
NOW = 1795835100  # a minute after the recording


def text(name):
    return (REC / name).read_text()


def state(devices="bookworm-get-devices.json", updates="bookworm-get-updates.json"):
    return fwu.parse_devices(text(devices)), fwu.parse_updates(text(updates))


def test_devices_and_updates_as_recorded():
    devices, updates = state()
    assert [(d.name, d.version, d.plugin) for d in devices] == [("EPYC", "", "cpu"), ("Integrated Webcam?", "1.2.2", "test")]
    assert [d.id for d in fwu.updatable(devices)] == [WEBCAM]
    assert fwu.updatable(devices)[0].guids == (WEBCAM_GUID,)
    assert updates == {WEBCAM: [fwu.Release("1.2.4", "fwupd-tests", ("trusted-payload", "trusted-metadata", "is-upgrade")),
                                fwu.Release("1.2.3", "fwupd-tests", ("trusted-payload", "trusted-metadata", "is-upgrade"))]}
    after = fwu.parse_devices(text("bookworm-get-devices-after.json"))
    assert [(d.version, d.state) for d in fwu.updatable(after)] == [("1.2.4", "success")]
    assert fwu.parse_updates(text("bookworm-get-updates-after.json")) == {}


def test_remotes_as_recorded():
    remotes = fwu.parse_remotes(text("bookworm-get-remotes.json"))
    assert [(r.id, r.kind, r.enabled, r.mtime is not None) for r in remotes.values()] == [
        ("fwupd-tests", "local", True, True), ("vendor-directory", "directory", True, True),
        ("lvfs-testing", "download", False, False), ("lvfs", "download", True, False)]


@pytest.mark.parametrize("name,message,code", [
    ("bookworm-get-devices-container.json", "Failed to connect to daemon", 24),
    ("trixie-get-devices-daemon-failed.json", "Failed to connect to daemon", 24),
    ("bookworm-refresh-offline.json", "network is unreachable", 21),
])
def test_fwupd_errors_are_raised_with_its_message(name, message, code):
    with pytest.raises(fwu.FwupdError) as caught:
        fwu.parse_devices(text(name))
    assert message in str(caught.value) and caught.value.code == code


def test_no_json_at_all_is_an_error():
    with pytest.raises(fwu.FwupdError, match="no JSON"):
        fwu.parse_devices("Failed to connect to daemon")


def test_nothing_to_do_is_no_update():
    assert fwu.parse_updates(text("bookworm-check-reboot-needed.json")) == {}


@pytest.mark.parametrize("unit,refused", [
    ("bookworm-systemctl-cat-fwupd.txt", True),
    ("bookworm-systemctl-cat-fwupd-lab.txt", False),  # the lab's drop-in clears the condition
    (None, False),
])
def test_a_unit_that_refuses_containers(unit, refused):
    assert fwu.refuses_containers(text(unit) if unit else "") is refused


# (policy, allowed, exclude) -> what an apply installs
PLANS = [
    ("apply", ["fwupd-tests"], [], [(WEBCAM, "1.2.4", "fwupd-tests")]),
    ("report", ["fwupd-tests"], [], []),
    ("apply", ["lvfs"], [], []),  # the offers come from a remote that is not allowed
    ("apply", ["fwupd-tests"], [WEBCAM], []),
    ("apply", ["fwupd-tests"], [WEBCAM_GUID.upper()], []),
]


@pytest.mark.parametrize("policy,allowed,exclude,expected", PLANS)
def test_plan(policy, allowed, exclude, expected):
    devices, updates = state()
    assert [(d.id, r.version, r.remote) for d, r in fwu.plan(devices, updates, allowed, exclude, policy)] == expected


def test_newest_orders_versions_not_positions():
    releases = [fwu.Release("1.2.3", "a", ()), fwu.Release("1.2.10", "a", ()), fwu.Release("1.2.4", "a", ())]
    assert fwu.newest(releases).version == "1.2.10"
    assert fwu.newest([]) is None


def statuses(findings):
    return [(f["control"], f["status"]) for f in findings]


def test_audit_fails_the_webcam_naming_current_available_and_remote():
    before = state()
    found = fwu.device_findings(before, before, ["fwupd-tests"], [], True, set(), {})
    assert statuses(found) == [("FWU-001", "fail")]
    assert found[0]["actual"] == "1.2.2 -> 1.2.4 available from fwupd-tests"
    assert found[0]["subject"] == "Integrated Webcam? (08d460be0f1f)"


def test_apply_then_a_second_run():
    before = state()
    after = state("bookworm-get-devices-after.json", "bookworm-get-updates-after.json")
    found = fwu.device_findings(before, after, ["fwupd-tests"], [], False, {WEBCAM}, {})
    assert statuses(found) == [("FWU-001", "fixed")]
    assert found[0]["actual"] == "1.2.4, no newer firmware offered"
    assert "updated 1.2.2 -> 1.2.4 from fwupd-tests" in found[0]["evidence"]
    # the second run: nothing to do, passes
    again = fwu.device_findings(after, after, ["fwupd-tests"], [], False, set(), {})
    assert statuses(again) == [("FWU-001", "pass")]
    assert fwu.plan(after[0], after[1], ["fwupd-tests"], [], "apply") == []


def test_a_failed_install_is_an_error_and_report_only_stays_a_failure():
    before = state()
    found = fwu.device_findings(before, before, ["fwupd-tests"], [], False, {WEBCAM}, {WEBCAM: "device busy"})
    assert statuses(found) == [("FWU-001", "error")] and "fwupdmgr: device busy" in found[0]["evidence"]
    report = fwu.device_findings(before, before, ["fwupd-tests"], [], False, set(), {})
    assert statuses(report) == [("FWU-001", "fail")]


def test_offers_of_other_remotes_are_named_not_counted():
    before = state()
    found = fwu.device_findings(before, before, ["lvfs"], [], True, set(), {})
    assert statuses(found) == [("FWU-001", "pass")]
    assert "not allowed: 1.2.4 from fwupd-tests, 1.2.3 from fwupd-tests" in found[0]["evidence"]


def test_an_excluded_device_is_skipped_with_its_offer():
    before = state()
    found = fwu.device_findings(before, before, ["fwupd-tests"], [WEBCAM_GUID], True, set(), {})
    assert statuses(found) == [("FWU-001", "skipped")]
    assert found[0]["actual"] == "excluded by policy; 1.2.2 -> 1.2.4 offered by fwupd-tests"


def test_metadata_freshness_per_allowed_remote():
    remotes = fwu.parse_remotes(text("bookworm-get-remotes.json"))
    found = fwu.metadata_findings(remotes, ["fwupd-tests", "lvfs", "lvfs-testing", "site"], 30, now=NOW)
    assert statuses(found) == [("FWU-002", "pass"), ("FWU-002", "fail"), ("FWU-002", "fail"), ("FWU-002", "fail")]
    assert [f["actual"] for f in found] == ["local remote, read from disk by fwupd", "metadata never downloaded",
                                            "remote lvfs-testing is disabled", "remote site is not configured in fwupd"]
    assert fwu.stale_downloads(remotes, ["fwupd-tests", "lvfs", "lvfs-testing"], 30, now=NOW) == ["lvfs"]
    assert statuses(fwu.metadata_findings(remotes, [], 30, now=NOW)) == [("FWU-002", "fail")]


def test_download_metadata_by_age():
    remote = fwu.Remote("lvfs", "download", True, NOW - 10 * fwu.DAY, "/etc/fwupd/remotes.d/lvfs.conf")
    assert statuses(fwu.metadata_findings({"lvfs": remote}, ["lvfs"], 30, now=NOW)) == [("FWU-002", "pass")]
    found = fwu.metadata_findings({"lvfs": remote}, ["lvfs"], 7, now=NOW, refreshed=(True, "network is unreachable"))
    assert statuses(found) == [("FWU-002", "fail")] and found[0]["actual"] == "metadata 10.0 days old"
    assert "refreshed in this run: network is unreachable" in found[0]["evidence"]
    assert fwu.stale_downloads({"lvfs": remote}, ["lvfs"], 30, now=NOW) == []


def test_a_pending_reboot_is_reported_per_device():
    devices = fwu.parse_devices(text("bookworm-get-devices-after.json"))
    assert statuses(fwu.reboot_findings(devices)) == [("FWU-003", "pass")] and not fwu.reboot_required(devices)
    capsule = fwu.Device("a" * 40, "System Firmware", "0.1.25", (), ("internal", "updatable", "needs-reboot"), "uefi_capsule", "needs-reboot")
    found = fwu.reboot_findings(devices + [capsule])
    assert statuses(found) == [("FWU-003", "fail")]
    assert found[0]["actual"] == "System Firmware 0.1.25: needs-reboot, update needs-reboot"
    assert fwu.reboot_required(devices + [capsule])
    activation = capsule._replace(flags=("updatable", "needs-activation"), state="success")
    assert statuses(fwu.reboot_findings([activation])) == [("FWU-003", "fail")] and not fwu.reboot_required([activation])


def test_no_updatable_device_and_no_fwupd():
    devices = fwu.parse_devices(text("bookworm-get-devices-no-test-devices.json"))
    assert fwu.updatable(devices) == []
    assert statuses(fwu.skipped_findings("no updatable device")) == [
        ("FWU-001", "skipped"), ("FWU-002", "skipped"), ("FWU-003", "skipped")]
    assert statuses(fwu.missing_findings("fwupd is not installed")) == [
        ("FWU-001", "fail"), ("FWU-002", "fail"), ("FWU-003", "skipped")]


def test_the_local_remote():
    assert fwu.allowed_remotes(["lvfs"], "/srv/firmware") == ["lvfs", "yoroi-local"]
    assert fwu.allowed_remotes(["lvfs"], "") == ["lvfs"]
    on = fwu.render_local_remote("/srv/firmware")
    assert "Enabled=true\n" in on and "MetadataURI=file:///srv/firmware\n" in on and on.startswith("# Managed by Yoroi")
    assert "Enabled=false\n" in fwu.render_local_remote("")
