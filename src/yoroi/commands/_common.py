"""Options and the run-and-report flow shared by `audit` and `apply`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from yoroi import findings, report, runner
from yoroi.collection import CollectionNotFound
from yoroi.settings import SettingsError, resolve


def run_options(function):
    options = [
        click.option("-i", "--inventory", help="Ansible inventory; none audits this machine read-only."),
        click.option("-l", "--limit", help="Only these hosts or groups (Ansible pattern)."),
        click.option("-t", "--tags", multiple=True, help="Only these concerns (accounts, password_policy); repeatable."),
        click.option("-f", "--forks", type=int, help="Hosts worked on at once (default 10)."),
        click.option("-o", "--output", type=click.Choice(["text", "json"]), help="What is printed (default text)."),
        click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
                     help="Also write a report; the format follows the suffix: .txt .json .html .xml (JUnit). Repeatable."),
        click.option("-e", "--extra-vars", "extra_vars", multiple=True,
                     help="KEY=VALUE, a JSON object or @FILE, as ansible-playbook takes them (checked like inventory variables). Repeatable."),
        click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr."),
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                     help="Settings file (default ./yoroi.yml or ~/.config/yoroi/config.yml)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


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


def write_reports(document: dict, paths) -> None:
    for path in paths:
        fmt = report.format_for(path)
        Path(path).write_text(report.render(document, fmt))


def execute(mode: str, flags: dict, tags, reports, extra_vars, quiet: bool, config_file, limit) -> None:
    try:
        settings = resolve(flags, config_file)
        for path in reports:
            report.format_for(path)
        request = runner.RunRequest(
            mode=mode,
            inventory=settings.inventory,
            limit=limit,
            tags=list(tags),
            forks=settings.forks,
            serial=settings.serial if mode == "apply" else None,
            extra_vars=parse_extra_vars(extra_vars),
        )
        progress = None if quiet or settings.output == "json" else (lambda line: click.echo(line, err=True))
        document = runner.run(request, progress)
    except (SettingsError, CollectionNotFound, runner.AnsibleNotFound, ValueError) as exc:
        click.echo("yoroi: %s" % exc, err=True)
        sys.exit(findings.EXIT_ERROR)
    saved = findings.save(document, settings.runs_dir)
    write_reports(document, reports)
    click.echo(report.render(document, settings.output), nl=False)
    if settings.output == "text":
        click.echo("(run saved to %s; `yoroi report` renders it again)" % saved, err=True)
    sys.exit(document["exit_code"])
