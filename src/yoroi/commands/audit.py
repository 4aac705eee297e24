"""yoroi audit: the baseline in check mode; no host is changed."""

import click

from yoroi.commands._common import execute, run_options


@click.command()
@run_options
def audit(inventory, limit, tags, forks, output, reports, extra_vars, quiet, config_file):
    """Report drift from the baseline without changing anything.

    Runs the same roles as `apply`, in check mode. With no inventory, audits this
    machine read-only. Exit code: 0 compliant, 2 drift found, 1 error.
    """
    execute("audit", {"inventory": inventory, "forks": forks, "output": output}, tags, reports, extra_vars, quiet, config_file, limit)
