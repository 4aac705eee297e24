"""yoroi report: render a saved run again."""

import sys
from pathlib import Path

import click

from yoroi import findings
from yoroi import report as rendering
from yoroi.commands._common import EXIT_CODES_HELP, write_report
from yoroi.settings import SettingsError, resolve


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-f", "--format", "fmt", type=click.Choice(rendering.FORMATS), default="text", show_default=True)
@click.option("--run", "run_file", type=click.Path(exists=True, dir_okay=False), help="A saved run (default: the last one).")
@click.option("-w", "--write", "target", type=click.Path(dir_okay=False),
              help="Write to this file (0600) instead of stdout.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file, for state_dir (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
def report(fmt, run_file, target, config_file):
    """Render the last run (or --run FILE) as text, JSON, HTML or JUnit XML.

    Exits with the run's own code, so CI can gate on a saved run.
    """
    try:
        settings = resolve({}, config_file)
        path = Path(run_file) if run_file else settings.runs_dir / "last.json"
        if not path.exists():
            raise click.UsageError("no saved run at %s: run `yoroi audit` first" % path)
        document = findings.load(path)
    except (SettingsError, ValueError) as exc:
        raise click.UsageError(str(exc))
    text = rendering.render(document, fmt)
    if target:
        write_report(target, text)
    else:
        click.echo(text, nl=False)
    sys.exit(document["exit_code"])
