#!/usr/bin/env python3
"""Benchmark: audit and apply of the whole baseline on N lab hosts.

Starts a lab of N hosts, then times `yoroi audit`, `yoroi apply` and a second
`yoroi apply` over SSH (pipelining, ControlPersist), and prints per run: wall time,
wall time per host, tasks executed per host, changed tasks, and the peak memory of the
controller's whole process tree (yoroi, ansible-playbook and its forks), sampled from
/proc. It prints figures; it asserts nothing.

    scripts/setup && .venv/bin/python bench/bench_baseline.py --hosts 1 --hosts 20

It measures the yoroi installed in the Python that runs it (scripts/setup installs the
checkout into .venv). Goals on a 2-core machine: audit of 1 host < 10 s; 20 hosts < 60 s; second apply
changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def timed_run(argv: list[str], env: dict) -> tuple[float, int, dict]:
    # stdout goes to a file: the JSON of 20 hosts is larger than a pipe's buffer, and a
    # pipe read only after the run would block the run.
    with tempfile.TemporaryFile(mode="w+") as out:
        start = time.monotonic()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        out.seek(0)
        document = json.loads(out.read())
    return elapsed, peak, document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append", help="lab sizes to measure (repeatable; default 1 and 20)")
    parser.add_argument("--release", default="bookworm")
    parser.add_argument("--forks", type=int, default=20)
    args = parser.parse_args()
    sizes = args.hosts or [1, 20]

    try:
        from yoroi import lab
    except ImportError:
        parser.error("yoroi is not installed in this Python: run scripts/setup, then .venv/bin/python %s" % sys.argv[0])

    state = tempfile.mkdtemp(prefix="yoroi-bench-")
    env = dict(os.environ, YOROI_STATE_DIR=state)
    os.environ["YOROI_STATE_DIR"] = state
    yoroi = [sys.executable, "-m", "yoroi"]
    print("%-6s %-8s %8s %9s %11s %8s %12s" % ("hosts", "run", "wall s", "s/host", "tasks/host", "changed", "peak MiB"))
    for size in sizes:
        name = "bench%d" % size
        started = time.monotonic()
        current = lab.up(name, hosts=size, release=args.release)
        print("# lab of %d host(s) up in %.1f s" % (size, time.monotonic() - started))
        try:
            inventory = str(current.inventory_path)
            for label, command in (
                ("audit", ["audit"]),
                ("apply", ["apply", "--yes"]),
                ("apply-2", ["apply", "--yes"]),
            ):
                argv = yoroi + command + ["-i", inventory, "-o", "json", "-q", "-f", str(args.forks)]
                elapsed, peak, document = timed_run(argv, env)
                hosts = document["hosts"].values()
                tasks = sum(h["tasks"] for h in hosts) / max(len(hosts), 1)
                changed = sum(h["changed"] for h in hosts)
                print(
                    "%-6d %-8s %8.1f %9.2f %11.1f %8d %12.0f   exit %d"
                    % (size, label, elapsed, elapsed / size, tasks, changed, peak / 2**20, document["exit_code"])
                )
        finally:
            lab.down(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
