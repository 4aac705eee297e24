"""yoroi assets: the register from runner events, its files, and the comparison's findings."""

from __future__ import annotations

import csv
import io
import json
import stat

import pytest
from click.testing import CliRunner

from yoroi import assets
from yoroi.cli import main


def host_entry(ports=((22, "sshd"),), sudo=("breakglass",)):
    return {"kind": "host", "os": "Debian GNU/Linux", "release": "12", "kernel": "6.1.0", "virtualization": "podman",
            "packages_installed": 159, "updates_pending": 0, "security_updates_pending": 0, "security_updates": [],
            "firmware": [], "human_accounts": ["alice"], "last_patch": "2026-11-27T23:26:22",
            "listening": [{"protocol": "tcp", "address": "0.0.0.0", "port": p, "processes": [n]} for p, n in ports],
            "privileged": {"root": ["root"], "sudo": list(sudo)}}


def register(**entries):
    return {"schema": assets.SCHEMA, "generated": "2026-11-28T00:00:00+00:00", "inventory": "inv",
            "assets": {name: dict(entry, name=name, site="lab", status=entry.get("status", "ok"))
                       for name, entry in entries.items()}}


def failures(findings):
    return sorted((f["control"], f["host"], f["subject"]) for f in findings if f["status"] == "fail")


def test_no_previous_register_skips_every_control():
    findings = assets.compare(None, register(h1=host_entry()))
    assert [(f["control"], f["status"]) for f in findings] == [("AST-001", "skipped"), ("AST-002", "skipped"), ("AST-003", "skipped")]


def test_the_same_register_twice_passes():
    findings = assets.compare(register(h1=host_entry()), register(h1=host_entry()))
    assert failures(findings) == [] and {f["status"] for f in findings} == {"pass"} and len(findings) == 3


def test_each_difference_is_one_finding():
    before = register(h1=host_entry(), gone=host_entry())
    after = register(h1=host_entry(ports=((22, "sshd"), (8088, "python3")), sudo=("breakglass", "mallory")), new=host_entry())
    findings = assets.compare(before, after)
    assert failures(findings) == [("AST-001", "gone", "gone"), ("AST-001", "new", "new"),
                                  ("AST-002", "h1", "tcp/0.0.0.0:8088"), ("AST-003", "h1", "sudo:mallory")]
    port = [f for f in findings if f["control"] == "AST-002"][0]
    assert "python3" in port["evidence"]


def test_a_closed_port_or_a_removed_member_is_no_finding():
    findings = assets.compare(register(h1=host_entry(ports=((22, "sshd"), (80, "nginx")))), register(h1=host_entry(sudo=())))
    assert failures(findings) == []


def test_an_unreachable_asset_is_not_removed_and_not_compared():
    after = register(h1={"kind": "unknown", "status": "unreachable", "errors": ["unreachable: no route"]})
    assert assets.compare(register(h1=host_entry()), after) == []


def test_appliances_are_compared_as_assets_only():
    appliance = {"kind": "appliance", "vendor": "Fortinet", "model": "FortiGate-60F", "firmware_version": "7.0.12", "role": "vpn"}
    findings = assets.compare(register(), register(fw1=appliance))
    assert failures(findings) == [("AST-001", "fw1", "fw1")]
    assert assets.compare(register(fw1=appliance), register(fw1=appliance))[0]["status"] == "pass"


def test_csv_has_one_row_per_asset():
    rows = list(csv.DictReader(io.StringIO(assets.render_csv(register(h1=host_entry(), h2=host_entry(ports=()))))))
    assert [row["name"] for row in rows] == ["h1", "h2"]
    assert rows[0]["listening"] == "tcp/0.0.0.0:22(sshd)" and rows[0]["privileged"] == "root:root sudo:breakglass"


def test_load_refuses_another_document(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"schema": "yoroi.run/1"}))
    with pytest.raises(ValueError):
        assets.load(path)


def ok(host, task, **res):
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task, "res": res, "task_action": "x"}}


def run_events(entry):
    return [
        {"event": "runner_on_ok", "event_data": {"host": "h1", "task": "inputs", "task_action": "yoroi.baseline.validate_inputs",
                                                 "res": {"site": "lab"}}},
        ok("h1", "register", asset=entry),
        ok("fw1", "appliance", ansible_facts={"yoroi_asset": {"kind": "appliance", "vendor": "Fortinet"}}),
        {"event": "playbook_on_stats", "event_data": {"dark": {}, "failures": {}}},
    ]


def invoke(tmp_path, *args):
    env = {"YOROI_STATE_DIR": str(tmp_path / "state"), "YOROI_INVENTORY": ""}
    return CliRunner().invoke(main, ["assets", "-i", "h1,", "-q"] + list(args), env=env)


def test_first_register_then_a_new_port_exits_2(tmp_path, fake_runner):
    fake_runner.events = run_events(host_entry())
    first = invoke(tmp_path, "--write", str(tmp_path / "r.json"), "--write", str(tmp_path / "r.csv"))
    assert first.exit_code == 0, first.output
    assert fake_runner.calls[0]["playbook"].endswith("playbooks/assets.yml")
    assert "--check" not in fake_runner.calls[0]["cmdline"]
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["schema"] == "yoroi.assets/1" and sorted(written["assets"]) == ["fw1", "h1"]
    assert written["assets"]["h1"]["site"] == "lab" and written["assets"]["fw1"]["kind"] == "appliance"
    for path in (tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "state" / "assets" / "last.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    same = invoke(tmp_path)
    assert same.exit_code == 0, same.output
    fake_runner.events = run_events(host_entry(ports=((22, "sshd"), (8088, "python3"))))
    changed = invoke(tmp_path, "-o", "json")
    assert changed.exit_code == 2
    # compared with the last saved register, not the first
    again = invoke(tmp_path, "--compare", str(tmp_path / "r.json"))
    assert again.exit_code == 2 and "AST-002" in again.output and "8088" in again.output


def test_an_html_report_shows_the_register(tmp_path, fake_runner):
    fake_runner.events = run_events(host_entry())
    result = invoke(tmp_path, "--report", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    assert "Asset register" in html and "Fortinet" in html and "tcp/0.0.0.0:22(sshd)" in html


@pytest.mark.parametrize("args", [["--write", "r.txt"], ["--compare", "missing.json"], ["-o", "xml"], ["--report", "r.pdf"]])
def test_usage_errors_exit_64_and_run_nothing(tmp_path, fake_runner, args):
    result = invoke(tmp_path, *args)
    assert result.exit_code == 64 and fake_runner.calls == []


def test_no_host_answering_is_an_error(tmp_path, fake_runner):
    fake_runner.events = [{"event": "runner_on_unreachable", "event_data": {"host": "h1", "task": "t", "res": {"msg": "no route"}}},
                          {"event": "playbook_on_stats", "event_data": {"dark": {"h1": 1}, "failures": {}}}]
    fake_runner.rc = 4
    assert invoke(tmp_path).exit_code == 1


def test_a_long_register_is_named_not_listed_in_html(monkeypatch):
    from yoroi import report
    monkeypatch.setattr(report, "REGISTER_ROWS_IN_HTML", 1)
    table = report.register_table({"register": register(h1=host_entry(), h2=host_entry())})
    assert table["rows"] is None and table["count"] == 2


def test_a_host_answering_a_wrong_shape_is_its_own_error_not_a_crash():
    """A host's answer is data: a listening entry without a protocol, or members as a string,
    must not raise in the CSV or the comparison and lose the whole register."""
    bad = dict(host_entry(), listening=[{"port": 1}], privileged={"sudo": "alice"})
    document = {"finished": "2026-11-28T00:00:00+00:00", "inventory": "inv",
                "hosts": {"h1": {"status": "ok", "site": "lab"}, "h2": {"status": "ok", "site": "lab"}},
                "assets": {"h1": bad, "h2": host_entry()}}
    built = assets.build(document)
    assert built["assets"]["h1"]["status"] == "failed"
    assert any("malformed 'listening'" in e for e in built["assets"]["h1"]["errors"])
    assert built["assets"]["h2"]["status"] == "ok"
    assert "h2" in assets.render_csv(built)
    assets.compare(built, built)
