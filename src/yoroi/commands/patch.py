"""yoroi patch: OS updates in rolling batches, inside the maintenance window, with a health
check after each host (playbooks/patch.yml)."""

from __future__ import annotations

import click

from yoroi.commands._common import EXIT_CODES_HELP, execute, prepare


def upgraded_lines(document: dict) -> list[str]:
    """One line per host: what its run upgraded, or why nothing was (its window, a failed
    health check, a host not reached)."""
    upgraded, window, health = {}, {}, {}
    for item in document.get("findings") or []:
        host = item.get("host", "?")
        if item.get("control") == "PAT-001" and isinstance(item.get("upgraded"), list):
            upgraded.setdefault(host, []).extend(item["upgraded"])
        elif item.get("control") == "PAT-008":
            window[host] = item
        elif item.get("control") == "PAT-007" and item.get("status") == "fail":
            health[host] = item.get("evidence", "")
    document["patch_upgraded"] = upgraded
    lines = []
    for host in sorted(document.get("hosts") or {}):
        if host in health:
            lines.append("%s: health check FAILED (%s); the rollout stopped here" % (host, health[host]))
        elif host in upgraded:
            lines.append("%s: upgraded %s" % (host, ", ".join(upgraded[host]) or "nothing"))
        elif host in window and window[host].get("status") != "pass":
            lines.append("%s: not patched: %s; %s" % (host, window[host].get("actual"), window[host].get("evidence")))
        elif health and host not in window:
            lines.append("%s: not patched: the rollout stopped before its batch" % host)
        else:
            lines.append("%s: not patched (%s)" % (host, document["hosts"][host].get("status") or "not reached"))
    return lines


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-i", "--inventory", help="Ansible inventory: a file, a directory, or hosts as host1,host2, (required).")
@click.option("-l", "--limit", help="Only these hosts or groups (Ansible pattern).")
@click.option("--serial", help="Hosts per batch: a count or a percentage (default 25%).")
@click.option("--force", is_flag=True, help="Patch outside the maintenance window (yoroi_patch_window).")
@click.option("--security-only/--all", "security_only", default=None,
              help="Upgrade security updates only, or every pending update (default: yoroi_patch_upgrade, security).")
@click.option("-f", "--forks", type=int, help="Hosts worked on at once within a batch (default 10).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), help="What is printed (default text).")
@click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
              help="Also write a report (0600); .txt .json .html .xml (JUnit). Repeatable.")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True,
              help="KEY=VALUE, a JSON object or @FILE, as ansible-playbook takes them. Repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def patch(inventory, limit, serial, force, security_only, forks, output, reports, extra_vars, quiet, config_file, yes):
    """Upgrade packages in rolling batches.

    Security updates (or all, --all) are upgraded batch by batch, hosts of the groups
    gateways and vpn first, only inside each site's maintenance window (--force overrides).
    After each host: a fresh SSH login, its listed services active, its listed ports
    listening; a failed check stops the rollout and names the host. A reboot only when
    one is required and yoroi_patch_reboot allows it.
    """
    settings, request = prepare("patch", {"inventory": inventory, "forks": forks, "output": output},
                                (), reports, extra_vars, config_file, limit)
    if request.inventory is None:
        raise click.UsageError("patch needs an inventory (-i)")
    request.playbook = "patch"
    if serial:
        request.extra_vars["yoroi_patch_serial"] = serial
    if force:
        request.extra_vars["yoroi_patch_force"] = True
    if security_only is not None:
        request.extra_vars["yoroi_patch_upgrade"] = "security" if security_only else "all"
    if not yes:
        click.confirm("Patch %s in %s?" % (limit or "all hosts", request.inventory), abort=True)
    execute(settings, request, reports, quiet, after_run=upgraded_lines)
