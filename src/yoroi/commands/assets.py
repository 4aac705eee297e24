"""yoroi assets: the fleet asset register, and what changed since the previous one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from yoroi import assets as register_mod
from yoroi import findings, report, runner
from yoroi.collection import CollectionNotFound
from yoroi.commands._common import EXIT_CODES_HELP, write_report
from yoroi.settings import SettingsError, inventory_source, resolve


def _previous(compare_file, assets_dir: Path):
    """The register to compare with: --compare FILE, else the last saved, else None."""
    path = Path(compare_file) if compare_file else assets_dir / "last.json"
    if not compare_file and not path.exists():
        return None
    try:
        return register_mod.load(path)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--compare")


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-i", "--inventory", required=True,
              help="Ansible inventory: a file, a directory, or hosts as host1,host2, (required).")
@click.option("-l", "--limit", help="Only these hosts or groups (Ansible pattern).")
@click.option("-f", "--forks", type=int, help="Hosts worked on at once (default 10).")
@click.option("-o", "--output", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="What is printed: the differences (text), or the register (json, csv).")
@click.option("--write", "targets", multiple=True, type=click.Path(dir_okay=False),
              help="Also write the register (0600); .json or .csv. Repeatable.")
@click.option("--compare", "compare_file", type=click.Path(exists=True, dir_okay=False),
              help="The register to compare with (default: the last one saved).")
@click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
              help="Also write a report of the differences, with the register in HTML (0600); "
                   ".txt .json .html .xml. Repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
def assets(inventory, limit, forks, output, targets, compare_file, reports, quiet, config_file):
    """Register every asset of the inventory and report what changed since the last register.

    Hosts answer one read-only module call each (OS, kernel, packages, pending security
    updates, firmware, listening ports, human and privileged accounts, last patch);
    appliances join from what the inventory declares. The register is saved under the state
    directory (assets/); new or removed assets (AST-001), new listening ports (AST-002) and
    new privileged users (AST-003) are findings. Nothing on any host changes.
    """
    try:
        settings = resolve({"inventory": inventory, "forks": forks}, config_file)
        source = inventory_source(settings.inventory)
    except SettingsError as exc:
        raise click.UsageError(str(exc))
    for path, formats in [(t, register_mod.format_for) for t in targets] + [(r, report.format_for) for r in reports]:
        try:
            formats(path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--write" if path in targets else "--report")
        if not Path(path).absolute().parent.is_dir():
            raise click.BadParameter("%s: no such directory" % Path(path).absolute().parent)
    assets_dir = Path(settings.state_dir) / "assets"
    previous = _previous(compare_file, assets_dir)
    request = runner.RunRequest(mode="assets", inventory=source, limit=limit, forks=settings.forks, playbook="assets")
    progress = None if quiet or output != "text" else (lambda line: click.echo(line, err=True))
    try:
        document = runner.run(request, progress)
    except (CollectionNotFound, runner.AnsibleNotFound) as exc:
        click.echo("yoroi: %s" % exc, err=True)
        sys.exit(findings.EXIT_ERROR)
    register = register_mod.build(document)
    differences = register_mod.compare(previous, register)
    document.pop("assets", None)  # kept once, as the register
    document["findings"] = runner._enrich(differences, document["hosts"])
    document["summary"] = findings.summarize(document["findings"])
    document["register"] = register
    document["exit_code"] = findings.exit_code(document)
    if register["assets"]:
        saved = register_mod.save(register, assets_dir)
        findings.save(document, settings.runs_dir)
    for path in targets:
        write_report(path, register_mod.RENDERERS[register_mod.format_for(path)](register))
    for path in reports:
        write_report(path, report.render(document, report.format_for(path)))
    if output == "text":
        click.echo(report.render(document, "text"), nl=False)
        if register["assets"] and not quiet:
            click.echo("(register saved to %s; the run under %s)" % (saved, settings.runs_dir), err=True)
    else:
        click.echo(register_mod.RENDERERS[output](register), nl=False)
    sys.exit(document["exit_code"])
