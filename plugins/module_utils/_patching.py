# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OS patching: pending updates, reboots, service restarts, unattended upgrades, holds,
the maintenance window and the health of a host after patching.

Pure functions over the texts the module reads once: ``apt-get -s dist-upgrade``
(LC_ALL=C), the headers of apt's Release files, ``/run/reboot-required.pkgs``,
``needrestart -b``, ``apt-config dump`` and ``apt-mark showhold``.

A pending update is a security update when the origin of its candidate is a security
suite: a suite ending in ``-security`` or the label ``Debian-Security``, which is what
unattended-upgrades' default ``Origins-Pattern`` on Debian selects
(``origin=Debian,codename=${distro_codename}-security,label=Debian-Security``).

How long a security update has been pending is taken from the time of the Release file
that offers it: apt gives a downloaded index the server's Last-Modified time, so it is when
that suite last changed. A package pending since before the suite's last change counts as
younger than it is, never older: PAT-001 errs towards passing, never towards a false alarm.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._assets import parse_apt_simulation
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, PASS, SKIPPED, finding, fold

CONTROLS = {
    "PAT-001": "no security update pending longer than the limit",
    "PAT-002": "other updates pending as the policy allows",
    "PAT-003": "no reboot pending",
    "PAT-004": "no service running outdated code",
    "PAT-005": "unattended security upgrades as the site's policy says",
    "PAT-006": "the hold list applied",
}
HEALTH_CONTROL = "PAT-007"
WINDOW_CONTROL = "PAT-008"

UPGRADE = ("security", "all")
UNATTENDED = ("report", "enabled", "disabled")
AUTO_UPGRADES = "/etc/apt/apt.conf.d/20auto-upgrades"
REBOOT_REQUIRED = "/run/reboot-required"
DAY = 86400.0

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# one window: days (a day, a list, or a range) and a time span; a span that ends at or
# before it starts runs past midnight into the next day
WINDOW = re.compile(r"^(?P<days>[A-Za-z]{3}(?:-[A-Za-z]{3})?(?:,[A-Za-z]{3}(?:-[A-Za-z]{3})?)*) "
                    r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
PORT = re.compile(r"^(?:(?P<proto>tcp|udp)/)?(?P<port>\d{1,5})$")
UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")


# --- parsers ------------------------------------------------------------------------------

def parse_updates(text):
    """[{name, installed, candidate, origins, security}] from ``apt-get -s dist-upgrade``
    (the same lines ``apt-get -s upgrade`` prints)."""
    return parse_apt_simulation(text)


def parse_release(text):
    """{Origin, Label, Suite, Codename} of a Release or InRelease file (its first stanza;
    the signature's armour of an InRelease is skipped)."""
    fields = {}
    for line in (text or "").splitlines():
        if line.startswith("-----BEGIN") or line.startswith("Hash:"):
            continue
        if not line.strip():
            if fields:
                break
            continue
        if line[:1] in " \t" or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key in ("Origin", "Label", "Suite", "Codename"):
            fields[key] = value.strip()
    return fields


def origin_key(origin):
    """(label, suite) of an origin as ``apt-get -s`` prints it: ``LABEL:VERSION/SUITE``
    (``Debian-Security:12/oldstable-security``), or ``LABEL:SUITE`` for a Release file
    without a Version (``Debian-Security:bookworm-security``)."""
    label, _sep, rest = origin.partition(":")
    return label, rest.rpartition("/")[2]


def release_times(releases):
    """{(label, suite): mtime} from [(Release file fields, mtime)]; the newest of several
    files of one suite (one per mirror)."""
    times = {}
    for fields, mtime in releases:
        label = fields.get("Label") or fields.get("Origin") or ""
        for suite in {fields.get("Suite"), fields.get("Codename")} - {None, ""}:
            key = (label, suite)
            times[key] = max(times.get(key, 0), mtime)
    return times


def pending_since(update, times):
    """The time the suite that offers ``update`` last changed (see the module's doc); None
    when no Release file of its origins is known."""
    found = [times[origin_key(origin)] for origin in update["origins"] if origin_key(origin) in times]
    return max(found) if found else None


def parse_lines(text):
    """The non-empty, stripped lines of a text (``/run/reboot-required.pkgs``,
    ``apt-mark showhold``)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_needrestart(text):
    """{services: [...], kernel: status or None} from ``needrestart -b``. Kernel status
    (NEEDRESTART-KSTA): 0 unknown, 1 current, 2 ABI-compatible upgrade, 3 new version."""
    services, kernel = [], None
    for line in (text or "").splitlines():
        key, _sep, value = line.partition(":")
        value = value.strip()
        if key == "NEEDRESTART-SVC" and value:
            services.append(value)
        elif key == "NEEDRESTART-KSTA" and value.isdigit():
            kernel = int(value)
    return {"services": sorted(set(services)), "kernel": kernel}


APT_CONFIG_LINE = re.compile(r'^(?P<key>\S+) "(?P<value>(?:[^"\\]|\\.)*)";$')


def parse_apt_config(text):
    """{key: value} and {list key: [values]} from ``apt-config dump``: a list's items are
    printed as ``KEY:: "value";``."""
    values, lists = {}, {}
    for line in (text or "").splitlines():
        match = APT_CONFIG_LINE.match(line.strip())
        if not match:
            continue
        key, value = match.group("key"), match.group("value")
        if key.endswith("::"):
            lists.setdefault(key[:-2], []).append(value)
        else:
            values[key] = value
    return values, lists


def unattended_state(installed, apt_config_text):
    """{installed, enabled, security, origins}: unattended-upgrades installed, APT::Periodic
    running it (the package lists updated and the upgrade run, neither "0"), and whether
    its origins take security updates."""
    values, lists = parse_apt_config(apt_config_text)
    origins = lists.get("Unattended-Upgrade::Origins-Pattern", []) + lists.get("Unattended-Upgrade::Allowed-Origins", [])
    periodic = [values.get("APT::Periodic::Update-Package-Lists", "0"), values.get("APT::Periodic::Unattended-Upgrade", "0")]
    enabled = bool(installed) and all(value not in ("", "0", "false", "no") for value in periodic)
    security = any("security" in origin.lower() for origin in origins)
    return {"installed": bool(installed), "enabled": enabled, "security": security, "origins": origins}


def render_auto_upgrades(enabled):
    flag = "1" if enabled else "0"
    return ("// Managed by Yoroi (PAT-005): unattended security upgrades %s.\n"
            'APT::Periodic::Update-Package-Lists "%s";\n'
            'APT::Periodic::Unattended-Upgrade "%s";\n') % ("on" if enabled else "off", flag, flag)


# --- inputs -------------------------------------------------------------------------------

def check_holds(names):
    bad = [name for name in names if not PACKAGE.match(name or "")]
    if bad:
        raise ValueError("not a Debian package name in the hold list: %s" % ", ".join(repr(n) for n in bad))


def parse_ports(ports):
    """[(proto, port)] from "22", "tcp/443", "udp/53"; ValueError names a bad one."""
    parsed = []
    for item in ports:
        match = PORT.match(str(item).strip())
        if not match or not 1 <= int(match.group("port")) <= 65535:
            raise ValueError("not a port (PORT, tcp/PORT or udp/PORT from 1 to 65535): %r" % (item,))
        parsed.append((match.group("proto") or "tcp", int(match.group("port"))))
    return parsed


def check_units(units):
    bad = [unit for unit in units if not UNIT.match(unit or "") or unit.startswith("-")]
    if bad:
        raise ValueError("not a systemd unit name: %s" % ", ".join(repr(u) for u in bad))


def _day_list(text):
    days = []
    for part in text.lower().split(","):
        first, _sep, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError("unknown day %r (Mon, Tue, Wed, Thu, Fri, Sat, Sun)" % part)
        start, end = DAYS.index(first), DAYS.index(last or first)
        span = range(start, end + 1) if end >= start else list(range(start, 7)) + list(range(0, end + 1))
        days.extend(day for day in span if day not in days)
    return days


def _minutes(text):
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError("not a time of day: %s" % text)
    return hours * 60 + minutes


def parse_window(text):
    """[(weekdays, start minute, end minute)] of a maintenance window such as
    ``Sat 02:00-04:00``, ``Mon-Fri 22:00-02:00`` or ``Sat,Sun 01:00-05:00; Wed 12:00-13:00``
    (Monday is 0). A span whose end is not after its start runs into the next day.
    ValueError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no maintenance window")
    windows = []
    for part in text.split(";"):
        part = part.strip()
        match = WINDOW.match(part)
        if not match:
            raise ValueError("%r is not DAYS HH:MM-HH:MM (for example 'Sat 02:00-04:00' or 'Mon-Fri 22:00-02:00')" % part)
        start, end = _minutes(match.group("start")), _minutes(match.group("end"))
        if start == end:
            raise ValueError("%r: the window is empty (its start is its end)" % part)
        windows.append((_day_list(match.group("days")), start, end))
    return windows


def inside_window(windows, now):
    """Whether the local time ``now`` (a datetime) is inside one of ``windows``."""
    minute = now.hour * 60 + now.minute
    today = now.weekday()
    yesterday = (today - 1) % 7
    for days, start, end in windows:
        if end > start:
            if today in days and start <= minute < end:
                return True
        else:  # past midnight
            if (today in days and minute >= start) or (yesterday in days and minute < end):
                return True
    return False


def window_decision(window, timezone_name, force, now_utc=None):
    """(allowed, finding) for one host: inside its window (in the site's time zone), or
    forced. A malformed window or unknown zone raises ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    now_utc = now_utc or datetime.datetime.now(datetime.timezone.utc)
    try:
        zone = ZoneInfo(timezone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("unknown time zone %r: %s" % (timezone_name, exc))
    local = now_utc.astimezone(zone)
    stamp = local.strftime("%a %H:%M %Z")
    expected = "patched only inside the maintenance window, unless forced"
    if force:
        return True, finding(WINDOW_CONTROL, PASS, expected, "forced at %s" % stamp,
                             "yoroi_patch_force: the window %r was not checked" % (window or ""))
    if not window:
        return False, finding(WINDOW_CONTROL, SKIPPED, expected, "no maintenance window set",
                              "nothing was changed: set yoroi_patch_window or force the run (--force)")
    inside = inside_window(parse_window(window), local)
    if inside:
        return True, finding(WINDOW_CONTROL, PASS, expected, "inside %s at %s" % (window, stamp), "")
    return False, finding(WINDOW_CONTROL, SKIPPED, expected, "outside %s at %s" % (window, stamp),
                          "nothing was changed: outside the maintenance window (--force overrides)")


# --- evaluation ---------------------------------------------------------------------------

def describe(update):
    return "%s %s->%s" % (update["name"], update["installed"] or "(new)", update["candidate"])


def to_upgrade(updates, upgrade, held):
    """The updates an apply installs: security ones (or all) that are not held."""
    return [u for u in updates if (upgrade == "all" or u["security"]) and u["name"] not in held]


def overdue(updates, times, max_days, now):
    """[(update, days pending or None)] of the security updates pending longer than
    ``max_days`` (an update whose suite time is unknown counts as overdue: unknown is not
    compliant)."""
    late = []
    for update in updates:
        if not update["security"]:
            continue
        since = pending_since(update, times)
        days = None if since is None else max(0.0, (now - since) / DAY)
        if days is None or days > max_days:
            late.append((update, days))
    return late


def security_finding(before, after, times, max_days, now, check_mode, attempted, applied_ok=True, upgraded=(),
                     held=()):
    """PAT-001; ``upgraded``: what the run upgraded (named in the evidence once nothing is
    pending). A held package's update counts like any other, marked "(held)"."""
    late_before = overdue(before, times, max_days, now)
    late_after = overdue(after, times, max_days, now)
    # check mode reports the drift as it is now; a run, what is left after it
    shown, late_shown = (before, late_before) if check_mode else (after, late_after)
    pending = [u for u in shown if u["security"]]
    if late_shown:
        actual = "%d security update(s) pending longer than %s day(s)" % (len(late_shown), max_days)
        evidence = "; ".join("%s (%s%s)" % (describe(u), "pending since unknown" if d is None else "%.1f days" % d,
                                            ", held" if u["name"] in held else "")
                             for u, d in late_shown)
    elif pending:
        actual = "%d security update(s) pending, none longer than %s day(s)" % (len(pending), max_days)
        evidence = "; ".join(describe(u) + (" (held)" if u["name"] in held else "") for u in pending)
    else:
        actual = "no security update pending"
        evidence = "; ".join("upgraded %s" % name for name in upgraded)
    status = fold(not late_before, not late_after, check_mode, attempted and bool(late_before), applied_ok)
    return finding("PAT-001", status, "no security update pending longer than %s day(s)" % max_days, actual, evidence)


def other_finding(after, upgrade, held):
    others = [u for u in after if not u["security"]]
    if not others:
        return finding("PAT-002", PASS, "other updates: %s" % ("applied" if upgrade == "all" else "reported"),
                       "no other update pending", "")
    evidence = "; ".join(describe(u) + (" (held)" if u["name"] in held else "") for u in others)
    status = FAIL if upgrade == "all" else PASS
    expected = "no update pending (policy: all)" if upgrade == "all" else "reported only (policy: security updates)"
    return finding("PAT-002", status, expected, "%d other update(s) pending" % len(others), evidence)


def reboot_finding(required, packages, since, now):
    if not required:
        return finding("PAT-003", PASS, "no reboot pending", "no reboot required", "")
    age = "" if since is None else " since %s (%.1f days)" % (
        datetime.datetime.fromtimestamp(since, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), (now - since) / DAY)
    return finding("PAT-003", FAIL, "no reboot pending", "reboot required%s" % age,
                   "packages: %s" % (", ".join(packages) or "(not named)"))


def restart_finding(needrestart):
    if needrestart is None:
        return finding("PAT-004", SKIPPED, "no service running outdated code", "needrestart not installed",
                       "install needrestart to have service restarts reported")
    services = needrestart["services"]
    kernel = needrestart["kernel"] in (2, 3)
    if not services and not kernel:
        return finding("PAT-004", PASS, "no service running outdated code", "no restart needed", "")
    parts = []
    if services:
        parts.append("services: %s" % ", ".join(services))
    if kernel:
        parts.append("the running kernel is not the newest installed")
    return finding("PAT-004", FAIL, "no service running outdated code",
                   "%d service(s) to restart%s" % (len(services), ", kernel outdated" if kernel else ""), "; ".join(parts))


def unattended_finding(policy, before, after, check_mode, attempted, applied_ok=True):
    def ok(state):
        if policy == "enabled":
            return state["enabled"] and state["security"]
        if policy == "disabled":
            return not state["enabled"]
        return True

    def words(state):
        return "%s, %s, %s" % ("installed" if state["installed"] else "not installed",
                               "enabled" if state["enabled"] else "not enabled",
                               "takes security updates" if state["security"] else "no security origin")

    status = fold(ok(before), ok(after), check_mode, attempted, applied_ok)
    return finding("PAT-005", status, "unattended security upgrades: %s" % policy, words(after),
                   "origins: %s" % ("; ".join(after["origins"]) or "none"))


def hold_finding(wanted, installed, held_before, held_after, check_mode, attempted, applied_ok=True):
    def missing(held):
        return [name for name in wanted if name in installed and name not in held]

    status = fold(not missing(held_before), not missing(held_after), check_mode, attempted, applied_ok)
    absent = [name for name in wanted if name not in installed]
    evidence = "held: %s" % (", ".join(held_after) or "none")
    if absent:
        evidence += "; not installed (nothing to hold): %s" % ", ".join(absent)
    actual = "not held: %s" % ", ".join(missing(held_after)) if missing(held_after) else "%d package(s) held" % len(held_after)
    return finding("PAT-006", status, "held: %s" % (", ".join(wanted) or "(none asked)"), actual, evidence)


def health(services_active, wanted_ports, listening):
    """[problems] of a host after patching: services not active, ports not listening.
    ``services_active``: {unit: state}; ``listening``: set of (proto, port)."""
    problems = ["%s is %s" % (unit, state or "unknown") for unit, state in sorted(services_active.items())
                if state != "active"]
    problems += ["nothing listens on %s/%d" % (proto, port) for proto, port in wanted_ports
                 if (proto, port) not in listening]
    return problems


def health_finding(problems, services, ports):
    listed_ports = ", ".join("%s/%d" % p for p in ports) or "none listed"
    expected = "services active (%s), ports listening (%s)" % (", ".join(services) or "none listed", listed_ports)
    if problems:
        return finding(HEALTH_CONTROL, FAIL, expected, "unhealthy", "; ".join(problems))
    return finding(HEALTH_CONTROL, PASS, expected, "healthy", "")
