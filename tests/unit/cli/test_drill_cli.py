"""yoroi drill with ansible-runner replaced by a recorder: the playbook it runs, the sample
option, each host's duration printed, and the exit codes of the other commands."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from yoroi.cli import main


def drl(status="pass", control="DRL-002", seconds=3.46):
    return {"control": control, "status": status, "expected": "e", "actual": "a", "evidence": "", "seconds": seconds}


def events(per_host):
    found = [{"event": "playbook_on_task_start", "event_data": {"task": "Restore drill"}}]
    for host, findings in per_host.items():
        found.append({"event": "runner_on_ok", "event_data": {"host": host, "task": "Restore drill",
                                                              "res": {"findings": findings}}})
    found.append({"event": "playbook_on_stats", "event_data": {"dark": {}, "failures": {}}})
    return found


def invoke(tmp_path, *args):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {hosts: {h1: {}, h2: {}}}\n")
    env = {"YOROI_STATE_DIR": str(tmp_path / "state"), "YOROI_INVENTORY": ""}
    return CliRunner().invoke(main, ["drill", "-i", str(inventory)] + list(args), env=env)


def test_drill_runs_the_drill_playbook_and_prints_each_hosts_seconds(tmp_path, fake_runner):
    fake_runner.events = events({"h1": [drl(), drl(control="DRL-001")], "h2": [drl(seconds=12.04)]})
    res = invoke(tmp_path, "--sample", "50")
    assert res.exit_code == 0, res.output
    call = fake_runner.calls[0]
    assert Path(call["playbook"]).name == "drill.yml"
    assert call["extravars"]["yoroi_backup_drill_sample_files"] == 50
    assert "--check" not in call["cmdline"]
    assert "drill on h1 took 3.5 s" in res.output and "drill on h2 took 12.0 s" in res.output


def test_a_failed_drill_is_drift_and_json_has_the_seconds(tmp_path, fake_runner):
    fake_runner.events = events({"h1": [drl("fail")]})
    res = invoke(tmp_path, "-o", "json")
    assert res.exit_code == 2
    document = json.loads(res.output)
    assert document["mode"] == "drill" and document["drill_seconds"] == {"h1": 3.46}


def test_a_host_that_did_not_drill_is_named(tmp_path, fake_runner):
    fake_runner.events = events({"h1": [drl()]})
    unreachable = {"host": "h2", "task": "x", "res": {"msg": "no route"}}
    fake_runner.events.insert(-1, {"event": "runner_on_unreachable", "event_data": unreachable})
    fake_runner.events[-1]["event_data"]["dark"] = {"h2": 1}
    res = invoke(tmp_path)
    assert res.exit_code == 1
    assert "drill on h2 did not run (unreachable)" in res.output


def test_drill_needs_an_inventory(tmp_path, fake_runner):
    res = CliRunner().invoke(main, ["drill"], env={"YOROI_STATE_DIR": str(tmp_path), "YOROI_INVENTORY": ""})
    assert res.exit_code == 64 and fake_runner.calls == []
    assert invoke(tmp_path, "--sample", "-1").exit_code == 64
