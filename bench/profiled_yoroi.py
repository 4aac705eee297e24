"""`yoroi` as the benchmark runs it: the very CLI, plus a record of the runner's events.

    YOROI_BENCH_PROFILE=/tmp/p.json python bench/profiled_yoroi.py audit -i INV -o json

The CLI runs unchanged; only the runner's event collector is wrapped, so every event
it sees is also noted (kind, task, role, host, timestamps). At exit the notes go to
$YOROI_BENCH_PROFILE as JSON, for bench_baseline.py to fold into time per role.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

STARTED = time.time()
PROFILE = os.environ.get("YOROI_BENCH_PROFILE")
# Events worth a note: task boundaries and per-host results.
NOTED = {
    "playbook_on_start", "playbook_on_play_start", "playbook_on_task_start",
    "playbook_on_stats", "runner_on_ok", "runner_on_failed", "runner_on_skipped",
    "runner_on_unreachable",
}


def main() -> int:
    from yoroi import runner
    from yoroi.cli import main as cli

    notes: list[dict] = []

    class NotingCollector(runner.EventCollector):
        def __call__(self, event: dict) -> bool:
            kind = event.get("event")
            if kind in NOTED:
                data = event.get("event_data", {})
                notes.append({
                    "event": kind,
                    "created": event.get("created"),
                    "received": time.time(),
                    "task": data.get("task", ""),
                    "uuid": data.get("task_uuid", ""),
                    "role": data.get("role", ""),
                    "host": data.get("host", ""),
                    "action": data.get("task_action", ""),
                    "duration": data.get("duration"),
                    "changed": bool((data.get("res") or {}).get("changed")),
                })
            return super().__call__(event)

    runner.EventCollector = NotingCollector

    def dump() -> None:
        if PROFILE:
            with open(PROFILE, "w") as handle:
                json.dump({"started": STARTED, "finished": time.time(), "events": notes}, handle)

    atexit.register(dump)
    return cli(prog_name="yoroi")


if __name__ == "__main__":
    sys.exit(main())
