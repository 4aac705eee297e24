# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time synchronization: one daemon, the site's time servers, and the clock in sync.

Logs are worth little for detection when their time stamps are wrong, so the host's
clock is a control of its own. Pure logic over text: the module reads the package
state, the units (``systemctl show``), the configuration files and the daemon's own
report (``chronyc -n tracking``, ``timedatectl``), and passes what it read; this file
says what is wanted, renders the files, plans the changes and turns the states before
and after into findings.

* ``chrony`` (the default): the site's servers are ``server NAME iburst`` lines in
  ``/etc/chrony/sources.d/yoroi.sources``; every other source in ``chrony.conf``
  (Debian's ``pool 2.debian.pool.ntp.org``, ``sourcedir /run/chrony-dhcp``: servers a
  DHCP answer names) is commented out there, so the site's servers are the only ones.
  On a host that may not set its clock (a container), chronyd runs with ``-x``: it
  measures and reports the offset, and does not set the clock (a unit drop-in).
* ``timesyncd``: ``NTP=`` and ``FallbackNTP=`` in ``/etc/systemd/timesyncd.conf.d/yoroi.conf``,
  each reset first (an empty assignment clears the list) and then set to the site's servers.
* No site servers set: nothing is changed, and TIM-002 fails saying so (a host is never
  pointed at servers nobody chose, nor left on the package's public pool as if approved).
"""

from __future__ import annotations

import collections
import ipaddress
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, finding, fold
from ansible_collections.yoroi.baseline.plugins.module_utils._services import parse_show

CONTROLS = collections.OrderedDict([
    ("TIM-001", "one time synchronization daemon, the site's choice, is installed, enabled and running, and no other"),
    ("TIM-002", "the time daemon's configuration lists exactly the site's time servers"),
    ("TIM-003", "the host's clock is synchronized to a time server, within the allowed offset"),
])

DAEMONS = {
    "chrony": {"package": "chrony", "unit": "chrony.service"},
    "timesyncd": {"package": "systemd-timesyncd", "unit": "systemd-timesyncd.service"},
}
# Debian's time daemons: each Provides and Conflicts with time-daemon, so one is installed.
TIME_PACKAGES = ("chrony", "systemd-timesyncd", "ntp", "ntpsec", "openntpd")
TIME_UNITS = ("chrony.service", "systemd-timesyncd.service", "ntp.service", "ntpsec.service", "openntpd.service")

CHRONY_CONF = "/etc/chrony/chrony.conf"
SOURCES_DIR = "/etc/chrony/sources.d"
SOURCES_FILE = SOURCES_DIR + "/yoroi.sources"
CLOCK_DROPIN = "/etc/systemd/system/chrony.service.d/yoroi-clock.conf"
# The package's unit: where its ExecStart is read, to add -x to it.
CHRONY_UNITS = ("/usr/lib/systemd/system/chrony.service", "/lib/systemd/system/chrony.service")
DEFAULT_EXEC_START = "!/usr/sbin/chronyd $DAEMON_OPTS"
TIMESYNCD_CONF = "/etc/systemd/timesyncd.conf"
TIMESYNCD_DROPIN = "/etc/systemd/timesyncd.conf.d/yoroi.conf"
# systemd's drop-in directories, first wins for one file name
TIMESYNCD_DIRS = ("/etc/systemd/timesyncd.conf.d", "/run/systemd/timesyncd.conf.d",
                  "/usr/local/lib/systemd/timesyncd.conf.d", "/usr/lib/systemd/timesyncd.conf.d")

CLOCK_CONTROL = ("auto", "set", "measure")
SHOW_PROPERTIES = "Id,LoadState,ActiveState,UnitFileState,ConditionResult,ConditionTimestamp"
SOURCE_DIRECTIVES = ("server", "pool", "peer")
COMMENTED = "# yoroi (TIM-002): "
CHRONY_COMMENT = "#;!%"
# chronyd's own reference ids that are no time server: none yet, and its local clock
NO_REFERENCE = ("00000000", "7F7F0101")
SYNCED_LEAP = ("Normal", "Insert second", "Delete second")

# A host name (labels of letters, digits and inner '-': never a leading '-', which a
# daemon would read as an option) or an IP address; nothing else lands in a config line.
HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")

MANAGED_HEADER = "# Managed by Yoroi (TIM-002): the site's time servers. Edits here are overwritten.\n"


def check_servers(servers):
    """Refuse (ValueError) a server that is not one host name or IP address: a space,
    a newline or a quote would add words or lines to the daemon's configuration."""
    for server in servers:
        text = server if isinstance(server, str) else ""
        if HOST_NAME.match(text) and "\n" not in text:
            continue
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ValueError("time server %r is not a host name or an IP address" % (server,))


def unique(servers):
    seen = []
    for server in servers:
        if server not in seen:
            seen.append(server)
    return seen


# --- chrony ---------------------------------------------------------------------------------


def render_sources(servers):
    return MANAGED_HEADER + "".join("server %s iburst\n" % server for server in unique(servers))


def _directive(line):
    """(directive, [arguments]) of a chrony configuration line, or (None, [])."""
    words = line.split()
    if not words or words[0][0] in CHRONY_COMMENT:
        return None, []
    return words[0].lower(), words[1:]


def _foreign_source(directive, args):
    """A line that adds a time source other than the site's file."""
    if directive in SOURCE_DIRECTIVES:
        return True
    return directive == "sourcedir" and (args[:1] != [SOURCES_DIR])


def render_chrony_conf(text):
    """chrony.conf with every source but the site's file commented out, and
    ``sourcedir /etc/chrony/sources.d`` present; None when there is no chrony.conf."""
    if text is None:
        return None
    lines = text.splitlines(True)
    out, reads_dir = [], False
    for line in lines:
        directive, args = _directive(line)
        if _foreign_source(directive, args):
            out.append(COMMENTED + line.lstrip())
            continue
        if directive == "sourcedir":
            reads_dir = True
        out.append(line)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    if not reads_dir:
        out.append(COMMENTED + "the site's servers\nsourcedir %s\n" % SOURCES_DIR)
    return "".join(out)


def confdirs(conf_text):
    """The directories chrony.conf's ``confdir`` lines name."""
    return [args[0] for directive, args in (_directive(line) for line in (conf_text or "").splitlines())
            if directive == "confdir" and args]


def chrony_sources(conf_text, conf_files, source_files):
    """[(directive, name, where)]: every source chronyd would use, from chrony.conf, the
    ``confdir`` files ({path: text}) and the files of /etc/chrony/sources.d ({path: text});
    a ``sourcedir`` other than that one counts as a source (its servers come from elsewhere)."""
    found = []
    for where, text in [(CHRONY_CONF, conf_text)] + sorted(conf_files.items()) + sorted(source_files.items()):
        for line in (text or "").splitlines():
            directive, args = _directive(line)
            if directive in SOURCE_DIRECTIVES and args:
                found.append((directive, args[0], where))
            elif where == CHRONY_CONF and _foreign_source(directive, args):
                found.append((directive, args[0] if args else "", where))
    return found


def exec_start(unit_text):
    """The last ExecStart= of the package's chrony.service (its command line)."""
    value = None
    for line in (unit_text or "").splitlines():
        line = line.strip()
        if line.startswith("ExecStart=") and line[len("ExecStart="):].strip():
            value = line[len("ExecStart="):].strip()
    return value or DEFAULT_EXEC_START


def render_clock_dropin(unit_text):
    """A chrony.service drop-in that runs chronyd with -x and clears the unit's
    ConditionCapability=CAP_SYS_TIME (an empty Condition resets the unit's conditions)."""
    command = exec_start(unit_text)
    if " -x" not in (" " + command):
        command += " -x"
    return ("# Managed by Yoroi (TIM-001): this host may not set its clock (yoroi_time_sync_clock_control);\n"
            "# chronyd measures the offset to the site's servers and reports it, and sets nothing.\n"
            "[Unit]\nConditionCapability=\n[Service]\nExecStart=\nExecStart=%s\n" % command)


def measures_only(clock_control, container):
    return clock_control == "measure" or (clock_control == "auto" and bool(container))


# --- systemd-timesyncd ------------------------------------------------------------------------


def render_timesyncd(servers):
    names = " ".join(unique(servers))
    return (MANAGED_HEADER + "# An empty assignment clears what earlier files set; FallbackNTP= keeps Debian's pool out.\n"
            "[Time]\nNTP=\nNTP=%s\nFallbackNTP=\nFallbackNTP=%s\n" % (names, names))


def timesyncd_servers(files):
    """(NTP=, FallbackNTP=, {server: file}) that timesyncd reads from ``files``
    ([(path, text)] in systemd's order): a value adds names, an empty one clears the list."""
    lists = {"NTP": [], "FallbackNTP": []}
    fallback_set = False
    origin = {}
    for path, text in files:
        section = None
        for line in (text or "").splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                continue
            if section != "Time" or "=" not in line:
                continue
            key, value = [part.strip() for part in line.split("=", 1)]
            if key not in lists:
                continue
            if not value:
                lists[key] = []
                continue
            if key == "FallbackNTP":
                fallback_set = True
            for name in value.split():
                lists[key].append(name)
                if key == "NTP":
                    origin[name] = path
    # without a FallbackNTP= of its own, timesyncd falls back to its built-in list
    return lists["NTP"], (lists["FallbackNTP"] if fallback_set else None), origin


def order_dropins(found):
    """[(path, text)] in systemd's order from {dir: {name: text}}: a name in an earlier
    directory hides the same name in a later one; then by name."""
    chosen = {}
    for directory in TIMESYNCD_DIRS:
        for name, text in sorted(found.get(directory, {}).items()):
            chosen.setdefault(name, ("%s/%s" % (directory, name), text))
    return [chosen[name] for name in sorted(chosen)]


# --- the daemons' own reports ----------------------------------------------------------------


def parse_tracking(text):
    """``chronyc -n tracking`` as {reference_id, reference, stratum, offset (s, + when the
    clock is fast), leap, root_dispersion}; {} when it is not that output."""
    fields = labelled(text)
    if "Reference ID" not in fields or "Leap status" not in fields:
        return {}
    match = re.match(r"^([0-9A-Fa-f]+)\s*\((.*)\)$", fields["Reference ID"])
    result = {"reference_id": match.group(1).upper() if match else fields["Reference ID"],
              "reference": match.group(2) if match else "", "leap": fields["Leap status"]}
    try:
        result["stratum"] = int(fields.get("Stratum", ""))
    except ValueError:
        result["stratum"] = None
    offset = re.match(r"^([0-9.]+) seconds (fast|slow) of NTP time$", fields.get("System time", ""))
    result["offset"] = (float(offset.group(1)) * (1 if offset.group(2) == "fast" else -1)) if offset else None
    dispersion = re.match(r"^([0-9.]+) seconds$", fields.get("Root dispersion", ""))
    result["root_dispersion"] = float(dispersion.group(1)) if dispersion else None
    return result


TIMESPAN_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def parse_timespan(text):
    """Seconds of a systemd time span with an optional sign (``+82us``, ``-1.216ms``,
    ``1min 3.5s``); None when it is not one."""
    text = (text or "").strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-").strip()
    if text == "0":
        return 0.0
    parts = re.findall(r"([0-9.]+)\s*(ns|us|ms|min|s|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        return None
    return sign * sum(float(number) * TIMESPAN_UNITS[unit] for number, unit in parts)


def parse_keyvalues(text):
    """{Key: value} of ``Key=value`` lines (``timedatectl show``, ``show-timesync``)."""
    return parse_show(text)


def labelled(text):
    """{label: value} of ``Label : value`` lines (chronyc, ``timedatectl timesync-status``)."""
    return parse_show("\n".join(line.replace(":", "=", 1) for line in (text or "").splitlines() if ":" in line))


def parse_timesync_status(text):
    """``timedatectl timesync-status`` as {server, stratum, offset (s), leap, packets}."""
    fields = labelled(text)
    if "Server" not in fields:
        return {}
    stratum = fields.get("Stratum", "")
    packets = fields.get("Packet count", "")
    return {"server": fields["Server"], "stratum": int(stratum) if stratum.isdigit() else None,
            "offset": parse_timespan(fields["Offset"]) if "Offset" in fields else None,
            "leap": fields.get("Leap", ""), "packets": int(packets) if packets.isdigit() else None}


def parse_units(text):
    """{unit: {LoadState, ActiveState, UnitFileState, ConditionResult}} of one
    ``systemctl show -p Id,... UNIT...`` (blocks separated by a blank line)."""
    units = {}
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        values = parse_keyvalues(block)
        if values.get("Id"):
            units[values["Id"]] = values
    return units


# --- judging ---------------------------------------------------------------------------------


def condition_failed(state):
    """The unit's start condition was checked and not met (ConditionResult is "no" for a
    unit never started too; only the time stamp tells them apart)."""
    return state.get("ConditionResult") == "no" and bool(state.get("ConditionTimestamp"))


def unit_running(state):
    return state.get("ActiveState") == "active"


def unit_enabled(state):
    return state.get("UnitFileState") in ("enabled", "enabled-runtime", "alias")


def describe_unit(unit, state):
    if not state or state.get("LoadState") == "not-found":
        return "%s not installed" % unit
    text = "%s %s, %s" % (unit, state.get("ActiveState", "unknown"), state.get("UnitFileState") or "no unit file state")
    if condition_failed(state) and not unit_running(state):
        text += ", start condition not met"
    return text


def others_running(daemon, units):
    """The other time daemons' units that run or start at boot."""
    own = DAEMONS[daemon]["unit"]
    return [unit for unit in TIME_UNITS if unit != own and unit in units and
            (unit_running(units[unit]) or unit_enabled(units[unit]))]


def daemon_ok(daemon, installed, units):
    unit = DAEMONS[daemon]["unit"]
    state = units.get(unit, {})
    return (installed.get(DAEMONS[daemon]["package"], False) and unit_running(state) and unit_enabled(state)
            and not others_running(daemon, units))


def daemon_actual(daemon, installed, units):
    unit = DAEMONS[daemon]["unit"]
    parts = []
    if not installed.get(DAEMONS[daemon]["package"], False):
        parts.append("%s not installed" % DAEMONS[daemon]["package"])
    else:
        parts.append(describe_unit(unit, units.get(unit)))
    others = others_running(daemon, units)
    if others:
        parts.append("also: " + "; ".join(describe_unit(other, units[other]) for other in others))
    return "; ".join(parts)


def daemon_finding(daemon, before, after, check_mode, attempted, errors, servers_set, measure, container):
    """TIM-001: the chosen daemon installed, enabled, active; no other time daemon."""
    ok_before = daemon_ok(daemon, *before)
    ok_after = daemon_ok(daemon, *after)
    status = fold(ok_before, ok_after, check_mode, attempted=attempted, applied_ok=not errors)
    evidence = ["dpkg-query, systemctl show"]
    if daemon == "chrony" and measure:
        evidence.append("clock control off (%s): chronyd -x measures the offset and sets no clock"
                        % ("in a container (%s)" % container if container else "by policy"))
    if daemon == "timesyncd" and container:
        evidence.append("systemd-timesyncd does not start in a container (ConditionVirtualization=!container); "
                        "chrony with -x does")
    if not servers_set:
        evidence.append("no site time servers set: nothing changed")
    if errors:
        evidence.append("; ".join(errors))
    return finding("TIM-001", status, CONTROLS["TIM-001"], daemon_actual(daemon, *(before if check_mode else after)),
                   "; ".join(evidence), subject=DAEMONS[daemon]["unit"])


def config_problems(servers, sources, link_servers=()):
    """What keeps the configuration from naming exactly the site's servers (TIM-002)."""
    problems = []
    named = []
    for directive, name, where in sources:
        if directive == "server" and name in servers:
            named.append(name)
        elif directive == "sourcedir":
            problems.append("sourcedir %s (%s): servers from another directory" % (name, where))
        else:
            problems.append("%s %s (%s): not a site server" % (directive, name, where))
    for name in link_servers:
        problems.append("%s: a per-interface server (systemd-networkd) not of the site" % name)
    missing = [name for name in servers if name not in named]
    if missing:
        problems.append("missing: %s" % ", ".join(missing))
    return problems


def config_finding(servers, before, after, check_mode, attempted, applied_ok=True):
    """TIM-002 over the sources read first (``before``) and after the run; each is a
    (sources, link servers) pair."""
    expected = CONTROLS["TIM-002"]
    if not servers:
        return finding("TIM-002", FAIL, expected, "no site time servers set",
                       "yoroi_time_sync_servers is empty: nothing was changed; set the site's servers in its group_vars")
    problems_before = config_problems(servers, *before)
    problems_after = config_problems(servers, *after)
    status = fold(not problems_before, not problems_after, check_mode, attempted=attempted, applied_ok=applied_ok)
    shown = problems_before if check_mode else problems_after
    actual = "; ".join(shown) if shown else "servers: %s" % ", ".join(servers)
    return finding("TIM-002", status, expected, actual, "site servers: %s" % ", ".join(servers))


def sync_state(daemon, report, max_offset_ms):
    """(synchronized?, what was found) from the daemon's report.

    chrony: {tracking: parsed ``chronyc -n tracking``, error}; timesyncd: {synchronized:
    NTPSynchronized, status: parsed timesync-status, error}. Anything unknown is not
    synchronized."""
    if report.get("error"):
        return False, "not synchronized: %s" % report["error"]
    if daemon == "chrony":
        tracking = report.get("tracking") or {}
        if not tracking:
            return False, "not synchronized: no tracking report from chronyd"
        offset = tracking.get("offset")
        where = "reference %s (%s), stratum %s, offset %s, leap status %s" % (
            tracking["reference_id"], tracking.get("reference") or "-", tracking.get("stratum"),
            "%+.3f ms" % (offset * 1000) if offset is not None else "unknown", tracking["leap"])
        if tracking["leap"] not in SYNCED_LEAP:
            return False, "not synchronized: " + where
        if tracking["reference_id"] in NO_REFERENCE:
            return False, "not synchronized to a time server: " + where
    else:
        status = report.get("status") or {}
        offset = status.get("offset")
        where = "server %s, stratum %s, offset %s, NTPSynchronized=%s" % (
            status.get("server") or "-", status.get("stratum"),
            "%+.3f ms" % (offset * 1000) if offset is not None else "unknown", report.get("synchronized") or "unknown")
        if report.get("synchronized") != "yes":
            return False, "not synchronized: " + where
    if offset is None:
        return False, "offset unknown: " + where
    if abs(offset) * 1000 > max_offset_ms:
        return False, "offset beyond %d ms: %s" % (max_offset_ms, where)
    return True, "synchronized: " + where


def sync_finding(daemon, report_before, report_after, max_offset_ms, check_mode, attempted, waited):
    """TIM-003: the clock is synchronized within the allowed offset, with the offset,
    the reference and the stratum as evidence. Never a pass on an unknown state."""
    ok_before = sync_state(daemon, report_before, max_offset_ms)[0]
    ok_after, actual = sync_state(daemon, report_before if check_mode else report_after, max_offset_ms)
    # a change that left the clock unsynchronized (a server slow to answer) is drift, not an error
    status = fold(ok_before, ok_after, check_mode, attempted=attempted and ok_after)
    evidence = "chronyc -n tracking" if daemon == "chrony" else "timedatectl show, timesync-status"
    evidence += "; allowed offset %d ms" % max_offset_ms
    if waited:
        evidence += "; waited %.1f s for the first synchronization" % waited
    return finding("TIM-003", status, CONTROLS["TIM-003"], actual, evidence)
