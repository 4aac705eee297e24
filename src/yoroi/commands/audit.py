"""yoroi audit: the baseline in check mode; no host is changed."""

import click

from yoroi.commands._common import EXIT_CODES_HELP, execute, prepare, run_options


@click.command(epilog=EXIT_CODES_HELP)
@run_options("audit")
def audit(inventory, limit, tags, forks, output, reports, extra_vars, quiet, config_file):
    """Report drift from the baseline without changing anything.

    Runs the same roles as `apply`, in check mode. With no inventory, audits this
    machine read-only. A run that evaluates no control is an error, never compliant.
    """
    settings, request = prepare("audit", {"inventory": inventory, "forks": forks, "output": output},
                                tags, reports, extra_vars, config_file, limit)
    execute(settings, request, reports, quiet)
