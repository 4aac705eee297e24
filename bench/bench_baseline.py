"""Benchmark: audit and apply of the whole baseline on N lab hosts.

Starts a lab of N hosts, then times `yoroi audit`, `yoroi apply` and a second
`yoroi apply` over SSH (pipelining, ControlPersist), and prints per run: wall time,
wall time per host, tasks executed per host, changed tasks, and the peak memory of the
controller's whole process tree (yoroi, ansible-playbook and its forks), sampled from
/proc. It prints figures; it asserts nothing.

    scripts/setup && .venv/bin/python bench/bench_baseline.py --hosts 1 --hosts 20 --hosts 50
    .venv/bin/python bench/bench_baseline.py --hosts 1 --runs audit --repeat 5

Below each run it prints where the time went, from the runner's events: start-up
(the CLI and ansible-playbook before the first task), each role (wall time of its tasks
over all hosts, tasks and skipped tasks per host), and finish (recap, report, exit). A role
that breaks the budget shows there.

It measures the yoroi installed in the Python that runs it (scripts/setup installs the
checkout into .venv), through bench/profiled_yoroi.py (the CLI plus a note of every event).
Goals on a 2-core machine, the whole baseline over SSH with pipelining: audit of 1 host
at most 4 s, 20 hosts at most 25 s, 50 hosts at most 60 s; a second apply of 1 host at
most 5 s that changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

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


CPUACCT = "/sys/fs/cgroup/cpuacct/libpod_parent/libpod-%s/cpuacct.usage"


def hosts_cpu(container_ids: list[str]) -> float | None:
    """CPU seconds the lab containers have used so far (cgroup v1 cpuacct), or None."""
    total = 0
    for cid in container_ids:
        try:
            with open(CPUACCT % cid) as handle:
                total += int(handle.read())
        except OSError:
            return None
    return total / 1e9


def container_ids(inventory: str) -> list[str]:
    """The podman ids of the lab containers an inventory names (yoroi_lab_container)."""
    from yoroi.lab.podman import podman

    names = re.findall(r"yoroi_lab_container: (\S+)", open(inventory).read())
    if not names:
        return []
    res = podman("container", "inspect", "--format", "{{.Id}}", *names, check=False)
    return res.stdout.split() if res.returncode == 0 else []


def timed_run(argv: list[str], env: dict) -> tuple[float, float, int, dict, dict]:
    """Run the CLI; return wall time, controller CPU time (user + system of the CLI,
    ansible-playbook and its forks: less sensitive than wall time to a busy machine),
    peak controller memory, its JSON and its events."""
    # stdout goes to a file: the JSON of 20 hosts is larger than a pipe's buffer, and a
    # pipe read only after the run would block the run.
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.NamedTemporaryFile(suffix=".json") as notes:
        env = dict(env, YOROI_BENCH_PROFILE=notes.name)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.seek(0)
        document = json.loads(out.read())
        profile = json.loads(open(notes.name).read() or "{}")
    return elapsed, cpu, peak, document, profile


def _stamp(note: dict) -> float:
    """When the event happened (ansible-runner's `created`, UTC), else when it arrived."""
    created = note.get("created")
    if created:
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    return note["received"]


def phases(profile: dict, hosts: int) -> list[tuple[str, float, float, float]]:
    """(phase, wall seconds, tasks per host, skipped per host) in run order.

    A task's wall time runs from its start to the next task's start (or the recap), so
    it holds every host's round trip; a role's time is the sum over its tasks. Tasks
    outside a role are named by their task. "start-up" is the CLI and ansible-playbook
    before the first task, "finish" the recap, report and exit after the last. An apply
    that checks first runs ansible-playbook twice: the first run's phases are marked
    "check:", and the second run's start-up is its own line.
    """
    events = profile.get("events") or []
    if not any(e["event"] == "playbook_on_task_start" for e in events):
        return []
    runs, current = [], []
    for event in events:
        current.append(event)
        if event["event"] == "playbook_on_stats":
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    rows: dict[str, list[float]] = {}

    def add(label: str, wall: float, ran: int = 0, skipped: int = 0) -> None:
        row = rows.setdefault(label, [0.0, 0, 0])
        row[0] += wall
        row[1] += ran
        row[2] += skipped

    previous_end = profile["started"]
    for index, run in enumerate(runs):
        starts = [e for e in run if e["event"] == "playbook_on_task_start"]
        if not starts:
            continue
        mark = "check: " if index == 0 and len(runs) > 1 else ""
        add("start-up" if index == 0 else "start-up (run %d)" % (index + 1), _stamp(starts[0]) - previous_end)
        ends = [e for e in run if e["event"] == "playbook_on_stats"]
        boundaries = starts + ends[:1]
        for task, following in zip(starts, boundaries[1:] + [None]):
            finish = _stamp(following) if following else max(_stamp(e) for e in run)
            results = [e for e in run if e.get("uuid") == task["uuid"] and e["event"].startswith("runner_on_")]
            label = mark + (task["role"] or "(play) " + task["task"][:40])
            add(label, finish - _stamp(task),
                sum(1 for e in results if e["event"] != "runner_on_skipped"),
                sum(1 for e in results if e["event"] == "runner_on_skipped"))
        previous_end = _stamp(ends[0]) if ends else max(_stamp(e) for e in run)
    add("finish", profile["finished"] - previous_end)
    size = max(hosts, 1)
    return [(label, wall, ran / size, skipped / size) for label, (wall, ran, skipped) in rows.items()]


def print_phases(rows) -> None:
    total = sum(r[1] for r in rows) or 1.0
    for label, wall, ran, skipped in rows:
        print("         %-34s %7.2f s %5.0f%%  %5.1f tasks/host  %4.1f skipped/host"
              % (label, wall, 100 * wall / total, ran, skipped))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append", help="lab sizes to measure (repeatable; default 1 and 20)")
    parser.add_argument("--release", default="bookworm")
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="run each audit this many times (the first apply once)")
    parser.add_argument("--runs", default="audit,apply,apply-2",
                        help="which runs, in order (audit, apply, apply-2, audit-2: an audit after apply)")
    parser.add_argument("--inventory", help="measure an existing lab's inventory instead of starting one")
    parser.add_argument("--no-phases", action="store_true", help="only the summary row per run")
    args = parser.parse_args()
    sizes = args.hosts or [1, 20]

    try:
        from yoroi import lab
    except ImportError:
        parser.error("yoroi is not installed in this Python: run scripts/setup, then .venv/bin/python %s" % sys.argv[0])

    state = tempfile.mkdtemp(prefix="yoroi-bench-")
    # ansible-playbook beside this Python, whatever the caller's PATH
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, YOROI_STATE_DIR=state, PATH=path)
    os.environ["YOROI_STATE_DIR"] = state
    yoroi = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiled_yoroi.py")]
    commands = {"audit": ["audit"], "audit-2": ["audit"], "apply": ["apply", "--yes"], "apply-2": ["apply", "--yes"]}
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    print("# %s; load average %s" % (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                     " ".join("%.2f" % x for x in os.getloadavg())))
    print("%-6s %-8s %8s %9s %8s %8s %11s %8s %9s" % (
        "hosts", "run", "wall s", "s/host", "cpu s", "host cpu", "tasks/host", "changed", "peak MiB"))
    for size in sizes if not args.inventory else [0]:
        name = "bench%d-%d" % (size, os.getpid())  # two benchmarks at once do not collide
        if args.inventory:
            inventory, current = args.inventory, None
        else:
            started = time.monotonic()
            current = lab.up(name, hosts=size, release=args.release, log=lambda m: print("# " + m, file=sys.stderr))
            print("# lab of %d host(s) up in %.1f s" % (size, time.monotonic() - started))
            inventory = str(current.inventory_path)
        ids = container_ids(inventory)
        try:
            for label in runs:
                repeat = args.repeat if label.startswith("audit") else 1
                for dummy in range(repeat):
                    argv = yoroi + commands[label] + ["-i", inventory, "-o", "json", "-q", "-f", str(args.forks)]
                    # every concern of the baseline is evaluated: time_sync, backup, firmware, firewall
                    # and log_forwarding too, which the lab turns off (no time server, no backup
                    # repository, no firmware device, no collector: controls that fail or are skipped)
                    argv += ["-e", "yoroi_time_sync_enabled=true", "-e", "yoroi_backup_enabled=true",
                             "-e", "yoroi_firmware_enabled=true", "-e", "yoroi_firewall_enabled=true",
                             "-e", "yoroi_log_forwarding_enabled=true"]
                    host_cpu = hosts_cpu(ids)
                    elapsed, cpu, peak, document, profile = timed_run(argv, env)
                    if host_cpu is not None:
                        host_cpu = (hosts_cpu(ids) or 0.0) - host_cpu
                    hosts = document["hosts"].values()
                    count = max(len(hosts), 1)
                    tasks = sum(h["tasks"] for h in hosts) / count
                    changed = sum(h["changed"] for h in hosts)
                    print(
                        "%-6d %-8s %8.1f %9.2f %8.1f %8s %11.1f %8d %9.0f   exit %d"
                        % (len(hosts), label, elapsed, elapsed / count, cpu,
                           "-" if host_cpu is None else "%.1f" % host_cpu, tasks, changed, peak / 2**20,
                           document["exit_code"])
                        + "  findings " + " ".join("%s=%d" % kv for kv in sorted(document["summary"].items()))
                    )
                    if not args.no_phases:
                        print_phases(phases(profile, len(hosts)))
                    sys.stdout.flush()
        finally:
            if current is not None:
                lab.down(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
