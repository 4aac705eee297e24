"""Appliance findings in run documents and reports: VPN devices and gateways first, with
the severity the action gave them (one level up for an internet-facing role)."""

from yoroi import findings, report
from yoroi.runner import EventCollector, _enrich


def event(host, found):
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": "t", "res": {"findings": found}}}


def collected():
    collect = EventCollector()
    collect(event("srv-01", [{"control": "ACC-003", "status": "fail", "expected": "e", "actual": "empty", "evidence": ""}]))
    collect(event("cam-01", [{"control": "APL-001", "status": "fail", "severity": "high", "priority": 1, "subject": "TV-1",
                              "expected": "at or above 2.0.2", "actual": "2.0.1b below 2.0.2", "evidence": "ev"}]))
    collect(event("vpn-01", [{"control": "APL-001", "status": "fail", "severity": "critical", "priority": 0,
                              "subject": "KSA-1", "expected": "at or above 7.0.14", "actual": "7.0.12 below 7.0.14",
                              "evidence": "ev"}]))
    return collect


def test_internet_facing_appliances_come_first_with_their_own_severity():
    collect = collected()
    enriched = _enrich(collect.findings, collect.hosts)
    assert [(f["host"], f["severity"]) for f in enriched] == [
        ("vpn-01", "critical"), ("srv-01", "critical"), ("cam-01", "high")]
    assert enriched[0]["title"].startswith("Appliance firmware is at or above")


def test_a_finding_without_a_valid_severity_takes_the_catalog_one():
    enriched = _enrich([{"control": "APL-001", "status": "fail", "severity": "urgent", "host": "x"}], {})
    assert enriched[0]["severity"] == "high"


def test_the_text_report_lists_vpn_devices_first():
    collect = collected()
    items = _enrich(collect.findings, collect.hosts)
    doc = {"schema": "yoroi.run/1", "mode": "audit", "inventory": "inv", "hosts": collect.hosts, "findings": items,
           "summary": findings.summarize(items)}
    doc["exit_code"] = findings.exit_code(doc)
    text = report.render_text(doc)
    listed = [line.split()[1] for line in text.split("Findings:")[1].splitlines() if line.startswith("  FAIL")]
    assert listed == ["vpn-01", "cam-01", "srv-01"]
