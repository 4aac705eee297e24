"""The appliance_advisories action (plugins/action/appliance_advisories.py): findings from a
fake inventory of appliances and advisory/KEV files, on the controller, with no connection;
and one `yoroi audit` of an inventory of appliances alone, down to the JSON report."""

import json
from pathlib import Path
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner

from ansible.errors import AnsibleActionFail

from ansible_collections.yoroi.baseline.plugins.action import appliance_advisories as action

ROOT = Path(action.COLLECTION_ROOT)
ADVISORIES = ROOT / "inventories" / "example" / "advisories.yml"
KEV = Path(__file__).resolve().parents[1] / "data" / "kev_excerpt.json"

# A fake inventory: what the role passes the action for each appliance.
APPLIANCES = {
    "hq-cam-01": {"vendor": "Tanuki Vision", "model": "TV-C220", "firmware": "2.0.1b", "role": "camera"},
    "hq-vpn-01": {"vendor": "Kitsune Networks", "model": "KN-VPN 400", "firmware": "7.0.12", "role": "vpn",
                  "product": "KitsuneOS", "address": "192.0.2.1"},
    "sg-vpn-01": {"vendor": "Kitsune Networks", "model": "KN-VPN 400", "firmware": "7.2.7", "role": "vpn",
                  "product": "KitsuneOS"},
    "fra-gw-01": {"vendor": "Hayabusa Systems", "model": "HX-Gate 20", "firmware": "9.1.3-h4", "role": "gateway"},
    "fra-prn-01": {"vendor": "Tanuki Vision", "model": "TV-P10", "firmware": "1.4", "role": "printer"},
}


class NoConnection(object):
    """Any use of the connection but a look at its shell's settings fails the test: the
    devices are never contacted."""

    _shell = mock.MagicMock(tmpdir=None)

    def __getattr__(self, name):
        raise AssertionError("the action used the connection (%s)" % name)


def run(args, check_mode=False):
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.diff = False
    plugin = action.ActionModule(task, NoConnection(), mock.MagicMock(), loader=None, templar=None,
                                 shared_loader_obj=None)
    return plugin.run(task_vars={})


def files(kev=True):
    return {"advisories": str(ADVISORIES), "kev": str(KEV) if kev else ""}


def test_the_action_needs_no_connection():
    assert action.ActionModule._requires_connection is False


def statuses(result):
    return [(f["control"], f.get("subject"), f["status"], f["severity"], f["priority"]) for f in result["findings"]]


def test_every_appliance_of_the_fake_inventory():
    results = dict((name, run(dict(values, **files()))) for name, values in APPLIANCES.items())
    assert all(result["changed"] is False and not result.get("failed") for result in results.values())
    assert statuses(results["hq-vpn-01"]) == [
        ("APL-003", None, "pass", "high", 0),
        ("APL-001", "KSA-2024-003", "fail", "critical", 0),
        ("APL-002", "KSA-2024-003", "fail", "critical", 0),
        ("APL-002", "KEV without advisory", "error", "critical", 0),
    ]
    assert "due 2099-01-31" in results["hq-vpn-01"]["findings"][2]["evidence"]
    assert results["hq-vpn-01"]["appliance"] == {"vendor": "Kitsune Networks", "model": "KN-VPN 400", "firmware": "7.0.12",
                                                 "role": "vpn", "product": "KitsuneOS", "address": "192.0.2.1",
                                                 "internet_facing": True}
    assert [s[2] for s in statuses(results["sg-vpn-01"])] == ["pass", "pass", "error"]  # CVE-2099-10009: no advisory
    assert statuses(results["fra-gw-01"])[1] == ("APL-001", "HSA-2024-0012", "fail", "critical", 0)
    assert statuses(results["hq-cam-01"]) == [
        ("APL-003", None, "pass", "medium", 1),
        ("APL-001", "TV-2024-07", "fail", "high", 1),
        ("APL-002", None, "pass", "critical", 1),
    ]
    # no advisory names the printer: skipped, never passed
    assert [s[2] for s in statuses(results["fra-prn-01"])] == ["pass", "skipped", "pass"]


def test_check_mode_gives_the_same_findings():
    args = dict(APPLIANCES["hq-vpn-01"], **files())
    assert run(args, check_mode=True)["findings"] == run(args)["findings"]


def test_a_malformed_file_fails_the_task_naming_it(tmp_path):
    bad = tmp_path / "advisories.yml"
    bad.write_text("advisories: {}\n")
    result = run(dict(APPLIANCES["hq-vpn-01"], advisories=str(bad)))
    assert result["failed"] is True and result["findings"] == []
    assert result["msg"].startswith("%s: not a mapping with a list `advisories`" % bad)


def test_an_unknown_role_is_refused():
    with pytest.raises(AnsibleActionFail, match="toaster"):
        run(dict(APPLIANCES["hq-cam-01"], role="toaster"))


# --- end to end: yoroi audit over appliances alone ----------------------------------------------


def test_yoroi_audit_reports_appliances_without_reaching_them(tmp_path):
    from yoroi.cli import main

    hosts = {}
    for name, values in APPLIANCES.items():
        host = dict(("yoroi_appliance_" + key, value) for key, value in values.items())
        # an address nothing answers at and the ssh connection: any attempt to reach the
        # device would make it unreachable
        host.update(ansible_host="192.0.2.1", ansible_connection="ssh", ansible_port=9)
        hosts[name] = host
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "appliances": {"hosts": hosts, "vars": {"yoroi_appliances_advisories": str(ADVISORIES),
                                                "yoroi_appliances_kev": str(KEV)}},
        "head_office": {"hosts": {"hq-cam-01": None, "hq-vpn-01": None}, "vars": {"yoroi_site": "head-office"}},
        "branch_singapore": {"hosts": {"sg-vpn-01": None}, "vars": {"yoroi_site": "singapore"}},
        "branch_frankfurt": {"hosts": {"fra-gw-01": None, "fra-prn-01": None}, "vars": {"yoroi_site": "frankfurt"}},
    }}}))
    out = CliRunner().invoke(main, ["audit", "-i", str(inventory), "-o", "json", "-q"],
                             env={"YOROI_STATE_DIR": str(tmp_path / "state"), "YOROI_INVENTORY": ""})
    document = json.loads(out.output)
    assert set(document["hosts"]) == set(APPLIANCES)
    assert all(host["status"] == "ok" for host in document["hosts"].values()), document["hosts"]
    # accounts are not theirs: no warning about break-glass accounts on appliances
    assert [host["warnings"] for host in document["hosts"].values()] == [[]] * len(APPLIANCES)
    assert {name: host["site"] for name, host in document["hosts"].items()} == {
        "hq-cam-01": "head-office", "hq-vpn-01": "head-office", "sg-vpn-01": "singapore",
        "fra-gw-01": "frankfurt", "fra-prn-01": "frankfurt"}
    found = document["findings"]
    # only the appliance controls ran on them: the server baseline skipped the group
    assert set(f["control"] for f in found) == {"APL-001", "APL-002", "APL-003"}
    # VPN devices and gateways first
    assert set(f["host"] for f in found[:10]) == {"hq-vpn-01", "sg-vpn-01", "fra-gw-01"}
    assert set(f["host"] for f in found[10:]) == {"hq-cam-01", "fra-prn-01"}
    fail = next(f for f in found if f["host"] == "hq-vpn-01" and f["control"] == "APL-002" and f["status"] == "fail")
    assert fail["severity"] == "critical" and fail["seed"] == "1.2" and "due 2099-01-31" in fail["evidence"]
    camera = next(f for f in found if f["host"] == "hq-cam-01" and f["control"] == "APL-001")
    assert (camera["status"], camera["severity"], camera["subject"]) == ("fail", "high", "TV-2024-07")
    assert document["exit_code"] == 1 and out.exit_code == 1  # the KEV entry no advisory covers is an error
    assert document["summary"]["fail"] == 4 and document["summary"]["error"] == 2


def test_the_documented_options_are_the_action_spec():
    import ast

    tree = ast.parse((ROOT / "plugins" / "modules" / "appliance_advisories.py").read_text())
    doc = next(yaml.safe_load(node.value.value) for node in tree.body
               if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION")
    documented = dict((name, dict((k, v) for k, v in option.items() if k != "description"))
                      for name, option in doc["options"].items())
    spec = dict((name, dict((k, list(v) if k == "choices" else v) for k, v in option.items()))
                for name, option in action.ARGUMENT_SPEC.items())
    assert documented == spec
