"""``yoroi lab``: a disposable lab of real Debian hosts in podman containers."""

from __future__ import annotations

import json
import sys

import click

from yoroi import lab as _lab

RELEASE = click.Choice(list(_lab.RELEASES))


def _log(msg: str) -> None:
    click.echo(msg, err=True)


@click.group(name="lab")
def lab() -> None:
    """Disposable lab of real Debian hosts (podman + systemd, seeded as neglected servers)."""


@lab.command()
@click.option("--release", type=RELEASE, default="bookworm", show_default=True)
@click.option("--mirror", metavar="URL", default=None,
              help="Debian mirror (default: $YOROI_LAB_MIRROR, then this machine's apt sources).")
@click.option("--force", is_flag=True, help="Rebuild even if a current image is cached.")
def build(release: str, mirror: str | None, force: bool) -> None:
    """Build (once) the image localhost/yoroi-lab:RELEASE."""
    try:
        click.echo(_lab.build_image(release, mirror, force=force, log=_log))
    except (_lab.PodmanMissing, _lab.MirrorNotFound, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


@lab.command()
@click.option("--name", default="default", show_default=True)
@click.option("--hosts", "count", type=click.IntRange(1, 50), default=1, show_default=True)
@click.option("--release", type=RELEASE, default="bookworm", show_default=True)
@click.option("--mirror", metavar="URL", default=None,
              help="Debian mirror for building the image if it is missing (default: $YOROI_LAB_MIRROR, "
                   "then this machine's apt sources).")
def up(name: str, count: int, release: str, mirror: str | None) -> None:
    """Start seeded lab hosts; print the Ansible inventory path."""
    try:
        result = _lab.up(name, hosts=count, release=release, mirror=mirror, log=_log)
    except (_lab.PodmanMissing, _lab.MirrorNotFound, _lab.LabError, _lab.PodmanError,
            ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(result.inventory_path))


@lab.command()
@click.option("--name", default="default", show_default=True)
def down(name: str) -> None:
    """Remove exactly what `lab up` created for NAME (idempotent)."""
    try:
        removed = _lab.down(name)
    except (_lab.PodmanMissing, _lab.PodmanError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"lab {name} removed" if removed else f"lab {name} is not up")


@lab.command()
@click.option("--name", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the full status as JSON.")
def status(name: str, as_json: bool) -> None:
    """Show a lab's hosts, ports and container states."""
    try:
        info = _lab.status(name)
    except (_lab.PodmanMissing, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if info is None:
        click.echo(f"lab {name} is not up")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"lab {info['name']} ({info['release']}), network {info['network']}"
               f"{'' if info['network_exists'] else ' (missing)'}")
    for h in info["hosts"]:
        click.echo(f"  {h['name']:<24} {h['container']:<28} 127.0.0.1:{h['port']}  "
                   f"{info['container_states'].get(h['container'], '?')}")
    click.echo(f"inventory: {info['inventory']}")
