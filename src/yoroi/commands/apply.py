"""yoroi apply: remediate drift from the baseline."""

import click

from yoroi.commands._common import execute, run_options
from yoroi.settings import SettingsError, resolve


@click.command()
@run_options
@click.option("--serial", help="Rolling batches: a host count or a percentage (for example 1 or 25%).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def apply(inventory, limit, tags, forks, output, reports, extra_vars, quiet, config_file, serial, yes):
    """Bring hosts to the baseline.

    Every changed file is backed up first; protected and break-glass accounts are never
    touched. Exit code: 0 compliant afterwards, 2 drift left (report-only policies),
    1 error.
    """
    try:
        settings = resolve({"inventory": inventory, "serial": serial}, config_file)
    except SettingsError as exc:
        raise click.UsageError(str(exc))
    if settings.inventory is None:
        raise click.UsageError("apply needs an inventory (-i); only audit runs on this machine by default")
    if not yes:
        target = limit or "all hosts"
        click.confirm("Apply the Yoroi baseline to %s in %s?" % (target, settings.inventory), abort=True)
    execute("apply", {"inventory": inventory, "forks": forks, "output": output, "serial": serial}, tags, reports, extra_vars, quiet, config_file, limit)
