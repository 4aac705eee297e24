"""`yoroi apply` audits first and applies only where something would change."""

import pytest

from yoroi import runner
from yoroi.runner import RunRequest


def host(changed=0, status="ok", errors=()):
    return {"site": "lab", "status": status, "tasks": 3, "changed": changed, "errors": list(errors), "warnings": []}


def finding(name, status="pass", control="ACC-001"):
    return {"host": name, "control": control, "status": status, "subject": "", "expected": "e", "actual": "a",
            "evidence": ""}


def document(mode, hosts, findings, error=None):
    doc = {"schema": runner.SCHEMA, "mode": mode, "started": "t-%s" % mode, "finished": "f", "inventory": "inv",
           "limit": None, "tags": [], "ansible_rc": 0, "hosts": hosts, "findings": findings,
           "summary": runner.summarize(findings)}
    if error:
        doc["error"] = error
    doc["exit_code"] = runner.exit_code(doc)
    return doc


@pytest.fixture
def calls(monkeypatch):
    """Replace the ansible-playbook runs: the audit sees `audit_doc`, the apply `apply_doc`."""
    made = []
    docs = {}

    def fake(request, progress=None):
        made.append(request)
        return docs[request.mode](request)

    monkeypatch.setattr(runner, "_run_once", fake)
    return made, docs


def test_settled_hosts_are_the_ones_nothing_would_change():
    doc = document("audit", {
        "clean": host(),
        "drift": host(changed=2),
        "broken": host(status="failed", errors=["x"]),
        "dark": host(status="unreachable"),
        "erroring": host(),
        "unevaluated": host(),
        "failing-but-unchangeable": host(),
    }, [finding("clean"), finding("drift", "fail"), finding("erroring", "error"),
        finding("failing-but-unchangeable", "fail")])
    assert runner.settled_hosts(doc) == ["clean", "failing-but-unchangeable"]
    assert runner.settled_hosts(dict(doc, error="ansible-playbook stopped")) == []


def test_a_compliant_fleet_is_audited_once_and_nothing_is_applied(calls):
    made, docs = calls
    docs["audit"] = lambda r: document("audit", {"a": host(), "b": host()}, [finding("a"), finding("b")])
    doc = runner.run(RunRequest(mode="apply", inventory="inv", check_first=True))
    assert [r.mode for r in made] == ["audit"]
    assert doc["mode"] == "apply" and doc["exit_code"] == 0
    assert doc["checked_first"] == {"settled": ["a", "b"], "applied": []}


def test_only_the_hosts_with_drift_are_applied_and_the_report_covers_all(calls):
    made, docs = calls
    docs["audit"] = lambda r: document("audit", {"a": host(), "b": host(changed=3), "c": host(status="unreachable")},
                                       [finding("a"), finding("b", "fail")])
    docs["apply"] = lambda r: document("apply", {"b": host(changed=3), "c": host(status="unreachable")},
                                       [finding("b", "fixed")])
    doc = runner.run(RunRequest(mode="apply", inventory="inv", limit="web", tags=["ssh"], check_first=True))
    audit, apply = made
    assert (audit.mode, audit.limit, audit.tags) == ("audit", "web", ["ssh"])
    assert (apply.mode, apply.limit, apply.tags) == ("apply", "b,c", ["ssh"])
    assert sorted(doc["hosts"]) == ["a", "b", "c"]
    assert sorted((f["host"], f["status"]) for f in doc["findings"]) == [("a", "pass"), ("b", "fixed")]
    assert doc["summary"] == {"error": 0, "fail": 0, "fixed": 1, "pass": 1, "skipped": 0}
    assert doc["limit"] == "web" and doc["started"] == "t-audit"
    assert doc["checked_first"] == {"settled": ["a"], "applied": ["b", "c"]}
    assert doc["exit_code"] == 1  # c is unreachable


@pytest.mark.parametrize("name", ["web*", "a,b", "!db", "g:h", "x[1]", "@file", "sp ace"])
def test_a_host_name_that_limit_reads_as_a_pattern_is_never_narrowed(calls, name):
    made, docs = calls
    docs["audit"] = lambda r: document("audit", {"ok": host(), name: host(changed=1)},
                                       [finding("ok"), finding(name, "fail")])
    docs["apply"] = lambda r: document("apply", {"ok": host(), name: host(changed=1)},
                                       [finding("ok"), finding(name, "fixed")])
    doc = runner.run(RunRequest(mode="apply", inventory="inv", limit="all", check_first=True))
    assert made[1].limit == "all"  # the whole original scope, not a pattern built from names
    assert doc["checked_first"]["settled"] == []


def test_an_audit_that_stopped_settles_nobody(calls):
    made, docs = calls
    docs["audit"] = lambda r: document("audit", {"a": host()}, [finding("a")], error="stopped")
    docs["apply"] = lambda r: document("apply", {"a": host()}, [finding("a")])
    runner.run(RunRequest(mode="apply", inventory="inv", check_first=True))
    assert [r.mode for r in made] == ["audit", "apply"] and made[1].limit is None


def test_without_check_first_the_apply_runs_alone(calls):
    made, docs = calls
    docs["apply"] = lambda r: document("apply", {"a": host()}, [finding("a")])
    runner.run(RunRequest(mode="apply", inventory="inv"))
    assert [r.mode for r in made] == ["apply"]
