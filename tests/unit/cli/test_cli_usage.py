"""Exit codes, inventories and help texts of the yoroi command, with ansible-runner
replaced by a recorder (tests/unit/cli/conftest.py)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from yoroi import findings
from yoroi.cli import main

REPO = Path(__file__).resolve().parents[3]
SITE_ROLES = [name.rsplit(".", 1)[-1]
              for play in yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())
              for name in [entry["role"] for entry in play.get("roles", [])]
              + [task["ansible.builtin.import_role"]["name"] for task in play.get("tasks", [])
                 if "ansible.builtin.import_role" in task]]


def finding(status="pass", control="ACC-001"):
    return {"control": control, "status": status, "subject": "bob", "expected": "e", "actual": "a", "evidence": ""}


def host_events(host="h1", found=(finding(),)):
    """What a run that reached `host` and evaluated `found` sends to the event handler."""
    return [
        {"event": "playbook_on_task_start", "event_data": {"task": "accounts"}},
        {"event": "runner_on_ok", "event_data": {"host": host, "task": "accounts",
                                                 "res": {"findings": list(found)}}},
        {"event": "playbook_on_stats", "event_data": {"dark": {}, "failures": {}}},
    ]


def invoke(tmp_path, *args):
    env = {"YOROI_STATE_DIR": str(tmp_path / "state"), "YOROI_INVENTORY": ""}
    return CliRunner().invoke(main, list(args), env=env)


# --- usage errors have their own exit code -------------------------------------------


@pytest.mark.parametrize("args", [
    ["audit", "--no-such-option"],
    ["audit", "-f", "many"],
    ["audit", "-f", "0"],
    ["audit", "-o", "yaml"],
    ["audit", "-e", "novalue"],
    ["audit", "--report", "out.pdf"],
    ["audit", "--report", "/nonexistent/out.html"],
    ["audit", "--config", "/nonexistent/yoroi.yml"],
    ["audit", "-t", "acounts"],
    ["apply", "--yes"],
    ["report", "--run", "/nonexistent/run.json"],
    ["report", "-f", "pdf"],
    ["no-such-command"],
    ["lab", "up", "--hosts", "0"],
])
def test_usage_errors_exit_64_and_run_nothing(tmp_path, fake_runner, args):
    result = invoke(tmp_path, *args)
    assert result.exit_code == findings.EXIT_USAGE == 64, result.output
    assert fake_runner.calls == []


def test_drift_keeps_exit_2(tmp_path, fake_runner):
    fake_runner.events = host_events(found=[finding("fail")])
    assert invoke(tmp_path, "audit", "-q").exit_code == 2


# --- inventories ----------------------------------------------------------------------


def test_an_inventory_path_that_does_not_exist_is_an_error(tmp_path, fake_runner):
    result = invoke(tmp_path, "audit", "-i", str(tmp_path / "nowhere.yml"))
    assert result.exit_code == 64
    assert "nowhere.yml" in result.output and "does not exist" in result.output
    assert fake_runner.calls == []


def test_a_relative_inventory_path_reaches_ansible_as_that_path(tmp_path, fake_runner, monkeypatch):
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yml").write_text("all: {hosts: {h1: {}}}\n")
    monkeypatch.chdir(tmp_path)
    fake_runner.events = host_events()
    assert invoke(tmp_path, "audit", "-q", "-i", "inv").exit_code == 0
    # a list: ansible-runner passes it as -i; a bare string that it cannot find in its
    # private directory would become the text of an inventory (a host named "inv")
    assert fake_runner.calls[0]["inventory"] == [str(tmp_path / "inv")]


@pytest.mark.parametrize("value", ["h1,h2,", "h1,", "h1,h2"])
def test_a_comma_makes_an_inline_host_list_as_in_ansible(tmp_path, fake_runner, value):
    fake_runner.events = host_events()
    result = invoke(tmp_path, "audit", "-q", "-i", value)
    assert result.exit_code == 0, result.output
    assert fake_runner.calls[0]["inventory"] == [value]


def test_apply_takes_an_inline_host_list(tmp_path, fake_runner):
    fake_runner.events = host_events()
    assert invoke(tmp_path, "apply", "--yes", "-q", "-i", "h1,").exit_code == 0
    assert fake_runner.calls[0]["inventory"] == ["h1,"]


# --- a run that evaluated no control is not compliant --------------------------------


def test_hosts_reached_but_no_control_evaluated_is_an_error(tmp_path, fake_runner):
    fake_runner.events = host_events(found=())
    result = invoke(tmp_path, "audit", "-q", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and "no control was evaluated" in doc["error"]
    assert doc["hosts"]["h1"]["status"] == "failed"
    assert "no control was evaluated" in " ".join(doc["hosts"]["h1"]["errors"])


def test_one_host_without_controls_among_others_is_an_error(tmp_path, fake_runner):
    fake_runner.events = host_events("h1") + host_events("h2", found=())
    result = invoke(tmp_path, "audit", "-q", "-o", "json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    assert doc["hosts"]["h1"]["status"] == "ok" and doc["hosts"]["h2"]["status"] == "failed"


def test_ansible_stopping_after_reaching_hosts_is_an_error(tmp_path, fake_runner):
    # -e '{"yoroi_serial": "abc"}': the input check ran on the host, then the play
    # could not start (ansible-playbook exit 250)
    fake_runner.events = host_events(found=())
    fake_runner.rc = 250
    fake_runner.stdout = "ERROR! ... serial abc is not an integer or a percentage\n"
    result = invoke(tmp_path, "audit", "-o", "json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["exit_code"] == 1
    assert "serial abc" in doc["error"]


def test_report_of_a_run_without_findings_shows_the_error(tmp_path, fake_runner):
    fake_runner.events = host_events(found=())
    result = invoke(tmp_path, "audit", "-q")
    assert result.exit_code == 1
    assert "ERROR" in result.stdout and "no control was evaluated" in result.stdout
    assert "compliant" not in result.stdout


# --- reports are private ---------------------------------------------------------------


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_reports_written_by_a_run_are_0600(tmp_path, fake_runner):
    fake_runner.events = host_events()
    old = tmp_path / "old.html"
    old.write_text("old")
    old.chmod(0o644)
    result = invoke(tmp_path, "audit", "-q", "--report", str(tmp_path / "new.json"), "--report", str(old))
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "new.json") == 0o600 and mode(old) == 0o600
    assert "ACC-001" in old.read_text()


def test_report_command_writes_0600_and_replaces_a_symlink_without_following_it(tmp_path):
    doc = {"schema": "yoroi.run/1", "mode": "audit", "started": "2026-11-27T09:00:00+00:00",
           "finished": "2026-11-27T09:00:01+00:00", "inventory": "i", "limit": None, "tags": [],
           "hosts": {"h1": {"site": "s", "status": "ok", "tasks": 1, "changed": 0, "errors": [], "warnings": []}},
           "findings": [{"host": "h1", "site": "s", "control": "ACC-001", "status": "pass", "seed": "1.1",
                         "title": "t", "severity": "high", "expected": "e", "actual": "a", "evidence": ""}]}
    doc["summary"] = findings.summarize(doc["findings"])
    doc["exit_code"] = findings.exit_code(doc)
    findings.save(doc, tmp_path / "state" / "runs")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    victim.chmod(0o644)
    link = tmp_path / "report.txt"
    link.symlink_to(victim)
    assert invoke(tmp_path, "report", "-w", str(link)).exit_code == 0
    assert not link.is_symlink() and mode(link) == 0o600 and "ACC-001" in link.read_text()
    assert victim.read_text() == "keep" and mode(victim) == 0o644
    fresh = tmp_path / "fresh.xml"
    assert invoke(tmp_path, "report", "-f", "junit", "-w", str(fresh)).exit_code == 0
    assert mode(fresh) == 0o600


# --- help texts -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["audit", "apply"])
def test_tags_help_names_every_concern_of_the_baseline(command):
    text = CliRunner().invoke(main, [command, "--help"], terminal_width=400).output
    line = next(line for line in text.splitlines() if "--tags" in line)
    assert len(SITE_ROLES) >= 4
    for role in SITE_ROLES:
        assert role in line, (role, line)


def test_apply_help_does_not_offer_this_machine():
    text = CliRunner().invoke(main, ["apply", "--help"], terminal_width=400).output
    line = next(line for line in text.splitlines() if "--inventory" in line)
    assert "this machine" not in line and "required" in line


def test_help_lists_the_exit_codes():
    for command in ([], ["audit"], ["apply"], ["report"]):
        text = CliRunner().invoke(main, command + ["--help"], terminal_width=400).output
        for code in ("0", "1", "2", "64"):
            assert "%s " % code in text or "%s:" % code in text, (command, code, text)
