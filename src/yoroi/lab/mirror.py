"""Find the Debian mirror this machine already uses.

No mirror or registry host name is written anywhere in the project: the lab
reads the machine's own apt configuration (deb822 ``*.sources`` files under
``/etc/apt/sources.list.d`` and the one-line ``/etc/apt/sources.list`` /
``*.list`` files), or takes ``--mirror`` / ``$YOROI_LAB_MIRROR``.

Two URIs matter:

* the *main archive*: a ``deb`` source whose suites include a Debian release
  (``bookworm``, ``bookworm-updates``, ``stable``...) and whose components
  include ``main``; third-party repositories (suite ``nodistro``, ``cloud-sdk-*``)
  are ignored because their suites are not Debian suites;
* the *security archive*: a ``deb`` source with a ``<release>-security`` suite
  (or the old ``<release>/updates``). Optional.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

ENV_MIRROR = "YOROI_LAB_MIRROR"
ENV_SECURITY_MIRROR = "YOROI_LAB_SECURITY_MIRROR"

DEBIAN_SUITES = frozenset(
    {
        "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
        "oldoldstable", "oldstable", "stable", "testing", "unstable",
        "experimental",
    }
)
_SUITE_SUFFIXES = ("-updates", "-backports", "-proposed-updates", "-backports-sloppy")
_USABLE_SCHEMES = ("http://", "https://", "ftp://")


class MirrorNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class AptSource:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class Mirrors:
    archive: str
    security: str | None = None


def _base_suite(suite: str) -> str:
    for suffix in _SUITE_SUFFIXES:
        if suite.endswith(suffix):
            return suite[: -len(suffix)]
    return suite


def is_security_suite(suite: str) -> bool:
    return suite.endswith("-security") or suite.endswith("/updates")


def is_debian_security_suite(suite: str) -> bool:
    if suite.endswith("-security"):
        return suite[: -len("-security")] in DEBIAN_SUITES
    if suite.endswith("/updates"):
        return suite.split("/")[0] in DEBIAN_SUITES
    return False


def is_debian_archive_suite(suite: str) -> bool:
    return not is_security_suite(suite) and _base_suite(suite) in DEBIAN_SUITES


def parse_deb822(text: str) -> list[AptSource]:
    """Parse a deb822 ``.sources`` file into sources (one per stanza)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key: str | None = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, last_key = {}, None
            continue
        if raw[0] in " \t":  # continuation line
            if last_key is not None and raw.strip() != ".":
                current[last_key] += " " + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        last_key = key.strip().lower()
        current[last_key] = value.strip()
    if current:
        stanzas.append(current)

    sources = []
    for st in stanzas:
        enabled = st.get("enabled", "yes").strip().lower() not in ("no", "false", "0")
        sources.append(
            AptSource(
                types=tuple(st.get("types", "").split()),
                uris=tuple(st.get("uris", "").split()),
                suites=tuple(st.get("suites", "").split()),
                components=tuple(st.get("components", "").split()),
                enabled=enabled,
            )
        )
    return sources


def parse_one_line(text: str) -> list[AptSource]:
    """Parse the one-line format (``deb [opts] URI SUITE COMPONENT...``)."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        kind = words.pop(0)
        if kind not in ("deb", "deb-src"):
            continue
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            if words:
                words.pop(0)
        if len(words) < 2:
            continue
        uri, suite, *components = words
        sources.append(AptSource((kind,), (uri,), (suite,), tuple(components)))
    return sources


def _usable(uri: str) -> bool:
    return uri.startswith(_USABLE_SCHEMES)


def pick_mirrors(sources: list[AptSource]) -> Mirrors:
    """Choose the main archive and (optional) security archive URIs."""
    archive = security = None
    for src in sources:
        if not src.enabled or "deb" not in src.types or "main" not in src.components:
            continue
        uris = [u.rstrip("/") for u in src.uris if _usable(u)]
        if not uris:
            continue
        if archive is None and any(is_debian_archive_suite(s) for s in src.suites):
            archive = uris[0]
        if security is None and any(is_debian_security_suite(s) for s in src.suites):
            security = uris[0]
    if archive is None:
        raise MirrorNotFound(
            "no Debian main archive found in the apt configuration; "
            f"pass --mirror URL or set ${ENV_MIRROR}"
        )
    return Mirrors(archive=archive, security=security)


def read_apt_sources(root: str | os.PathLike = "/") -> list[AptSource]:
    """All apt sources configured under ``root`` (deb822 files first)."""
    root = Path(root)
    sources: list[AptSource] = []
    for path in sorted(glob.glob(str(root / "etc/apt/sources.list.d/*.sources"))):
        sources += parse_deb822(Path(path).read_text(errors="replace"))
    main_list = root / "etc/apt/sources.list"
    if main_list.exists():
        sources += parse_one_line(main_list.read_text(errors="replace"))
    for path in sorted(glob.glob(str(root / "etc/apt/sources.list.d/*.list"))):
        sources += parse_one_line(Path(path).read_text(errors="replace"))
    return sources


def find_mirrors(mirror: str | None = None, root: str | os.PathLike = "/") -> Mirrors:
    """The mirrors the lab uses: ``mirror`` > ``$YOROI_LAB_MIRROR`` > apt config.

    The security archive comes from ``$YOROI_LAB_SECURITY_MIRROR`` or the apt
    configuration; it is None when neither has one.
    """
    override = mirror or os.environ.get(ENV_MIRROR)
    security_override = os.environ.get(ENV_SECURITY_MIRROR)
    try:
        found = pick_mirrors(read_apt_sources(root))
    except MirrorNotFound:
        if not override:
            raise
        found = Mirrors(archive=override.rstrip("/"), security=None)
    archive = override.rstrip("/") if override else found.archive
    security = security_override.rstrip("/") if security_override else found.security
    return Mirrors(archive=archive, security=security)


def render_sources_list(mirrors: Mirrors, release: str) -> str:
    """The ``/etc/apt/sources.list`` written into lab images."""
    lines = [
        "# Written by yoroi lab: the same mirror the controller uses.",
        f"deb {mirrors.archive} {release} main",
        f"deb {mirrors.archive} {release}-updates main",
    ]
    if mirrors.security:
        lines.append(f"deb {mirrors.security} {release}-security main")
    return "\n".join(lines) + "\n"
