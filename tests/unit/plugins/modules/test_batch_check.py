"""batch_check runs concern modules' main() in one process: each result must be the one
the module gives when run on its own. The modules run as Ansible runs them on a host (a
Python process reading its arguments), not through the in-process test fixture, whose
patched exit_json would hide what the batch does."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.yoroi.baseline.plugins.module_utils import _batch

ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS = ROOT / ".dev" / "collections"


def run(module: str, args: dict, check_mode: bool = True) -> dict:
    """Run plugins/modules/<module>.py in a new Python process, as a host would."""
    raw = dict(args, _ansible_check_mode=check_mode, _ansible_diff=True, _ansible_tmpdir=None,
               _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(COLLECTIONS), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(ROOT / "plugins" / "modules" / ("%s.py" % module)),
                           json.dumps({"ANSIBLE_MODULE_ARGS": raw})],
                          capture_output=True, text=True, check=False, env=env, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, (proc.stdout, proc.stderr)
    return json.loads(lines[-1])


def without_invocation(result: dict) -> dict:
    """The result without what the batch adds, and with "armed N s past its deadline"
    made independent of the second it ran in."""
    text = json.dumps(dict((k, v) for k, v in result.items() if k not in ("invocation", "module", "task", "seconds")))
    return json.loads(re.sub(r"armed [0-9]+ s past", "armed N s past", text))


@pytest.fixture
def guard_root(tmp_path):
    """A guard root with one guard left armed past its deadline (GRD-002 fails on it)."""
    root = tmp_path / "guard"
    stale = root / "abc123"
    stale.mkdir(parents=True)
    (stale / "manifest.json").write_text(json.dumps({"token": "abc123", "paths": [{"path": "/etc/ssh/sshd_config", "backup": "file-0", "existed": True}],
                                                     "units": [], "created": "2020-01-01T00:00:00Z", "timeout": 60}))
    return str(root)


def test_each_result_is_the_one_the_module_gives_on_its_own(guard_root, tmp_path):
    empty = str(tmp_path / "no-guards")
    checks = [
        {"module": "change_guard", "args": {"state": "audit", "guard_root": guard_root}, "task": "first"},
        {"module": "change_guard", "args": {"state": "audit", "guard_root": empty}, "task": "second"},
    ]
    batch = run("batch_check", {"checks": checks})
    assert not batch.get("failed"), batch
    alone = [run("change_guard", check["args"]) for check in checks]
    assert [without_invocation(r) for r in batch["checks"]] == [without_invocation(r) for r in alone]
    assert [(r["module"], r["task"]) for r in batch["checks"]] == [("change_guard", "first"), ("change_guard", "second")]
    # and they differ from each other: the batch did not reuse one module's state for the next
    assert [f["status"] for f in batch["checks"][0]["findings"]] == ["fail"]
    assert [f["status"] for f in batch["checks"][1]["findings"]] == ["pass"]
    # the batch echoes the module names, not their arguments
    assert batch["invocation"] == {"module_args": {"checks": [{"module": "change_guard"}] * 2}}


def test_a_failing_module_fails_the_batch_naming_it_and_the_others_still_run(tmp_path):
    checks = [
        {"module": "change_guard", "args": {"state": "no-such-state"}, "task": "broken"},
        {"module": "change_guard", "args": {"state": "audit", "guard_root": str(tmp_path)}, "task": "fine"},
    ]
    batch = run("batch_check", {"checks": checks})
    assert batch["failed"] and "broken (change_guard)" in batch["msg"] and "no-such-state" in batch["msg"]
    assert batch["checks"][0]["failed"]
    assert not batch["checks"][1].get("failed") and batch["checks"][1]["findings"]


def test_outside_check_mode_it_runs_nothing(tmp_path):
    marker = tmp_path / "guard"
    args = {"state": "armed", "paths": [str(tmp_path / "x")], "guard_root": str(marker)}
    checks = [{"module": "change_guard", "args": args}]
    batch = run("batch_check", {"checks": checks}, check_mode=False)
    assert batch["failed"] and "check mode only" in batch["msg"]
    assert "checks" not in batch and not marker.exists()


def test_only_batchable_modules_are_accepted():
    batch = run("batch_check", {"checks": [{"module": "validate_inputs", "args": {}}]})
    assert batch["failed"] and "validate_inputs" in batch["msg"]


def test_run_one_refuses_outside_check_mode():
    with pytest.raises(ValueError):
        _batch.run_one(lambda: None, "change_guard", {}, {"_ansible_check_mode": False})


def test_run_one_reports_a_module_that_returns_without_a_result():
    result = _batch.run_one(lambda: None, "change_guard", {}, {"_ansible_check_mode": True})
    assert result["failed"] and "without a result" in result["msg"]


def test_the_batchable_modules_are_one_list_everywhere():
    from ansible_collections.yoroi.baseline.plugins.modules import batch_check

    routing = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["plugin_routing"]["modules"]
    routed = {name for name, entry in routing.items() if entry.get("action_plugin") == "yoroi.baseline.batch_check"}
    assert set(batch_check.MAINS) == set(_batch.BATCHABLE)
    # totp_mfa has an action of its own (the enrolment hand-off), which defers the same way
    assert routed == set(_batch.BATCHABLE) - {"totp_mfa"}
    assert "_deferred.defer(" in (ROOT / "plugins" / "action" / "totp_mfa.py").read_text()
    # every module whose wiring can run in the batch is batchable, and none is left out
    wired = {path.stem for path in (ROOT / "plugins" / "module_utils" / "_wiring").glob("*.py")}
    assert wired == set(_batch.BATCHABLE)


def test_every_concern_module_of_the_baseline_is_batchable():
    """A role of the baseline whose module is not batchable would cost the audit a module
    call per host: it must be batchable, or listed here with its reason."""
    not_batched = {"backup_drill": "runs in playbooks/drill.yml (yoroi drill), never in the baseline"}
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    roles = [task["ansible.builtin.import_role"]["name"].rsplit(".", 1)[-1]
             for play in site for task in play.get("tasks", []) if "ansible.builtin.import_role" in task]
    assert len(roles) >= 9
    for role in roles:
        for path in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
            for task in yaml.safe_load(path.read_text()) or []:
                for key in task:
                    if key.startswith("yoroi.baseline."):
                        name = key.rsplit(".", 1)[-1]
                        assert name in _batch.BATCHABLE or name in not_batched, (role, path.name, name)


class Captured(Exception):
    pass


def no_log_options(spec: dict, prefix: str = "") -> list:
    found = []
    for name, option in spec.items():
        if option.get("no_log"):
            found.append(prefix + name)
        found += no_log_options(option.get("options") or {}, prefix + name + ".")
    return found


@pytest.mark.parametrize("name", _batch.BATCHABLE)
def test_every_secret_option_of_a_batchable_module_travels_as_a_secret(name, monkeypatch):
    """The batch's `checks` are logged on the host (Ansible logs a module's arguments
    there, except its no_log ones): a module's no_log options must go through the
    batch's own no_log `secrets` instead - SECRET_OPTIONS lists them, exactly."""
    from ansible.module_utils import basic
    from ansible_collections.yoroi.baseline.plugins.modules import batch_check

    def capture(self, argument_spec=None, **kwargs):
        raise Captured(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    with pytest.raises(Captured) as caught:
        batch_check.MAINS[name]()
    spec = caught.value.args[0]
    assert spec and sorted(no_log_options(spec)) == sorted(_batch.SECRET_OPTIONS.get(name, ()))


def test_a_secret_reaches_its_module_and_nothing_else_shows_it(tmp_path):
    secret = "S3cr3t-Backup-Pw-%d" % os.getpid()
    checks = [{"module": "restic_backup", "task": "backup",
               "args": {"repository": str(tmp_path / "repo"), "paths": [str(tmp_path)]}},
              {"module": "change_guard", "args": {"state": "audit", "guard_root": str(tmp_path / "g")}}]
    raw = {"ANSIBLE_MODULE_ARGS": dict(checks=checks, secrets=[{"password": secret}, {}], _ansible_check_mode=True,
                                       _ansible_diff=True, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(COLLECTIONS), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(ROOT / "plugins" / "modules" / "batch_check.py"), json.dumps(raw)],
                          capture_output=True, text=True, check=False, env=env, timeout=120)
    assert secret not in proc.stdout and secret not in proc.stderr
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    backup = result["checks"][0]
    assert backup["module"] == "restic_backup" and backup["findings"], backup
    # the module had its password: its password-file control did not say "no password"
    assert not any("no backup configured" in json.dumps(f) for f in backup["findings"]), backup["findings"]


@pytest.mark.parametrize("secrets, why", [
    ([{"password": "x"}], "one mapping per check"),
    ([{"state": "armed"}, {}], "only its secret options"),
])
def test_secrets_are_only_secret_options_one_per_check(tmp_path, secrets, why):
    checks = [{"module": "change_guard", "args": {"state": "audit", "guard_root": str(tmp_path)}}] * 2
    batch = run("batch_check", {"checks": checks, "secrets": secrets})
    assert batch["failed"] and why in batch["msg"] and "checks" not in batch


def test_the_secret_option_check_sees_nested_options():
    spec = {"a": {"no_log": True}, "b": {"type": "dict", "options": {"c": {"no_log": True}, "d": {}}}, "e": {}}
    assert no_log_options(spec) == ["a", "b.c"]


@pytest.mark.parametrize("args, kwargs, memoized", [
    (["/usr/bin/dpkg-query", "--show", "--showformat=x", "auditd"], {"environ_update": {"LC_ALL": "C"}}, True),
    (["/usr/bin/systemctl", "is-active", "auditd"], {}, True),
    (["/usr/bin/systemctl", "show", "-p", "Id", "chrony.service"], {}, True),
    (["/usr/sbin/sshd", "-T"], {}, True),
    (["/usr/sbin/sshd", "-T", "-f", "/tmp/candidate"], {}, False),     # a candidate, not the live config
    (["/usr/sbin/sshd", "-T", "-C", "user=x"], {}, False),
    (["/usr/bin/systemctl", "restart", "auditd"], {}, False),          # never a change
    (["/usr/bin/systemctl", "daemon-reload"], {}, False),
    (["/usr/bin/apt-get", "install", "x"], {}, False),
    (["/usr/bin/dpkg-query", "--show", "x"], {"data": "input"}, False),  # stdin: run it
    ("/usr/bin/systemctl is-active auditd", {}, False),                 # a shell string
    (["/usr/bin/dpkg-query"], {}, False),
])
def test_which_commands_the_batch_answers_once(args, kwargs, memoized):
    assert (_batch.query_key(args, kwargs) is not None) is memoized


def test_a_query_runs_once_per_batch_and_other_commands_every_time():
    ran = []

    def run_command(_self, args, **kwargs):
        ran.append(list(args))
        return 0, "answer %d" % len(ran), ""

    run = _batch.memoized(run_command, {})
    query = ["/usr/bin/systemctl", "is-active", "auditd"]
    assert run(None, query) == run(None, query) == (0, "answer 1", "")
    assert run(None, query, environ_update={"LC_ALL": "C"}) == (0, "answer 2", "")  # another environment
    run(None, ["/usr/bin/systemctl", "start", "auditd"])
    run(None, ["/usr/bin/systemctl", "start", "auditd"])
    assert ran == [query, query, ["/usr/bin/systemctl", "start", "auditd"], ["/usr/bin/systemctl", "start", "auditd"]]


def test_the_baseline_imports_every_role_without_a_second_spec_check_and_file_integrity_last():
    """validate_inputs checks every role's spec once for all hosts: a role imported with
    Ansible's own check too costs a task per host; and file_integrity's first database
    must hold what every other changing role wrote (access_review only reads)."""
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    imports = [task["ansible.builtin.import_role"] for play in site for task in play.get("tasks", [])
               if "ansible.builtin.import_role" in task]
    assert imports and all(entry.get("rolespec_validate") is False for entry in imports), imports
    order = [entry["name"].rsplit(".", 1)[-1] for entry in imports]
    assert order[-2:] == ["file_integrity", "access_review"], order
