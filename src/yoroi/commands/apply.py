"""yoroi apply: remediate drift from the baseline."""

from dataclasses import replace

import click

from yoroi.commands._common import EXIT_CODES_HELP, execute, prepare, run_options


@click.command(epilog=EXIT_CODES_HELP)
@run_options("apply")
@click.option("--serial", help="Rolling batches: a host count or a percentage (for example 1 or 25%).")
@click.option("--check-first/--no-check-first", default=True, show_default=True,
              help="Audit first (one module call per host) and apply only to the hosts where "
                   "something would change; the others are done, their audit is their result.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def apply(inventory, limit, tags, forks, output, reports, extra_vars, quiet, config_file, serial, check_first, yes):
    """Bring hosts to the baseline.

    Every changed file is backed up first; protected and break-glass accounts are never
    touched. Exit code 2 after an apply means drift left (report-only policies).
    """
    settings, request = prepare("apply", {"inventory": inventory, "forks": forks, "output": output, "serial": serial},
                                tags, reports, extra_vars, config_file, limit)
    request = replace(request, check_first=check_first)
    if not yes:
        target = limit or "all hosts"
        click.confirm("Apply the Yoroi baseline to %s in %s?" % (target, request.inventory), abort=True)
    execute(settings, request, reports, quiet)
