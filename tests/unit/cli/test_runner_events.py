"""The event collector: findings, warnings and host status come from runner events."""

from yoroi.runner import EventCollector


def event(kind, host="h1", task="t", **res):
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res}}


def test_findings_warnings_and_counts_are_collected():
    collect = EventCollector()
    collect(event("runner_on_ok", changed=True, findings=[{"control": "ACC-001", "status": "fixed"}], warnings=["w"]))
    collect(event("runner_on_skipped"))
    assert collect.findings == [{"control": "ACC-001", "status": "fixed", "host": "h1", "task": "t"}]
    assert collect.hosts["h1"]["tasks"] == 1 and collect.hosts["h1"]["changed"] == 1
    assert collect.hosts["h1"]["warnings"] == ["w"]


def test_ignored_unreachable_probe_is_not_an_unreachable_host():
    collect = EventCollector()
    collect(event("runner_on_unreachable", host="h1", msg="probe failed"))
    collect(event("runner_on_ok", host="h1"))
    collect(event("runner_on_unreachable", host="h2", msg="no route"))
    collect({"event": "playbook_on_stats", "event_data": {"dark": {"h2": 1}, "failures": {}}})
    assert collect.hosts["h1"]["status"] == "ok" and collect.hosts["h1"]["errors"] == []
    assert collect.hosts["h2"]["status"] == "unreachable"
    assert collect.hosts["h2"]["errors"] == ["unreachable: no route"]


def test_failed_task_marks_the_host_failed_unless_ignored():
    collect = EventCollector()
    ignored = event("runner_on_failed", host="h1", msg="x")
    ignored["event_data"]["ignore_errors"] = True
    collect(ignored)
    collect(event("runner_on_failed", host="h2", msg="boom"))
    collect({"event": "playbook_on_stats", "event_data": {"dark": {}, "failures": {"h2": 1}}})
    assert collect.hosts["h1"]["status"] == "ok"
    assert collect.hosts["h2"]["status"] == "failed" and "boom" in collect.hosts["h2"]["errors"][0]
