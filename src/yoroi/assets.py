"""The fleet asset register: built from a run of playbooks/assets.yml, written as JSON and
CSV, kept under the state directory, and compared with the previous register.

Each difference is a finding of the catalog (controls of role `assets`, evaluated here on
the controller): a new or removed asset (AST-001), a new listening port (AST-002), a new
member of a privileged group (AST-003).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from yoroi.findings import keep

SCHEMA = "yoroi.assets/1"
CONTROLS = {"asset": "AST-001", "port": "AST-002", "privileged": "AST-003"}
CSV_COLUMNS = (
    "name", "site", "kind", "status", "os", "release", "kernel", "virtualization", "packages_installed",
    "updates_pending", "security_updates_pending", "last_patch", "listening", "human_accounts", "privileged",
    "firmware", "vendor", "model", "firmware_version", "role", "address",
)


def build(document: dict) -> dict:
    """The register from a run document of playbooks/assets.yml: every host of the run, with
    its entry when it answered, else its status and errors (never silently left out)."""
    assets = {}
    for name, host in sorted(document.get("hosts", {}).items()):
        entry = dict(document.get("assets", {}).get(name) or {})
        if entry:
            status = "ok"
        else:
            status = host["status"] if host["status"] != "ok" else "failed"
        problems = malformed(entry) if entry else []
        if problems:
            # what a host returns is data, not trusted: a wrong shape is that host's error,
            # never an exception that loses the whole register
            for field in ("listening", "privileged"):
                entry.pop(field, None)
            status = "failed"
        entry.update(name=name, site=host.get("site", "default"), status=status)
        entry.setdefault("kind", "unknown")
        if host.get("errors") or status != "ok":
            entry["errors"] = list(host.get("errors") or []) + problems or ["no register entry returned"]
        assets[name] = entry
    return {
        "schema": SCHEMA,
        "generated": document["finished"],
        "inventory": document.get("inventory"),
        "assets": assets,
    }


def malformed(entry: dict) -> list:
    """Why a host's register entry cannot be used ([] when it can)."""
    problems = []
    listening = entry.get("listening")
    if listening is not None and not (isinstance(listening, list) and all(
            isinstance(p, dict) and {"protocol", "address", "port"} <= set(p)
            and isinstance(p.get("processes") or [], list) for p in listening)):
        problems.append("malformed 'listening' in the host's answer")
    privileged = entry.get("privileged")
    if privileged is not None and not (isinstance(privileged, dict) and all(
            isinstance(members, list) and all(isinstance(m, str) for m in members) for members in privileged.values())):
        problems.append("malformed 'privileged' in the host's answer")
    return problems


def _ports(entry: dict) -> set:
    return {"%s/%s:%s" % (p["protocol"], p["address"], p["port"]) for p in entry.get("listening") or []}


def _port_processes(entry: dict) -> dict:
    return {"%s/%s:%s" % (p["protocol"], p["address"], p["port"]): p.get("processes") or []
            for p in entry.get("listening") or []}


def _privileged(entry: dict) -> set:
    return {"%s:%s" % (group, member) for group, members in (entry.get("privileged") or {}).items() for member in members}


def _finding(control: str, host: str, status: str, subject: str, expected, actual, evidence: str) -> dict:
    return {"control": control, "host": host, "status": status, "subject": subject,
            "expected": expected, "actual": actual, "evidence": evidence, "task": "asset register"}


def compare(previous: dict | None, current: dict) -> list[dict]:
    """Findings: one `fail` per difference; a `pass` per control and asset without one; every
    control `skipped` when there is no previous register. Ports and privileged users are
    compared on assets that answered both times; an asset that did not answer this time is
    not "removed" (its errors are the run's)."""
    findings = []
    now = current["assets"]
    if previous is None:
        for name, entry in now.items():
            if entry["status"] == "ok":
                findings += [_finding(control, name, "skipped", "", "", "", "no previous register to compare with")
                             for control in CONTROLS.values()]
        return findings
    before = previous.get("assets", {})
    since = "since the register of %s" % previous.get("generated", "?")
    for name in sorted(set(before) - set(now)):
        findings.append(_finding(CONTROLS["asset"], name, "fail", name, "present", "removed",
                                 "%s (%s) is no longer in the inventory %s" % (name, before[name].get("kind", "?"), since)))
    for name, entry in now.items():
        if entry["status"] != "ok":
            continue
        old = before.get(name)
        if old is None:
            findings.append(_finding(CONTROLS["asset"], name, "fail", name, "absent", "new",
                                     "%s (%s) is new %s" % (name, entry.get("kind", "?"), since)))
            continue
        findings.append(_finding(CONTROLS["asset"], name, "pass", name, "present", "present", "known %s" % since))
        if old.get("status") != "ok":
            continue
        for control, new in ((CONTROLS["port"], sorted(_ports(entry) - _ports(old))),
                             (CONTROLS["privileged"], sorted(_privileged(entry) - _privileged(old)))):
            if entry.get("kind") != "host":
                continue
            for subject in new:
                if control == CONTROLS["port"]:
                    evidence = "new listening socket %s (%s) %s" % (
                        subject, ", ".join(_port_processes(entry)[subject]) or "process unknown", since)
                else:
                    group, member = subject.split(":", 1)
                    evidence = "%s is a new member of %s %s" % (member, group, since)
                findings.append(_finding(control, name, "fail", subject, "absent", "present", evidence))
            if not new:
                findings.append(_finding(control, name, "pass", "", "no new", "none new", "nothing new %s" % since))
    return findings


def render_json(register: dict) -> str:
    return json.dumps(register, indent=2, sort_keys=True) + "\n"


def cell(value) -> str:
    if isinstance(value, list):
        return " ".join(cell(item) for item in value)
    if isinstance(value, dict):
        if "port" in value:
            return "%s/%s:%s(%s)" % (value["protocol"], value["address"], value["port"], ",".join(value.get("processes") or []))
        if "version" in value:
            return "%s=%s" % (value.get("name", ""), value["version"])
        return " ".join("%s:%s" % (key, ",".join(item) if isinstance(item, list) else item) for key, item in sorted(value.items()))
    return "" if value is None else str(value)


def render_csv(register: dict) -> str:
    """One row per asset; lists joined with spaces."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name in sorted(register["assets"]):
        entry = register["assets"][name]
        writer.writerow([cell(entry.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


RENDERERS = {"json": render_json, "csv": render_csv}
SUFFIXES = {".json": "json", ".csv": "csv"}


def format_for(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    raise ValueError("cannot tell the register format of %s (use .json or .csv)" % path)


def save(register: dict, assets_dir: Path) -> Path:
    """Write the register as assets/<timestamp>.json (0600) and point assets/last.json at it."""
    return keep(assets_dir, register["generated"], "", render_json(register))


def load(path: Path) -> dict:
    with open(path) as handle:
        register = json.load(handle)
    if not isinstance(register, dict) or register.get("schema") != SCHEMA:
        raise ValueError("%s is not a Yoroi asset register (%s)" % (path, SCHEMA))
    return register
