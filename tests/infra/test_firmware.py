"""Firmware through fwupd (FWU-001..FWU-003) on one bookworm lab host, checked with the
host's own `fwupdmgr` and `dpkg`.

fwupd refuses to run in a container and a container has no firmware, so the test makes the
lab host look like a machine with one updatable device - lab-only changes, kept here and
out of the role: it installs fwupd and fwupd-tests, writes a systemd drop-in that clears
`ConditionVirtualization=` and sets `TestDevices=true` in /etc/fwupd/fwupd.conf. fwupd's
test plugin then shows a fake "Integrated Webcam" at firmware 1.2.2, and the local remote
`fwupd-tests` offers 1.2.3 and 1.2.4 (.cab files on disk): a real update flow through the
daemon, with no hardware. Nothing here imports the role or the module.

What ran for real: fwupd 2.0.20 (Debian's package), its D-Bus daemon, `fwupdmgr install`
of the .cab from the local remote onto the test device. Not for real: flashing hardware,
a reboot (the test device needs none), and the LVFS (not reachable here).
The test device keeps its version in the daemon's memory: a restart of fwupd puts it back
at 1.2.2, so nothing here restarts fwupd after the apply.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.lab

WEBCAM_NAME = "Integrated Webcam"
DROPIN = "/etc/systemd/system/fwupd.service.d/lab-test-devices.conf"
VARIABLES = {"yoroi_firmware_enabled": True, "yoroi_firmware_remotes": ["fwupd-tests"]}


def fwu(document):
    return [f for f in document["findings"] if f["control"].startswith("FWU-")]


def run(yoroi_cli, lab, node, state, command, **variables):
    values = dict(VARIABLES, **variables)
    argv = [command, "-i", str(lab.inventory_path), "--limit", node.name, "--tags", "firmware", "-o", "json",
            "-e", json.dumps(values)]
    if command == "apply":
        argv.insert(1, "--yes")
    res = yoroi_cli.run(*argv, state_dir=state)
    return res, yoroi_cli.json(res)


def webcam(host) -> dict:
    """The fake webcam as the host's own `fwupdmgr get-devices --json` lists it."""
    out = host.run("fwupdmgr get-devices --json")
    assert out.rc == 0, out.stdout + out.stderr
    found = [d for d in json.loads(out.stdout)["Devices"] if d.get("Name", "").startswith(WEBCAM_NAME)]
    assert len(found) == 1, out.stdout
    return found[0]


def offered(host, device_id) -> list[str]:
    """The versions the host's own `fwupdmgr get-updates --json` offers for the device."""
    out = host.run("fwupdmgr get-updates --json")
    document = json.loads(out.stdout)
    if "Error" in document:
        return []
    return [r["Version"] for d in document["Devices"] if d["DeviceId"] == device_id for r in d.get("Releases", [])]


def enable_test_devices(host):
    """The lab-only changes: fwupd and its test suite, allowed to run in a container, with
    its test devices on."""
    out = host.run("apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q -y "
                   "--no-install-recommends install fwupd fwupd-tests")
    assert out.rc == 0, out.stdout[-2000:] + out.stderr[-2000:]
    host.check_output("mkdir -p /etc/systemd/system/fwupd.service.d")
    host.check_output("printf '[Unit]\\nConditionVirtualization=\\n' > %s", DROPIN)
    host.check_output("printf '[fwupd]\\nTestDevices=true\\n' >> /etc/fwupd/fwupd.conf")
    host.check_output("systemctl daemon-reload && systemctl restart fwupd")


@pytest.fixture(scope="module")
def lab_host(module_lab):
    lab, nodes = module_lab(1, "bookworm")
    return lab, nodes[0]


def test_the_webcam_goes_to_the_newest_version_through_yoroi_apply(lab_host, yoroi_cli, tmp_path_factory):
    lab, node = lab_host
    host = node.host
    state = tmp_path_factory.mktemp("firmware-state")

    # unhardened: no fwupd at all; the audit says so and installs nothing
    assert host.run("dpkg -s fwupd").rc != 0
    res, doc = run(yoroi_cli, lab, node, state, "audit")
    assert res.returncode == 2, fwu(doc)
    assert [(f["control"], f["status"]) for f in fwu(doc)] == [("FWU-001", "fail"), ("FWU-002", "fail"), ("FWU-003", "skipped")]
    assert fwu(doc)[0]["actual"] == "fwupd is not installed (an apply installs it)"
    print("without fwupd:", [(f["control"], f["status"], f["actual"]) for f in fwu(doc)])
    assert host.run("dpkg -s fwupd").rc != 0, "the audit installed fwupd"

    # the lab's machine with firmware: the webcam at 1.2.2, 1.2.3 and 1.2.4 offered
    enable_test_devices(host)
    device = webcam(host)
    assert device["Version"] == "1.2.2", device
    assert sorted(offered(host, device["DeviceId"])) == ["1.2.3", "1.2.4"]

    # the audit fails FWU-001 naming the webcam, 1.2.2 -> 1.2.4 and the remote; it changes nothing
    res, doc = run(yoroi_cli, lab, node, state, "audit", yoroi_firmware_policy="apply")
    assert res.returncode == 2, fwu(doc)
    first = [f for f in fwu(doc) if f["control"] == "FWU-001"]
    assert [f["status"] for f in first] == ["fail"], fwu(doc)
    assert first[0]["subject"].startswith(WEBCAM_NAME) and device["DeviceId"][:12] in first[0]["subject"], first
    assert first[0]["actual"] == "1.2.2 -> 1.2.4 available from fwupd-tests", first
    assert webcam(host)["Version"] == "1.2.2", "the audit updated the firmware"
    print("audit:", first[0]["subject"], first[0]["status"], first[0]["actual"])

    # report only: an apply leaves it and still fails
    res, doc = run(yoroi_cli, lab, node, state, "apply")
    assert res.returncode == 2, fwu(doc)
    assert webcam(host)["Version"] == "1.2.2", "the report policy updated the firmware"

    # apply by policy: the webcam goes to the newest version offered, before and after in the report
    res, doc = run(yoroi_cli, lab, node, state, "apply", yoroi_firmware_policy="apply")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    first = [f for f in fwu(doc) if f["control"] == "FWU-001"]
    assert [f["status"] for f in first] == ["fixed"], fwu(doc)
    assert first[0]["actual"] == "1.2.4, no newer firmware offered", first
    assert "updated 1.2.2 -> 1.2.4 from fwupd-tests" in first[0]["evidence"], first
    print("apply:", first[0]["status"], first[0]["actual"], "|", first[0]["evidence"])
    assert [(f["control"], f["status"]) for f in fwu(doc) if f["control"] != "FWU-001"] == [("FWU-002", "pass"), ("FWU-003", "pass")]

    # independently: fwupd itself says 1.2.4, nothing more offered, no reboot pending
    device = webcam(host)
    assert device["Version"] == "1.2.4", device
    print("fwupdmgr get-devices on the host:", device["Name"], device["Version"])
    assert offered(host, device["DeviceId"]) == []
    assert host.run("fwupdmgr check-reboot-needed --json").rc != 0  # "No reboot is necessary"
    history = json.loads(host.check_output("fwupdmgr get-history --json"))
    assert [(d["DeviceId"], [r["Version"] for r in d["Releases"]]) for d in history["Devices"]] == [(device["DeviceId"], ["1.2.4"])]

    # a second apply changes nothing, and an audit agrees
    res, doc = run(yoroi_cli, lab, node, state, "apply", yoroi_firmware_policy="apply")
    assert res.returncode == 0 and [h["changed"] for h in doc["hosts"].values()] == [0], (doc["hosts"], fwu(doc))
    assert [(f["control"], f["status"]) for f in fwu(doc)] == [("FWU-001", "pass"), ("FWU-002", "pass"), ("FWU-003", "pass")]
    res, doc = run(yoroi_cli, lab, node, state, "audit", yoroi_firmware_policy="apply")
    assert res.returncode == 0, fwu(doc)
    history_after = json.loads(host.check_output("fwupdmgr get-history --json"))
    assert history_after == history, "the second apply or the audit installed firmware"

    # a malformed input stops the run before the host is touched
    res, doc = run(yoroi_cli, lab, node, state, "apply", yoroi_firmware_policy="apply",
                   yoroi_firmware_exclude=["Integrated Webcam"])
    assert res.returncode == 1 and "yoroi_firmware_exclude" in " ".join(doc["hosts"][node.name]["errors"]), doc["hosts"]
    assert json.loads(host.check_output("fwupdmgr get-history --json")) == history
