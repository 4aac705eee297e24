"""yoroi controls: the control catalog."""

import json

import click

from yoroi import collection


@click.command()
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def controls(output):
    """List every control: id, severity, the item of the call for attention it answers, references."""
    catalog = collection.catalog()
    if output == "json":
        click.echo(json.dumps(list(catalog.values()), indent=2))
        return
    for control in catalog.values():
        refs = "; ".join("%s %s" % (k.upper(), ", ".join(v)) for k, v in control.get("references", {}).items())
        click.echo("%-8s %-8s seed %-4s %-16s %s" % (control["id"], control["severity"], control["seed"], control["role"], control["title"]))
        click.echo("%-8s %s" % ("", refs))
