"""Options and the run-and-report flow shared by `audit` and `apply`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from yoroi import collection, findings, report, runner
from yoroi.collection import CollectionNotFound
from yoroi.settings import SettingsError, inventory_source, resolve

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join("  %-3d %s" % item for item in findings.EXIT_CODES)


def _concerns() -> list[str]:
    try:
        return collection.concerns()
    except (CollectionNotFound, OSError, yaml.YAMLError):
        return []


def _tags_help() -> str:
    names = _concerns()
    listed = " (%s)" % ", ".join(names) if names else ""
    return "Only these concerns%s; repeatable." % listed


INVENTORY_HELP = {
    "audit": "Ansible inventory: a file, a directory, or hosts as host1,host2, "
             "(default: this machine, read-only).",
    "apply": "Ansible inventory: a file, a directory, or hosts as host1,host2, (required).",
}


def run_options(mode: str):
    """The options of `audit` and `apply`; MODE says what no inventory means."""

    def decorate(function):
        options = [
            click.option("-i", "--inventory", help=INVENTORY_HELP[mode]),
            click.option("-l", "--limit", help="Only these hosts or groups (Ansible pattern)."),
            click.option("-t", "--tags", multiple=True, help=_tags_help()),
            click.option("-f", "--forks", type=int, help="Hosts worked on at once (default 10)."),
            click.option("-o", "--output", type=click.Choice(["text", "json"]), help="What is printed (default text)."),
            click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
                         help="Also write a report (0600); the format follows the suffix: .txt .json .html .xml (JUnit). Repeatable."),
            click.option("-e", "--extra-vars", "extra_vars", multiple=True,
                         help="KEY=VALUE, a JSON object or @FILE, as ansible-playbook takes them (checked like inventory variables). Repeatable."),
            click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr."),
            click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                         help="Settings file (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml)."),
        ]
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def parse_extra_vars(values) -> dict:
    """-e as ansible-playbook takes it: KEY=VALUE (a string), a JSON object, or @FILE (YAML)."""
    result = {}
    for value in values:
        value = value.strip()
        if value.startswith("@"):
            try:
                data = yaml.safe_load(Path(value[1:]).read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise click.BadParameter("cannot read %s: %s" % (value[1:], exc), param_hint="--extra-vars")
        elif value.startswith("{"):
            try:
                data = json.loads(value)
            except ValueError as exc:
                raise click.BadParameter("%r is not a JSON object: %s" % (value, exc), param_hint="--extra-vars")
        elif "=" in value:
            key, text = value.split("=", 1)
            data = {key.strip(): text}
        else:
            raise click.BadParameter("%r is not KEY=VALUE, a JSON object or @FILE" % value, param_hint="--extra-vars")
        if not isinstance(data, dict):
            raise click.BadParameter("%r does not give a mapping" % value, param_hint="--extra-vars")
        result.update(data)
    return result


def check_tags(tags) -> list[str]:
    """Each --tags value (or comma-separated part) must name a concern of the baseline."""
    names = _concerns()
    wanted = [part.strip() for value in tags for part in value.split(",") if part.strip()]
    unknown = [tag for tag in wanted if names and tag not in names]
    if unknown:
        raise click.BadParameter("%s: not a concern of the baseline (%s)" % (", ".join(unknown), ", ".join(names)),
                                 param_hint="--tags")
    return wanted


def write_report(path, text: str) -> None:
    try:
        findings.write_private(path, text)
    except OSError as exc:
        click.echo("yoroi: cannot write %s: %s" % (path, exc), err=True)
        sys.exit(findings.EXIT_ERROR)


def prepare(mode: str, flags: dict, tags, reports, extra_vars, config_file, limit):
    """(settings, run request) from the options; a wrong option, value or file is a usage
    error (click.UsageError), raised before anything runs."""
    try:
        settings = resolve(flags, config_file)
        inventory = inventory_source(settings.inventory)
    except SettingsError as exc:
        raise click.UsageError(str(exc))
    if mode == "apply" and inventory is None:
        raise click.UsageError("apply needs an inventory (-i); only audit runs on this machine by default")
    for path in reports:
        try:
            report.format_for(path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--report")
        if not Path(path).absolute().parent.is_dir():
            raise click.BadParameter("%s: no such directory" % Path(path).absolute().parent, param_hint="--report")
    request = runner.RunRequest(
        mode=mode,
        inventory=inventory,
        limit=limit,
        tags=check_tags(tags),
        forks=settings.forks,
        serial=settings.serial if mode == "apply" else None,
        extra_vars=parse_extra_vars(extra_vars),
    )
    return settings, request


def execute(settings, request, reports, quiet: bool, after_run=None, text_report: bool = True) -> None:
    """Run, save the run, write the reports, print, and exit with the run's code.
    ``after_run(document)``, when given, may add to the document before it is saved and
    returns lines printed after the text report (`yoroi drill`: each host's seconds);
    ``text_report=False`` prints those lines alone in text mode (`yoroi collect`: no controls)."""
    progress = None if quiet or settings.output == "json" else (lambda line: click.echo(line, err=True))
    try:
        document = runner.run(request, progress)
    except (CollectionNotFound, runner.AnsibleNotFound) as exc:
        click.echo("yoroi: %s" % exc, err=True)
        sys.exit(findings.EXIT_ERROR)
    epilogue = after_run(document) if after_run else []
    saved = findings.save(document, settings.runs_dir)
    for path in reports:
        write_report(path, report.render(document, report.format_for(path)))
    if text_report or settings.output != "text":
        click.echo(report.render(document, settings.output), nl=False)
    if settings.output == "text":
        for line in epilogue:
            click.echo(line)
        click.echo("(run saved to %s; `yoroi report` renders it again)" % saved, err=True)
    sys.exit(document["exit_code"])
