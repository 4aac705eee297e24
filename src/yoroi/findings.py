"""Run documents: counting findings, the exit code, and keeping runs on disk."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

STATUSES = ("pass", "fail", "fixed", "error", "skipped")
EXIT_COMPLIANT = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2
EXIT_USAGE = 64  # sysexits EX_USAGE: a wrong option, value or file name; nothing was run
EXIT_CODES = (
    (EXIT_COMPLIANT, "compliant: every control evaluated passed or was fixed"),
    (EXIT_ERROR, "error: a host unreachable or failed, a control in error, no control run"),
    (EXIT_DRIFT, "drift found: a control failed"),
    (EXIT_USAGE, "usage error: a wrong option, value or file; nothing was run"),
)


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
    if not document["findings"]:
        # a run that evaluated nothing proves nothing: never "compliant"
        return EXIT_ERROR
    if document["summary"].get("error"):
        return EXIT_ERROR
    if document["summary"].get("fail"):
        return EXIT_DRIFT
    return EXIT_COMPLIANT


def write_private(path, text: str) -> None:
    """Write a file readable by its owner only (0600): runs and reports list weak accounts,
    exemptions and networks. A new file is made beside the target (O_EXCL, 0600) and
    renamed over it, so a symlink at the target is replaced, never followed, and an
    existing file with a wider mode ends 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".%s." % path.name, suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def keep(directory: Path, stamp: str, suffix: str, text: str) -> Path:
    """Write TEXT as DIRECTORY/<stamp as a file name><suffix>.json and as last.json (0600,
    in a 0700 directory); returns the first."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / ("%s%s.json" % (stamp.replace(":", "").replace("-", "").replace("+0000", "Z"), suffix))
    for target in (path, directory / "last.json"):
        write_private(target, text)
    return path


def save(document: dict, runs_dir: Path) -> Path:
    """Write the run as runs/<timestamp>-<mode>.json (0600) and point runs/last.json at it."""
    return keep(runs_dir, document["started"], "-" + document["mode"], json.dumps(document, indent=2, sort_keys=True))


def load(path: Path) -> dict:
    with open(path) as handle:
        document = json.load(handle)
    if not str(document.get("schema", "")).startswith("yoroi.run/"):
        raise ValueError("%s is not a Yoroi run document" % path)
    return document
