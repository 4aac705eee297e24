"""yoroi patch with ansible-runner replaced by a recorder: the playbook it runs (never in
check mode, never checked first), the options it passes, and what it prints per host."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from yoroi.cli import main


def finding(control, status="pass", **extra):
    return dict({"control": control, "status": status, "expected": "e", "actual": "a", "evidence": ""}, **extra)


def events(per_host, failed=()):
    found = [{"event": "playbook_on_task_start", "event_data": {"task": "Patch"}}]
    for host, findings in per_host.items():
        found.append({"event": "runner_on_ok", "event_data": {"host": host, "task": "Patch", "res": {"findings": findings}}})
    for host, msg in failed:
        found.append({"event": "runner_on_failed", "event_data": {"host": host, "task": "Stop the rollout",
                                                                  "res": {"msg": msg}}})
    found.append({"event": "playbook_on_stats", "event_data": {"dark": {}, "failures": dict((h, 1) for h, _msg in failed)}})
    return found


def invoke(tmp_path, *args, input=None):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {hosts: {gw1: {}, web1: {}, web2: {}}}\n")
    env = {"YOROI_STATE_DIR": str(tmp_path / "state"), "YOROI_INVENTORY": ""}
    return CliRunner().invoke(main, ["patch", "-i", str(inventory)] + list(args), env=env, input=input)


def test_patch_runs_the_patch_playbook_with_its_options_and_prints_what_was_upgraded(tmp_path, fake_runner):
    fake_runner.events = events({
        "gw1": [finding("PAT-008"), finding("PAT-001", "fixed", upgraded=["openssl 3.0.20->3.0.22"]), finding("PAT-007")],
        "web1": [finding("PAT-008"), finding("PAT-001", upgraded=[]), finding("PAT-007")],
        "web2": [finding("PAT-008", "skipped", actual="outside Sat 02:00-04:00 at Fri 10:00 UTC",
                         evidence="nothing was changed")],
    })
    res = invoke(tmp_path, "--yes", "--serial", "1", "--all", "--force")
    assert res.exit_code == 0, res.output
    call = fake_runner.calls[0]
    assert len(fake_runner.calls) == 1, "patch is never checked first"
    assert Path(call["playbook"]).name == "patch.yml"
    assert "--check" not in call["cmdline"]
    assert call["extravars"] == {"yoroi_patch_serial": "1", "yoroi_patch_force": True, "yoroi_patch_upgrade": "all"}
    assert "gw1: upgraded openssl 3.0.20->3.0.22" in res.output
    assert "web1: upgraded nothing" in res.output
    assert "web2: not patched: outside Sat 02:00-04:00 at Fri 10:00 UTC; nothing was changed" in res.output


def test_a_failed_health_check_is_named_and_the_hosts_after_it_are_listed(tmp_path, fake_runner):
    fake_runner.events = events({
        "gw1": [finding("PAT-001", "fixed", upgraded=["p 1.0->1.1"]), finding("PAT-007")],
        "web1": [finding("PAT-001", "fixed", upgraded=["p 1.0->1.1"]),
                 finding("PAT-007", "fail", evidence="nginx.service is inactive")],
    }, failed=[("web1", "health check failed on web1: nginx.service is inactive")])
    fake_runner.events.insert(1, {"event": "runner_on_ok", "event_data": {"host": "web2", "task": "validate", "res": {}}})
    res = invoke(tmp_path, "--yes", "--security-only", "-o", "json")
    assert res.exit_code == 1
    document = json.loads(res.output)
    assert document["mode"] == "patch" and document["patch_upgraded"] == {"gw1": ["p 1.0->1.1"], "web1": ["p 1.0->1.1"]}
    assert fake_runner.calls[0]["extravars"] == {"yoroi_patch_upgrade": "security"}
    text = invoke(tmp_path, "--yes")
    assert "web1: health check FAILED (nginx.service is inactive); the rollout stopped here" in text.output
    assert "web2: not patched: the rollout stopped before its batch" in text.output


def test_patch_needs_an_inventory_and_asks_first(tmp_path, fake_runner):
    res = CliRunner().invoke(main, ["patch"], env={"YOROI_STATE_DIR": str(tmp_path), "YOROI_INVENTORY": ""})
    assert res.exit_code == 64 and fake_runner.calls == []
    res = invoke(tmp_path, input="n\n")
    assert res.exit_code != 0 and fake_runner.calls == []
