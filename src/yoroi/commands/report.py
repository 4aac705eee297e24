"""yoroi report: render a saved run again."""

import sys
from pathlib import Path

import click

from yoroi import findings, incident, runner
from yoroi import report as rendering
from yoroi.commands._common import EXIT_CODES_HELP, write_report
from yoroi.settings import SettingsError, inventory_source, resolve


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-f", "--format", "fmt", type=click.Choice(rendering.FORMATS), default="text", show_default=True)
@click.option("--run", "run_file", type=click.Path(exists=True, dir_okay=False), help="A saved run (default: the last one).")
@click.option("-w", "--write", "target", type=click.Path(dir_okay=False),
              help="Write to this file (0600) instead of stdout.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file, for state_dir (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
@click.option("--notification", is_flag=True,
              help="Draft the first notification of an incident from the run (what, where, when, evidence), "
                   "addressed to the sites' contacts; Yoroi sends nothing.")
@click.option("--what", default="", help="With --notification: what was seen, in one line.")
@click.option("--evidence", "evidence", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="With --notification: an evidence bundle of `yoroi collect` (or its manifest); repeatable.")
@click.option("-i", "--inventory", help="With --notification: the inventory, for the sites' contacts.")
def report(fmt, run_file, target, config_file, notification, what, evidence, inventory):
    """Render the last run (or --run FILE) as text, JSON, HTML or JUnit XML, or with
    --notification draft an incident's first notification from it.

    Exits with the run's own code, so CI can gate on a saved run.
    """
    if not notification and (what or evidence or inventory):
        raise click.UsageError("--what, --evidence and -i go with --notification")
    try:
        settings = resolve({}, config_file)
        path = Path(run_file) if run_file else settings.runs_dir / "last.json"
        if not path.exists():
            raise click.UsageError("no saved run at %s: run `yoroi audit` first" % path)
        document = findings.load(path)
    except (SettingsError, ValueError) as exc:
        raise click.UsageError(str(exc))
    if notification:
        text = _notification(document, what, evidence, inventory, config_file)
    else:
        text = rendering.render(document, fmt)
    if target:
        write_report(target, text)
    else:
        click.echo(text, nl=False)
    sys.exit(document["exit_code"])


def _notification(document, what, evidence, inventory, config_file) -> str:
    """The draft, with the contacts of the inventory's sites when one is given."""
    try:
        site_info = {}
        if inventory:
            source = inventory_source(resolve({"inventory": inventory}, config_file).inventory)
            site_info = incident.sites(incident.inventory_hostvars(source))
        bundles = [incident.bundle_id(Path(path)) for path in evidence]
        return incident.draft_notification(document, site_info, what, bundles)
    except (SettingsError, ValueError, OSError) as exc:
        raise click.UsageError(str(exc))
    except (incident.InventoryError, runner.AnsibleNotFound) as exc:
        click.echo("yoroi: %s" % exc, err=True)
        sys.exit(findings.EXIT_ERROR)
