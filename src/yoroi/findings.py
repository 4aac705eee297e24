"""Run documents: counting findings, the exit code, and keeping runs on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATUSES = ("pass", "fail", "fixed", "error", "skipped")
EXIT_COMPLIANT = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2


def summarize(findings: list[dict]) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    for item in findings:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return counts


def exit_code(document: dict) -> int:
    """1 when anything could not be run or checked, else 2 on drift, else 0."""
    if document.get("error"):
        return EXIT_ERROR
    if any(host["status"] != "ok" for host in document["hosts"].values()):
        return EXIT_ERROR
    if not document["hosts"]:
        return EXIT_ERROR
    if document["summary"].get("error"):
        return EXIT_ERROR
    if document["summary"].get("fail"):
        return EXIT_DRIFT
    return EXIT_COMPLIANT


def save(document: dict, runs_dir: Path) -> Path:
    """Write the run as runs/<timestamp>-<mode>.json (0600) and point runs/last.json at it."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(runs_dir, 0o700)
    stamp = document["started"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = runs_dir / ("%s-%s.json" % (stamp, document["mode"]))
    for target in (path, runs_dir / "last.json"):
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
        os.replace(tmp, target)
    return path


def load(path: Path) -> dict:
    with open(path) as handle:
        document = json.load(handle)
    if not str(document.get("schema", "")).startswith("yoroi.run/"):
        raise ValueError("%s is not a Yoroi run document" % path)
    return document
