"""Appliances against advisories and the KEV catalog (plugins/module_utils/_appliances.py):
the input files, and the findings for one appliance."""

import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.yoroi.baseline.plugins.module_utils import _appliances as apl

ROOT = Path(__file__).resolve().parents[4]
ADVISORIES = ROOT / "inventories" / "example" / "advisories.yml"
KEV = Path(__file__).resolve().parents[1] / "data" / "kev_excerpt.json"
SOURCES = {"advisories": "advisories.yml", "kev": "kev.json"}


def advisories():
    return apl.load(str(ADVISORIES), "advisories")["advisories"]


def kev():
    return apl.load(str(KEV), "kev")


def device(**fields):
    item = {"vendor": "Kitsune Networks", "model": "KN-VPN 400", "firmware": "7.0.12", "role": "vpn",
            "product": "KitsuneOS"}
    item.update(fields)
    return item


def by_control(found):
    result = {}
    for item in found:
        result.setdefault(item["control"], []).append(item)
    return result


def test_the_example_files_load():
    assert [item["id"] for item in advisories()] == ["KSA-2024-003", "HSA-2024-0012", "TV-2024-07"]
    assert len(kev()["vulnerabilities"]) == 4


def test_below_a_fixed_version_fails_naming_the_advisory_and_the_kev_due_date():
    found = by_control(apl.evaluate(device(), advisories(), kev(), False, SOURCES))
    assert [f["status"] for f in found["APL-003"]] == ["pass"]
    (fw,) = found["APL-001"]
    assert (fw["status"], fw["subject"], fw["expected"], fw["actual"]) == (
        "fail", "KSA-2024-003", "at or above 7.0.14", "7.0.12 below 7.0.14")
    assert "CVE-2099-10001" in fw["evidence"] and "Out-of-bounds write" in fw["evidence"]
    kev_fail, kev_unknown = found["APL-002"]
    assert kev_fail["status"] == "fail" and kev_fail["subject"] == "KSA-2024-003"
    assert "CISA KEV CVE-2099-10001 (Kitsune Networks KitsuneOS): due 2099-01-31, ransomware use Known" in kev_fail["evidence"]
    # a KEV entry for the product that no advisory covers: cannot tell, so an error
    assert kev_unknown["status"] == "error" and "CVE-2099-10009" in kev_unknown["actual"]
    assert "due 2099-02-22" in kev_unknown["evidence"]


def test_at_the_fixed_version_passes_and_a_second_run_is_the_same():
    kev_data = kev()
    kev_data["vulnerabilities"] = [v for v in kev_data["vulnerabilities"] if v["cveID"] != "CVE-2099-10009"]
    for _run in range(2):
        found = apl.evaluate(device(firmware="7.2.7"), advisories(), kev_data, False, SOURCES)
        assert [(f["control"], f["status"]) for f in found] == [("APL-003", "pass"), ("APL-001", "pass"), ("APL-002", "pass")]
    assert "3 KEV entries (catalog 2024.11.27)" in found[2]["evidence"]


def test_check_mode_reports_the_same_drift():
    assert [f["status"] for f in apl.evaluate(device(), advisories(), kev(), True, SOURCES)] == \
        [f["status"] for f in apl.evaluate(device(), advisories(), kev(), False, SOURCES)]


def test_a_train_the_advisory_does_not_list_is_an_error_not_a_pass():
    found = by_control(apl.evaluate(device(firmware="7.1.5"), advisories(), None, False, SOURCES))
    (fw,) = found["APL-001"]
    assert (fw["status"], fw["actual"]) == ("error", "cannot compare 7.1.5 with the fixed versions of KSA-2024-003")
    assert fw["evidence"].startswith("cannot compare: KSA-2024-003 lists no fixed version for the train of 7.1.5 "
                                     "(it lists 7.4, 7.2, 7.0, 6.4); advisory KSA-2024-003")
    # the advisory is marked kev: the unknown reaches APL-002 as an error too
    assert [f["status"] for f in found["APL-002"]] == ["error"]


def test_a_version_that_cannot_be_ordered_is_an_error():
    found = by_control(apl.evaluate(device(vendor="Tanuki Vision", model="TV-C220", firmware="2.0.1-custom", role="camera"),
                                    advisories(), None, False, SOURCES))
    assert found["APL-001"][0]["status"] == "error"
    assert found["APL-001"][0]["actual"] == "cannot compare 2.0.1-custom with 2.0.2"
    assert found["APL-001"][0]["evidence"].startswith("cannot compare: '2.0.1-custom' is not a version")
    assert found["APL-002"][0]["status"] == "skipped"  # no KEV catalog, nothing marked kev


def test_a_train_without_a_fix_fails():
    (fw,) = by_control(apl.evaluate(device(firmware="6.4.15"), advisories(), None, False, SOURCES))["APL-001"]
    assert fw["status"] == "fail" and "train 6.4, which has no fix" in fw["actual"]


def test_every_model_of_a_vendor_and_hotfixes():
    found = by_control(apl.evaluate(device(vendor="hayabusa  systems", model="HX-Gate 20", firmware="10.2.9-h1", role="gateway",
                                           product="GlobalOS"), advisories(), kev(), False, SOURCES))
    assert [f["status"] for f in found["APL-001"]] == ["pass"]
    found = by_control(apl.evaluate(device(vendor="Hayabusa Systems", model="HX-Gate 20", firmware="9.1.3-h4", role="gateway"),
                                    advisories(), kev(), False, SOURCES))
    assert found["APL-001"][0]["actual"] == "9.1.3-h4 below 9.1.17"
    assert found["APL-002"][0]["status"] == "pass"  # not in the KEV catalog


def test_an_appliance_no_advisory_names_is_skipped_not_passed():
    found = by_control(apl.evaluate(device(vendor="Fortinet", model="FortiGate 60F", product="FortiOS", firmware="7.0.12"),
                                    advisories(), kev(), False, SOURCES))
    assert [f["status"] for f in found["APL-001"]] == ["skipped"]
    # but the KEV catalog lists an exploited FortiOS CVE no advisory covers
    assert [f["status"] for f in found["APL-002"]] == ["error"]
    assert "CVE-2024-21762" in found["APL-002"][0]["actual"] and "due 2024-02-16" in found["APL-002"][0]["evidence"]


def test_without_files_nothing_passes():
    found = apl.evaluate(device(), None, None, False, {})
    assert [(f["control"], f["status"]) for f in found] == [("APL-003", "pass"), ("APL-001", "skipped"), ("APL-002", "skipped")]


def test_an_undeclared_firmware_fails_apl_003_and_skips_the_rest():
    found = apl.evaluate(device(firmware="", role=""), advisories(), kev(), False, SOURCES)
    assert [(f["control"], f["status"]) for f in found] == [("APL-003", "fail"), ("APL-001", "skipped"), ("APL-002", "skipped")]
    assert found[0]["actual"] == "missing: yoroi_appliance_firmware, yoroi_appliance_role"


def test_internet_facing_roles_come_first_one_severity_up():
    severities = {"APL-001": "high", "APL-002": "critical", "APL-003": "medium"}
    vpn = apl.prioritise(apl.evaluate(device(), advisories(), kev(), False, SOURCES), "vpn", severities, ["vpn", "gateway"])
    camera = apl.prioritise(apl.evaluate(device(role="camera"), advisories(), kev(), False, SOURCES), "camera", severities,
                            ["vpn", "gateway"])
    assert [(f["control"], f["severity"], f["priority"]) for f in vpn][:2] == [("APL-003", "high", 0), ("APL-001", "critical", 0)]
    assert [(f["control"], f["severity"], f["priority"]) for f in camera][:2] == [("APL-003", "medium", 1), ("APL-001", "high", 1)]
    assert set(f["severity"] for f in vpn if f["control"] == "APL-002") == {"critical"}


# --- malformed files: each refused, naming the file ----------------------------------------

GOOD_ADVISORY = {"id": "X-1", "vendor": "V", "models": ["M"], "cves": ["CVE-2024-0001"], "fixed": {"1.2": "1.2.3"}}


def advisory(**fields):
    item = dict(GOOD_ADVISORY)
    item.update(fields)
    return {"advisories": [item]}


@pytest.mark.parametrize("data,reason", [
    ([], "a list `advisories`"),
    ({"advisories": [], "extra": 1}, "unknown top-level key 'extra'"),
    ({"advisories": ["x"]}, "advisories[0] is not a mapping"),
    (advisory(fixd={"1.2": "1.2.3"}), "unknown key 'fixd'"),
    ({"advisories": [{"id": "X-1"}]}, "vendor is missing"),
    (advisory(models=[]), "models must be a non-empty list"),
    (advisory(cves=["CVE-24-1"]), "CVE ids"),
    (advisory(kev="yes"), "kev must be true or false"),
    (advisory(id="X\nY"), "id must be one line"),
    (advisory(fixed={}), "fixed must map each train"),
    (advisory(fixed={7.1: "7.10.2"}), "in quotes"),
    (advisory(fixed={"7.2": 7.2}), "in quotes"),
    (advisory(fixed={"7.2": "7.4.3"}), "is not on train 7.2"),
    (advisory(fixed={"15.2": "15.2(4)M8"}), "cannot be ordered"),
    (advisory(fixed={"7.2x": "7.2.1"}), "not a version prefix"),
])
def test_a_malformed_advisory_file_is_refused(tmp_path, data, reason):
    path = tmp_path / "advisories.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(apl.InputError) as caught:
        apl.load(str(path), "advisories")
    assert str(caught.value).startswith(str(path) + ": ")
    assert reason in str(caught.value)


@pytest.mark.parametrize("text,reason", [
    ("advisories: [\n  - id: x\n bad", "not YAML or JSON"),
    ("\xff", None),
])
def test_unreadable_advisory_text_is_refused(tmp_path, text, reason):
    path = tmp_path / "advisories.yml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(apl.InputError) as caught:
        apl.load(str(path), "advisories")
    assert str(path) in str(caught.value) and (reason or "not UTF-8") in str(caught.value)


@pytest.mark.parametrize("data,reason", [
    ({"vulnerabilities": {}}, "not the CISA KEV catalog format"),
    ({"vulnerabilities": [{"cveID": "CVE-2024-3400", "vendorProject": "P", "product": "P"}]}, "needs the strings"),
    ({"vulnerabilities": [{"cveID": "CVE-2024-3400", "vendorProject": "P", "product": "P", "dueDate": "19/04/2024"}]},
     "is malformed"),
])
def test_a_malformed_kev_file_is_refused(tmp_path, data, reason):
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(data))
    with pytest.raises(apl.InputError) as caught:
        apl.load(str(path), "kev")
    assert str(caught.value).startswith(str(path)) and reason in str(caught.value)


def test_files_are_read_size_bounded_and_must_exist(tmp_path):
    path = tmp_path / "kev.json"
    path.write_text(KEV.read_text())
    with pytest.raises(apl.InputError, match="larger than 100 bytes"):
        apl.load(str(path), "kev", limit=100)
    with pytest.raises(apl.InputError, match="cannot be read"):
        apl.load(str(tmp_path / "missing.json"), "kev")
    with pytest.raises(apl.InputError, match="not JSON"):
        apl.load(str(ADVISORIES), "kev")
