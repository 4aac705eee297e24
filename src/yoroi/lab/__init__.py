"""Yoroi's disposable lab of real Debian hosts (podman + systemd containers).

    from yoroi import lab
    l = lab.up("demo", hosts=2, release="bookworm")   # -> Lab
    l.inventory_path, [(h.name, h.container, h.port, h.user, h.key) for h in l.hosts]
    lab.down("demo")

See :mod:`yoroi.lab.seed` for what a lab host looks like (accounts, login
records and their on-disk formats per release).
"""

from .hosts import Lab, LabError, LabHost, down, load, render_inventory, status, up
from .images import LAB_FORMAT_VERSION, RELEASES, build_image, image_is_current, image_name
from .mirror import Mirrors, MirrorNotFound, find_mirrors
from .podman import CONTAINERS_CONF, PodmanError, PodmanMissing, podman
from .state import state_root

__all__ = [
    "CONTAINERS_CONF", "LAB_FORMAT_VERSION", "Lab", "LabError", "LabHost", "MirrorNotFound",
    "Mirrors", "PodmanError", "PodmanMissing", "RELEASES", "build_image", "down",
    "find_mirrors", "image_is_current", "image_name", "load", "podman", "render_inventory",
    "state_root", "status", "up",
]
