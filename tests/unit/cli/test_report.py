import json
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from yoroi import findings, report
from yoroi.cli import main


def document(statuses, hosts=None):
    hosts = hosts or {"hq-1": {"site": "head_office", "status": "ok", "tasks": 3, "changed": 0, "errors": []}}
    items = [
        {"host": "hq-1", "site": "head_office", "control": "ACC-00%d" % (i + 1), "status": status,
         "expected": "e<script>", "actual": "a", "evidence": "ev", "subject": "bob", "title": "t", "severity": "high", "seed": "1.1"}
        for i, status in enumerate(statuses)
    ]
    doc = {"schema": "yoroi.run/1", "mode": "audit", "started": "2026-11-27T09:00:00+00:00",
           "finished": "2026-11-27T09:00:05+00:00", "inventory": "inv", "limit": None, "tags": [],
           "ansible_rc": 0, "hosts": hosts, "findings": items, "summary": findings.summarize(items)}
    doc["exit_code"] = findings.exit_code(doc)
    return doc


@pytest.mark.parametrize(
    "statuses, code",
    [(["pass", "fixed", "skipped"], 0), (["pass", "fail"], 2), (["fail", "error"], 1), ([], 1)],
)
def test_exit_codes(statuses, code):
    assert document(statuses)["exit_code"] == code


def test_unreachable_host_is_an_error():
    hosts = {"a": {"site": "s", "status": "ok", "errors": []}, "b": {"site": "s", "status": "unreachable", "errors": ["x"]}}
    assert document(["pass"], hosts)["exit_code"] == 1


def test_text_lists_failures_with_expected_and_evidence():
    text = report.render_text(document(["fail", "pass"]))
    assert "DRIFT FOUND" in text and "FAIL  hq-1 ACC-001 bob: a" in text and "head_office" in text


def test_html_escapes_and_rolls_up_by_site():
    html = report.render_html(document(["fail"]))
    assert "e&lt;script&gt;" in html and "<script>" not in html
    assert "head_office" in html and "Drift found" in html


def test_junit_counts_failures_and_errors():
    root = ET.fromstring(report.render_junit(document(["fail", "error", "skipped", "pass"])))
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped"), suite.get("tests")) == ("1", "1", "1", "4")


def test_report_command_rerenders_the_saved_run_with_its_exit_code(tmp_path):
    findings.save(document(["fail"]), tmp_path / "runs")
    runner = CliRunner()
    env = {"YOROI_STATE_DIR": str(tmp_path)}
    result = runner.invoke(main, ["report", "--format", "json"], env=env)
    assert result.exit_code == 2
    assert json.loads(result.output)["summary"]["fail"] == 1
    out = tmp_path / "r.html"
    assert runner.invoke(main, ["report", "-f", "html", "-w", str(out)], env=env).exit_code == 2
    assert "<table>" in out.read_text()
    assert oct((tmp_path / "runs" / "last.json").stat().st_mode & 0o777) == "0o600"


def test_report_without_a_run_says_so(tmp_path):
    result = CliRunner().invoke(main, ["report"], env={"YOROI_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 64 and "run `yoroi audit` first" in result.output


def test_apply_without_inventory_is_refused():
    result = CliRunner().invoke(main, ["apply", "--yes"], env={"YOROI_INVENTORY": ""})
    assert result.exit_code == 64 and "needs an inventory" in result.output


def test_controls_lists_the_catalog():
    result = CliRunner().invoke(main, ["controls", "-o", "json"])
    ids = [c["id"] for c in json.loads(result.output)]
    assert "ACC-001" in ids and len(ids) == len(set(ids))


def test_reports_roll_up_by_item_of_the_call():
    doc = document(["fail", "pass"])
    assert "1.1  Authentication" in report.render_text(doc)
    html = report.render_html(doc)
    assert "By item of the call for attention" in html and "Authentication" in html
    assert report.by_seed(doc)["1.1"]["counts"]["fail"] == 1
