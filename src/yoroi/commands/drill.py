"""yoroi drill: restore drills of each host's backups, with how long each took."""

from __future__ import annotations

import click

from yoroi.commands._common import EXIT_CODES_HELP, execute, prepare


def host_seconds(document: dict) -> dict:
    """{host: seconds the drill took on it} from the DRL findings (each carries `seconds`)."""
    seconds = {}
    for item in document.get("findings") or []:
        if str(item.get("control", "")).startswith("DRL-") and isinstance(item.get("seconds"), (int, float)):
            seconds[item["host"]] = max(seconds.get(item["host"], 0.0), float(item["seconds"]))
    return seconds


def seconds_lines(document: dict) -> list[str]:
    """`drill_seconds` added to the run document, and one line per host to print."""
    seconds = document["drill_seconds"] = host_seconds(document)
    lines = []
    for host in sorted(document.get("hosts") or {}):
        if host in seconds:
            lines.append("drill on %s took %.1f s" % (host, seconds[host]))
        else:
            lines.append("drill on %s did not run (%s)" % (host, document["hosts"][host].get("status", "?")))
    return lines


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-i", "--inventory", help="Ansible inventory: a file, a directory, or hosts as host1,host2, (required).")
@click.option("-l", "--limit", help="Only these hosts or groups (Ansible pattern).")
@click.option("-f", "--forks", type=int, help="Hosts drilled at once (default 10).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), help="What is printed (default text).")
@click.option("--sample", type=click.IntRange(min=0), default=None,
              help="Restore this many files chosen at random instead of the whole latest snapshot.")
@click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
              help="Also write a report (0600); .txt .json .html .xml (JUnit). Repeatable.")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True,
              help="KEY=VALUE, a JSON object or @FILE, as ansible-playbook takes them. Repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
def drill(inventory, limit, forks, output, sample, reports, extra_vars, quiet, config_file):
    """Restore drill: prove each host's backups can be restored.

    On each host: `restic check` with a sampled read of the data, the latest snapshot (or
    --sample N files) restored into a private scratch directory that is always removed,
    and every restored file compared by SHA-256 with the live one. Files changed since
    the snapshot are reported apart, not as corruption. Prints how long each host took.
    """
    settings, request = prepare("drill", {"inventory": inventory, "forks": forks, "output": output},
                                (), reports, extra_vars, config_file, limit)
    if request.inventory is None:
        raise click.UsageError("drill needs an inventory (-i)")
    request.playbook = "drill"
    if sample is not None:
        request.extra_vars["yoroi_backup_drill_sample_files"] = sample
    execute(settings, request, reports, quiet, after_run=seconds_lines)
