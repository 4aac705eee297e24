"""The yoroi command: audit, apply, patch, assets, drill, collect, report, runbook, controls, lab."""

from contextlib import contextmanager

import click

from yoroi import __version__
from yoroi.commands._common import EXIT_CODES_HELP
from yoroi.commands.apply import apply
from yoroi.commands.assets import assets
from yoroi.commands.audit import audit
from yoroi.commands.collect import collect
from yoroi.commands.controls import controls
from yoroi.commands.drill import drill
from yoroi.commands.lab import lab
from yoroi.commands.patch import patch
from yoroi.commands.report import report
from yoroi.commands.runbook import runbook
from yoroi.findings import EXIT_USAGE


@contextmanager
def _usage_exit_code():
    """click exits 2 on a usage error, the code of "drift found": give it its own."""
    try:
        yield
    except click.UsageError as exc:
        exc.exit_code = EXIT_USAGE
        raise


class YoroiGroup(click.Group):
    """A click group whose usage errors (its own and its subcommands') exit EXIT_USAGE."""

    def make_context(self, *args, **kwargs):
        with _usage_exit_code():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _usage_exit_code():
            return super().invoke(ctx)


@click.group(cls=YoroiGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="yoroi")
def main():
    """Yoroi: one security baseline for server fleets, head office and branches alike.

    `yoroi audit` reports drift (check mode, nothing changes); `yoroi apply` fixes it with
    the same roles; `yoroi patch` rolls OS updates out in batches; `yoroi assets` keeps the
    fleet asset register; `yoroi drill` proves backups restore; `yoroi collect` takes an
    evidence bundle per host; `yoroi report` renders a saved run again (or drafts an
    incident's first notification); `yoroi runbook` prints each site's incident page;
    `yoroi controls` lists the control catalog; `yoroi lab` runs disposable Debian hosts.
    """


for command in (audit, apply, patch, assets, drill, collect, report, runbook, controls, lab):
    main.add_command(command)
