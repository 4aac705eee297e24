"""Run the baseline through ansible-runner and turn its events into a run document.

Results come from runner events (each task's module result, which carries ``findings``)
and from the play stats, never from printed text.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from yoroi import collection
from yoroi.findings import exit_code, summarize

SCHEMA = "yoroi.run/1"
HOST_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")


@dataclass
class RunRequest:
    mode: str  # audit | apply | assets
    inventory: str | None
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    forks: int = 10
    serial: str | None = None
    extra_vars: dict = field(default_factory=dict)
    playbook: str = "site"
    # apply: audit first (one batched module call per host) and apply only to the hosts
    # where something would change; the others are done, their audit is their result
    check_first: bool = False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class EventCollector:
    """Folds runner events into hosts, findings and task counts."""

    def __init__(self, progress: Callable[[str], None] | None = None):
        self.hosts: dict[str, dict] = {}
        self.findings: list[dict] = []
        self.assets: dict[str, dict] = {}  # host -> its asset register entry (playbooks/assets.yml)
        self.evidence: dict[str, dict] = {}  # host -> its triage bundle's result (playbooks/evidence.yml)
        self.progress = progress
        self.started = time.monotonic()

    def _host(self, name: str) -> dict:
        return self.hosts.setdefault(
            name,
            {"site": "default", "status": "ok", "tasks": 0, "changed": 0, "errors": [], "warnings": []},
        )

    def __call__(self, event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data", {})
        if kind == "playbook_on_task_start" and self.progress:
            self.progress("[%5.1fs] %s" % (time.monotonic() - self.started, data.get("task", "")))
        if kind == "playbook_on_stats":
            self._stats(data)
            return True
        if kind not in HOST_EVENTS:
            return True
        host = self._host(data.get("host", "?"))
        res = data.get("res") or {}
        task = data.get("task", "")
        if kind == "runner_on_skipped":
            return True
        host["tasks"] += 1
        # batch_check (an audit's concerns in one call) carries each module's result in `checks`
        checks = [item for item in res.get("checks") or [] if isinstance(item, dict)]
        if checks:
            host["changed"] += sum(1 for item in checks if item.get("changed"))
        elif res.get("changed"):
            host["changed"] += 1
        if "site" in res and data.get("task_action", "").endswith("validate_inputs"):
            host["site"] = res["site"]
        for warning in res.get("warnings") or []:
            if warning not in host["warnings"]:
                host["warnings"].append(warning)
        asset = res.get("asset") or (res.get("ansible_facts") or {}).get("yoroi_asset")
        if kind == "runner_on_ok" and isinstance(asset, dict):
            self.assets[data.get("host", "?")] = asset
        if kind == "runner_on_ok" and isinstance(res.get("evidence"), dict):
            self.evidence[data.get("host", "?")] = res["evidence"]
        sources = [(result, task) for result in [res] + list(res.get("results") or [])]
        sources += [(check, check.get("task") or task) for check in checks]
        for result, source in sources:
            for item in result.get("findings") or []:
                self.findings.append(dict(item, host=data.get("host", "?"), task=source))
        if kind == "runner_on_unreachable":
            # Whether it counts is known from the play stats: a task with
            # ignore_unreachable (the fresh-login probe) is not an unreachable host.
            host["errors"].append("unreachable: %s" % res.get("msg", ""))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            host["status"] = "failed"
            host["errors"].append("%s: %s" % (task, res.get("msg", "failed")))
        if self.progress and kind in ("runner_on_failed", "runner_on_unreachable"):
            self.progress("        %s: %s" % (data.get("host"), host["errors"][-1]))
        return True

    def _stats(self, data: dict) -> None:
        """Host status from the play recap: `dark` is unreachable, `failures` failed."""
        for name in data.get("dark") or {}:
            self._host(name)["status"] = "unreachable"
        for name in data.get("failures") or {}:
            host = self._host(name)
            if host["status"] == "ok":
                host["status"] = "failed"
        for name, host in self.hosts.items():
            if host["status"] == "ok":
                # an ignored unreachable probe that later succeeded is not an error
                host["errors"] = [e for e in host["errors"] if not e.startswith("unreachable: ")]


SEVERITIES = ("low", "medium", "high", "critical")


def _enrich(findings: list[dict], hosts: dict) -> list[dict]:
    """Findings with their site and the catalog's title, seed and severity; a finding that
    sets its own severity keeps it (an internet-facing appliance is one level up), and
    findings with a lower `priority` (VPN devices and gateways: 0) come first."""
    controls = collection.catalog()
    enriched = []
    for item in findings:
        control = controls.get(item.get("control"), {})
        own = item.get("severity") if item.get("severity") in SEVERITIES else None
        enriched.append(
            dict(
                item,
                site=hosts.get(item.get("host"), {}).get("site", "default"),
                title=control.get("title", ""),
                seed=control.get("seed", ""),
                severity=own or control.get("severity", ""),
            )
        )
    enriched.sort(key=lambda item: item.get("priority", 1))
    return enriched


class AnsibleNotFound(RuntimeError):
    pass


def ansible_bin_dir() -> str:
    """The directory of the ansible-playbook installed with the ansible-core this Python
    imports (a venv's bin, ~/.local/bin, ...): the caller's PATH need not contain it."""
    candidates = []
    try:
        for item in importlib.metadata.distribution("ansible-core").files or ():
            if item.name == "ansible-playbook":
                candidates.append(Path(os.path.normpath(item.locate())).parent)
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates += [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for directory in candidates:
        if os.access(directory / "ansible-playbook", os.X_OK):
            return str(directory)
    raise AnsibleNotFound(
        "ansible-playbook is not installed beside %s: run `pip install .` in the Yoroi checkout"
        % sys.executable
    )


def ansible_environment() -> dict:
    """Variables ansible-playbook runs with: this Python's Ansible programs first on PATH
    (ansible-runner starts `ansible-playbook` by name, and it starts its own helpers and
    ssh the same way), then the caller's PATH (or the system default)."""
    path = [ansible_bin_dir()] + os.environ.get("PATH", os.defpath).split(os.pathsep)
    return {
        "PATH": os.pathsep.join(dict.fromkeys(entry for entry in path if entry)),
        "ANSIBLE_COLLECTIONS_PATH": collection.collections_path(),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    }


def local_inventory() -> dict:
    """The embedded default: this machine, read-only, as the current user."""
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    if os.geteuid() != 0:
        host["ansible_become"] = False
    return {"all": {"hosts": {"localhost": host}}}


# ansible-playbook's exit codes after a complete play: 0 ok, 2 a host failed, 4 a host unreachable
PLAY_COMPLETED = (0, 2, 4)
NOTHING_EVALUATED = "no control was evaluated"


def _why_stopped(stdout: str) -> list[str]:
    """Ansible's own error lines when it printed any (not the traceback after them), else
    the last lines it printed."""
    lines = stdout.splitlines()
    errors = [line for line in lines if line.startswith(("[ERROR]", "ERROR!"))]
    return errors[-5:] or lines[-15:]


def _unevaluated(hosts: dict, findings: list[dict]) -> list[str]:
    """Reached hosts ("ok") without a single finding: nothing there was checked, so the
    host is failed, never compliant. Returns their names."""
    evaluated = {item.get("host") for item in findings}
    names = [name for name, host in hosts.items() if host["status"] == "ok" and name not in evaluated]
    for name in names:
        hosts[name]["status"] = "failed"
        hosts[name]["errors"].append("%s on this host" % NOTHING_EVALUATED)
    return names


# Characters that make a --limit entry a pattern rather than one host's name.
LIMIT_PATTERN_CHARS = set(",:&!*?[]~@ \t\n\\")


def settled_hosts(document: dict) -> list[str]:
    """The hosts of a check-mode run that an apply would not change: reached, evaluated,
    nothing that would change, no error. A run that stopped settles nobody."""
    if document.get("error"):
        return []
    errors = {item.get("host") for item in document["findings"] if item.get("status") == "error"}
    evaluated = {item.get("host") for item in document["findings"]}
    return sorted(name for name, host in document["hosts"].items()
                  if host["status"] == "ok" and host["changed"] == 0 and not host["errors"]
                  and name in evaluated and name not in errors)


def run(request: RunRequest, progress: Callable[[str], None] | None = None) -> dict:
    """Run the request; an apply with ``check_first`` audits first and applies only to the
    hosts where something would change (a module's check mode is the plan its apply acts
    on: no plan, no change). The run document covers every host either way."""
    if request.mode != "apply" or not request.check_first:
        return _run_once(request, progress)
    checked = _run_once(replace(request, mode="audit"), progress)
    settled = settled_hosts(checked)
    rest = sorted(set(checked["hosts"]) - set(settled))
    checked_first = {"settled": settled, "applied": rest}
    if not rest and settled:
        if progress:
            progress("checked first: nothing to change on %d host(s); nothing applied" % len(settled))
        document = dict(checked, mode="apply", checked_first=checked_first)
        document["exit_code"] = exit_code(document)
        return document
    if not settled or any(LIMIT_PATTERN_CHARS & set(name) for name in rest):
        # nothing to leave out, or a host name --limit would read as a pattern: apply to all
        checked_first = {"settled": [], "applied": sorted(checked["hosts"])}
        document = _run_once(request, progress)
    else:
        if progress:
            progress("checked first: nothing to change on %d host(s); applying to %d: %s"
                     % (len(settled), len(rest), ", ".join(rest)))
        document = _run_once(replace(request, limit=",".join(rest)), progress)
        for name in settled:
            document["hosts"].setdefault(name, checked["hosts"][name])
        document["findings"] = document["findings"] + [
            item for item in checked["findings"] if item.get("host") in settled]
        document["findings"] = _enrich(document["findings"], document["hosts"])
        document["summary"] = summarize(document["findings"])
        document["limit"] = request.limit
    document["started"] = checked["started"]
    document["checked_first"] = checked_first
    document["exit_code"] = exit_code(document)
    return document


def _run_once(request: RunRequest, progress: Callable[[str], None] | None = None) -> dict:
    import ansible_runner  # imported here: it is slow to import and not needed by `report`

    collector = EventCollector(progress)
    extra_vars = dict(request.extra_vars)
    # A list goes to ansible-playbook as `-i VALUE`; a string that ansible-runner does not
    # find in its private directory would become the text of an inventory instead.
    inventory = [request.inventory] if request.inventory is not None else local_inventory()
    if request.serial:
        extra_vars["yoroi_serial"] = request.serial
    cmdline = ["--diff"]
    if request.mode == "audit":
        cmdline.insert(0, "--check")
    started = _now()
    with tempfile.TemporaryDirectory(prefix="yoroi-run-") as private:
        result = ansible_runner.run(
            private_data_dir=private,
            playbook=str(collection.playbook(request.playbook)),
            inventory=inventory,
            limit=request.limit,
            tags=",".join(request.tags) if request.tags else None,
            forks=request.forks,
            extravars=extra_vars,
            envvars=ansible_environment(),
            cmdline=" ".join(cmdline),
            event_handler=collector,
            quiet=True,
            suppress_env_files=True,
        )
        stdout_tail = ""
        if result.rc not in PLAY_COMPLETED or not collector.hosts:
            # ansible-playbook stopped early (a syntax error, an unreadable inventory, a
            # play keyword it could not template)
            stdout_tail = "\n".join(_why_stopped(result.stdout.read()))
    findings = _enrich(collector.findings, collector.hosts)
    errors = []
    if not collector.hosts:
        errors.append(stdout_tail or "ansible-playbook exited with %s and reached no host" % result.rc)
    elif result.rc not in PLAY_COMPLETED:
        errors.append("ansible-playbook stopped (exit %s):" % result.rc)
        errors.extend("  " + line for line in stdout_tail.splitlines())
    # a host registered as an asset was evaluated, though the register holds no finding
    unevaluated = _unevaluated(collector.hosts, findings + [{"host": name} for name in collector.assets]
                               + [{"host": name} for name in collector.evidence])
    if unevaluated:
        errors.append("%s on %s (no role ran there: check --tags, --limit and the yoroi_*_enabled variables)"
                      % (NOTHING_EVALUATED, ", ".join(sorted(unevaluated))))
    document = {
        "schema": SCHEMA,
        "mode": request.mode,
        "started": started,
        "finished": _now(),
        "inventory": request.inventory or "local machine",
        "limit": request.limit,
        "tags": request.tags,
        "ansible_rc": result.rc,
        "hosts": collector.hosts,
        "findings": findings,
        "summary": summarize(findings),
    }
    if collector.assets:
        document["assets"] = collector.assets
    if collector.evidence:
        document["evidence"] = collector.evidence
    if errors:
        document["error"] = "\n".join(errors)
    document["exit_code"] = exit_code(document)
    return document
