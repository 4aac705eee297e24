"""Lab base images, built locally (no registry is reachable).

``debootstrap --variant=minbase --include=PKGS RELEASE DIR MIRROR`` into a
scratch folder, a few lab-only touches to the tree, then
``tar -C DIR -c . | podman import - localhost/yoroi-lab:RELEASE``.

The image carries the label ``org.yoroi.lab.format=<LAB_FORMAT_VERSION>``;
an image whose label differs is rebuilt, so bump :data:`LAB_FORMAT_VERSION`
whenever the recipe below changes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .mirror import Mirrors, find_mirrors, render_sources_list
from .podman import podman
from .state import state_root

LAB_FORMAT_VERSION = "3"
LABEL_FORMAT = "org.yoroi.lab.format"
LABEL_RELEASE = "org.yoroi.lab.release"
IMAGE_REPO = "localhost/yoroi-lab"
RELEASES = ("bookworm", "trixie")

BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "openssh-server", "sudo",
    "rsyslog", "cron", "iproute2", "procps", "pamtester", "less",
    "ca-certificates",
)
# Packages that keep login records where the release really keeps them.
# bookworm: login (lastlog) and util-linux (last) are in minbase already.
# trixie: lastlog moved to lastlog2 (sqlite), last(1) moved to wtmpdb (sqlite).
RELEASE_PACKAGES = {
    "bookworm": (),
    "trixie": ("lastlog2", "libpam-lastlog2", "wtmpdb", "libpam-wtmpdb"),
}

# Lab-only: each container gets its own SSH host keys on first boot instead
# of every lab host sharing the keys generated at image build time.
HOSTKEY_UNIT_NAME = "yoroi-lab-ssh-hostkeys.service"
HOSTKEY_UNIT = """\
# yoroi lab only: generate this host's own SSH host keys on first boot.
[Unit]
Description=Generate SSH host keys (yoroi lab)
Before=ssh.service ssh.socket
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


def image_name(release: str) -> str:
    return f"{IMAGE_REPO}:{release}"


def packages_for(release: str) -> list[str]:
    if release not in RELEASES:
        raise ValueError(f"unsupported release {release!r}; choose one of {', '.join(RELEASES)}")
    return [*BASE_PACKAGES, *RELEASE_PACKAGES[release]]


def debootstrap_argv(release: str, target: str, mirror: str) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(packages_for(release)),
        release,
        target,
        mirror,
    ]


def image_format(release: str) -> str | None:
    """The format label of the cached image, or None when there is none."""
    res = podman("image", "inspect", "--format", "{{json .Labels}}", image_name(release), check=False)
    if res.returncode != 0:
        return None
    import json

    labels = json.loads(res.stdout.strip() or "null") or {}
    return labels.get(LABEL_FORMAT, "")


def image_is_current(release: str) -> bool:
    return image_format(release) == LAB_FORMAT_VERSION


@contextmanager
def _build_lock(release: str):
    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".build-{release}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def customize_tree(root: Path, release: str, mirrors: Mirrors) -> None:
    """Lab-only touches to the debootstrapped tree before it is imported."""
    apt = root / "etc/apt"
    (apt / "sources.list").write_text(render_sources_list(mirrors, release))
    for extra in (apt / "sources.list.d").glob("*"):
        extra.unlink()
    # Per-container identity: host keys and machine-id are made at first boot.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    unit_dir = root / "etc/systemd/system"
    (unit_dir / HOSTKEY_UNIT_NAME).write_text(HOSTKEY_UNIT)
    wants = unit_dir / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / HOSTKEY_UNIT_NAME
    if not link.exists():
        link.symlink_to(f"/etc/systemd/system/{HOSTKEY_UNIT_NAME}")
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    for name in ("etc/hostname",):
        p = root / name
        if p.exists():
            p.write_text("localhost\n")
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def build_image(
    release: str = "bookworm",
    mirror: str | None = None,
    force: bool = False,
    log=None,
) -> str:
    """Build ``localhost/yoroi-lab:RELEASE`` unless a current one is cached.

    Returns the image name. ``log`` is an optional callable taking a string.
    """
    packages_for(release)  # validates the release
    name = image_name(release)
    say = log or (lambda msg: None)
    with _build_lock(release):
        if not force and image_is_current(release):
            say(f"image {name} is current (format {LAB_FORMAT_VERSION})")
            return name
        mirrors = find_mirrors(mirror)
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (Debian package 'debootstrap')")
        started = time.monotonic()
        workdir = tempfile.mkdtemp(prefix=f"yoroi-lab-{release}-", dir="/var/tmp")
        target = os.path.join(workdir, "root")
        try:
            say(f"debootstrap {release} from {mirrors.archive} ...")
            proc = subprocess.run(
                debootstrap_argv(release, target, mirrors.archive),
                capture_output=True,
                text=True, check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(
                    f"debootstrap failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-3000:]}"
                )
            customize_tree(Path(target), release, mirrors)
            say(f"importing {name} ...")
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "--xattrs", "-C", target, "-c", "."],
                stdout=subprocess.PIPE,
            )
            try:
                podman(
                    "import",
                    "--change", f"LABEL {LABEL_FORMAT}={LAB_FORMAT_VERSION}",
                    "--change", f"LABEL {LABEL_RELEASE}={release}",
                    "--change", 'CMD ["/sbin/init"]',
                    "--change", "STOPSIGNAL SIGRTMIN+3",
                    "-",
                    name,
                    stdin=tar.stdout,
                )
            finally:
                tar.stdout.close()
                if tar.wait() != 0:
                    raise RuntimeError(f"tar of {target} failed ({tar.returncode})")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        say(f"built {name} in {time.monotonic() - started:.0f}s")
        return name
