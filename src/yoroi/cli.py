"""The yoroi command: audit, apply, report, controls, lab."""

import click

from yoroi import __version__
from yoroi.commands.apply import apply
from yoroi.commands.audit import audit
from yoroi.commands.controls import controls
from yoroi.commands.lab import lab
from yoroi.commands.report import report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="yoroi")
def main():
    """Yoroi: one security baseline for server fleets, head office and branches alike.

    `yoroi audit` reports drift (check mode, nothing changes); `yoroi apply` fixes it with
    the same roles; `yoroi report` renders the last run again.
    """


for command in (audit, apply, report, controls, lab):
    main.add_command(command)
