"""yoroi runbook: a printable incident runbook page per site, from the inventory."""

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from yoroi import findings, incident, runner
from yoroi.commands._common import EXIT_CODES_HELP
from yoroi.settings import SettingsError, inventory_source, resolve


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-i", "--inventory", help="Inventory (file or directory); the contacts are its variables.")
@click.option("-l", "--limit", help="Only the sites of these hosts (an Ansible pattern).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runbooks", show_default=True,
              help="Directory for the pages (made 0700; pages 0600).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
def runbook(inventory, limit, out_dir, config_file):
    """Write runbook-<site>.html for every site: whom to consult, the internal,
    management and external contacts (CSIRT, authorities) from yoroi_incident_contacts,
    and the first steps. Reads the inventory only; connects to no host.

    Exits 1 when a site lacks contacts or its hosts disagree on them (the pages are
    written all the same), 0 otherwise.
    """
    try:
        settings = resolve({"inventory": inventory}, config_file)
        source = inventory_source(settings.inventory)
    except SettingsError as exc:
        raise click.UsageError(str(exc))
    if source is None:
        raise click.UsageError("runbook needs an inventory (-i): the contacts are its variables")
    try:
        sites = incident.sites(incident.inventory_hostvars(source, limit))
    except (incident.InventoryError, runner.AnsibleNotFound) as exc:
        click.echo("yoroi: %s" % exc, err=True)
        sys.exit(findings.EXIT_ERROR)
    except ValueError as exc:  # a contact that is not one (a newline, an unknown field)
        click.echo("yoroi: %s" % exc, err=True)
        sys.exit(findings.EXIT_ERROR)
    directory = Path(out_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    incomplete = False
    for name, site in sorted(sites.items()):
        path = incident.runbook_file(directory, name)
        findings.write_private(path, incident.render_runbook(site, generated))
        missing = [group for group in incident.GROUPS if not site.contacts[group]]
        if not site.consult:
            missing.insert(0, "whom to consult (yoroi_site_contact)")
        notes = ["no %s contact" % m for m in missing] + site.problems
        incomplete = incomplete or bool(notes)
        click.echo("%s: %s%s" % (name, path, "" if not notes else "  (" + "; ".join(notes) + ")"))
    sys.exit(findings.EXIT_ERROR if incomplete else findings.EXIT_COMPLIANT)
