"""yoroi collect: a read-only incident-response triage bundle from each host.

The playbook (playbooks/evidence.yml) fetches each host's bundle into a private directory
of this process under a name derived from a hash of the host's name; here each is checked
and written as ``<out>/<host>-<UTC stamp>.tar.gz`` with ``<...>.manifest.json`` beside it
(both 0600, the directory 0700): the SHA-256 of the tarball and of each member, who
collected it, when and from where, and the module's per-step timings and truncations.
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import os
import re
import socket
import sys
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import click

from yoroi import __version__
from yoroi.commands._common import EXIT_CODES_HELP, execute, prepare
from yoroi.findings import EXIT_COMPLIANT, EXIT_ERROR

MANIFEST_SCHEMA = "yoroi.evidence-manifest/1"
# A host name becomes part of a file name only when it is made of these (no "/", no "..").
SAFE_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
CHUNK = 1024 * 1024


def safe_host(name: str) -> bool:
    return bool(SAFE_HOST.match(name)) and ".." not in name


def fetched_name(host: str) -> str:
    """The file the playbook fetches a host's bundle to (`inventory_hostname | hash('sha256')`)."""
    return hashlib.sha256(host.encode("utf-8")).hexdigest() + ".tar.gz"


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def member_hashes(path) -> dict:
    """{member name: SHA-256} of every regular member of a tar.gz."""
    hashes = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                digest = hashlib.sha256()
                handle = tar.extractfile(member)
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(chunk)
                hashes[member.name] = digest.hexdigest()
    return hashes


def controller_origin() -> dict:
    """Who collected, from where: the controller's user, host name and addresses."""
    hostname = socket.gethostname()
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(hostname, None)})
    except OSError:
        addresses = []
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "uid": os.getuid(), "hostname": socket.getfqdn(hostname), "addresses": addresses}


def write_new(directory: Path, name: str, source) -> tuple[Path, str]:
    """Write ``directory/name`` as a new file (O_EXCL|O_NOFOLLOW, 0600) from ``source``
    (bytes or a binary file): an existing file or a symlink there is an error, never
    overwritten nor followed. ``name`` is one component. Returns (path, SHA-256 written)."""
    if "/" in name or name in (".", "..") or not name:
        raise ValueError("%r is not a file name" % name)
    reader = io.BytesIO(source) if isinstance(source, bytes) else source
    digest = hashlib.sha256()
    top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=top)
        try:
            os.fchmod(fd, 0o600)
            for chunk in iter(lambda: reader.read(CHUNK), b""):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        os.close(top)
    return directory / name, digest.hexdigest()


def prepare_out(out) -> Path:
    directory = Path(out)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def store(out: Path, host: str, fetched: Path, result: dict, stamp: str, origin: dict) -> Path:
    """The fetched bundle of ``host`` written into ``out`` with its manifest; returns the
    bundle's path. A host name unfit for a file name raises ValueError before any write."""
    if not safe_host(host):
        raise ValueError("host name %r cannot be part of a file name" % host)
    base = "%s-%s" % (host, stamp)
    with open(fetched, "rb") as source:
        bundle, sha256 = write_new(out, base + ".tar.gz", source)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "host": host,
        "bundle": bundle.name,
        "sha256": sha256,
        "size": bundle.stat().st_size,
        "members": member_hashes(bundle),
        "collected": {"at": stamp, "by": origin["user"], "uid": origin["uid"], "from": origin["hostname"],
                      "addresses": origin["addresses"], "connection_seen_by_host": result.get("collector_connection", ""),
                      "yoroi_version": __version__},
        "seconds": result.get("seconds"),
        "timings": result.get("timings") or [],
        "truncated": result.get("truncated") or [],
        "errors": result.get("errors") or [],
        "deleted_binaries": result.get("deleted_binaries") or [],
        "members_as_hashed_on_host": result.get("members") or {},
    }
    write_new(out, base + ".manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return bundle


def manifest_path(bundle) -> Path:
    bundle = Path(bundle)
    name = bundle.name[: -len(".tar.gz")] if bundle.name.endswith(".tar.gz") else bundle.name
    return bundle.with_name(name + ".manifest.json")


def verify(bundle) -> list[str]:
    """Problems of a bundle against its manifest (empty when it verifies)."""
    try:
        manifest = json.loads(manifest_path(bundle).read_text())
    except (OSError, ValueError) as exc:
        return ["cannot read the manifest %s: %s" % (manifest_path(bundle), exc)]
    if manifest.get("schema") != MANIFEST_SCHEMA:
        return ["%s is not a Yoroi evidence manifest" % manifest_path(bundle)]
    problems = []
    try:
        if sha256_file(bundle) != manifest.get("sha256"):
            problems.append("the tarball's SHA-256 differs from the manifest's")
        members = member_hashes(bundle)
    except (OSError, tarfile.TarError, EOFError) as exc:
        return problems + ["cannot read %s: %s" % (bundle, exc)]
    expected = manifest.get("members") or {}
    for name in sorted(set(expected) | set(members)):
        if name not in members:
            problems.append("member missing: %s" % name)
        elif name not in expected:
            problems.append("member not in the manifest: %s" % name)
        elif members[name] != expected[name]:
            problems.append("member differs: %s" % name)
    return problems


def store_all(document: dict, fetch_dir: Path, out: Path) -> list[str]:
    """Every reached host's bundle stored; a line per host (seconds, path, or why not).
    A host without a stored bundle makes the run's exit code an error."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    origin = controller_origin()
    results = document.get("evidence") or {}
    lines, stored = [], {}
    if document.get("error"):
        lines.append("yoroi: %s" % document["error"])
    for host in sorted(document.get("hosts") or {}):
        status = document["hosts"][host].get("status", "?")
        fetched = fetch_dir / fetched_name(host)
        if status != "ok" or host not in results or not fetched.is_file():
            errors = document["hosts"][host].get("errors") or []
            why = status if status != "ok" else "no bundle fetched"
            detail = ": " + errors[-1][:300] if errors else ""
            lines.append("collect on %s: NOT collected (%s)%s" % (host, why, detail))
            document["exit_code"] = EXIT_ERROR
            continue
        try:
            path = store(out, host, fetched, results[host], stamp, origin)
        except (OSError, ValueError, tarfile.TarError) as exc:
            lines.append("collect on %s: NOT stored (%s)" % (host, exc))
            document["exit_code"] = EXIT_ERROR
            continue
        stored[host] = str(path)
        deleted = len(results[host].get("deleted_binaries") or [])
        lines.append("collect on %s took %.1f s: %s%s" % (host, float(results[host].get("seconds") or 0), path,
                                                          " (%d process(es) run a deleted binary)" % deleted
                                                          if deleted else ""))
    document["evidence_bundles"] = stored
    # no findings in a collection: it succeeded when every host's bundle is stored
    if not document.get("error") and document.get("hosts") and len(stored) == len(document["hosts"]):
        document["exit_code"] = EXIT_COMPLIANT
    else:
        document["exit_code"] = EXIT_ERROR
    return lines


@click.command(epilog=EXIT_CODES_HELP)
@click.option("-i", "--inventory", help="Ansible inventory: a file, a directory, or hosts as host1,host2, (required).")
@click.option("-l", "--limit", help="Only these hosts or groups (Ansible pattern).")
@click.option("-f", "--forks", type=int, help="Hosts collected from at once (default 10).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), help="What is printed (default text).")
@click.option("--out", "out", default="evidence", show_default=True, type=click.Path(file_okay=False),
              help="Directory of the bundles and manifests (made 0700).")
@click.option("--since", "since", type=click.IntRange(min=0), default=7, show_default=True,
              help="Days of logs and of recently changed files collected.")
@click.option("--verify", "verify_bundle", type=click.Path(exists=True, dir_okay=False),
              help="Check a collected bundle against its manifest instead of collecting.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before collecting.")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True,
              help="KEY=VALUE, a JSON object or @FILE, as ansible-playbook takes them. Repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (default ./yoroi.yml, ./.yoroi.yml or ~/.config/yoroi/config.yml).")
def collect(inventory, limit, forks, output, out, since, verify_bundle, yes, extra_vars, quiet, config_file):
    """Incident-response evidence: a read-only triage bundle from each host.

    In order of volatility: processes (with their binaries' SHA-256, deleted ones
    flagged), sockets, sessions, then authentication logs, cron, systemd timers and units,
    kernel modules, SSH authorized keys, recently changed files and a bodyfile timeline
    (mactime). Each host's bundle is written to --out as <host>-<UTC time>.tar.gz with a
    SHA-256 manifest; prints how long each host took. Nothing changes on the hosts but a
    private staging directory, always removed.
    """
    if verify_bundle:
        problems = verify(verify_bundle)
        for line in problems:
            click.echo("%s: %s" % (verify_bundle, line))
        if not problems:
            click.echo("%s: verifies against %s" % (verify_bundle, manifest_path(verify_bundle)))
        sys.exit(EXIT_ERROR if problems else EXIT_COMPLIANT)
    settings, request = prepare("collect", {"inventory": inventory, "forks": forks, "output": output},
                                (), (), extra_vars, config_file, limit)
    if request.inventory is None:
        raise click.UsageError("collect needs an inventory (-i)")
    if not yes:
        where = request.inventory + (" (limit %s)" % limit if limit else "")
        click.confirm("Collect evidence from %s into %s?" % (where, out), abort=True)
    out_dir = prepare_out(out)
    request.playbook = "evidence"
    with tempfile.TemporaryDirectory(prefix="yoroi-fetch-") as fetch_dir:
        request.extra_vars["yoroi_evidence_fetch_dir"] = fetch_dir
        request.extra_vars["yoroi_evidence_since_days"] = since
        execute(settings, request, (), quiet,
                after_run=lambda document: store_all(document, Path(fetch_dir), out_dir), text_report=False)
