# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log forwarding and the central collector: pure render -> parse -> evaluate.

Clients (module ``log_forwarding``, LOG-001 .. LOG-006): journald keeps its journal on
disk with the site's size and retention; rsyslog reads the journal through imjournal (its
cursor kept in a state file, so a restart neither loses nor repeats a line) and forwards
everything over RELP with TLS to the site's collector, through one disk-assisted queue,
to a failover collector when the first is suspended; sshd logs the key of each login;
sudo logs every command to a log of its own.

Collector (module ``log_collector``, LOG-010 .. LOG-012): imrelp with TLS that accepts
only the permitted peers by certificate name, one file tree per host, logrotate with the
retention period.

Nothing here touches the host: the wiring reads, these functions decide.
"""

from __future__ import annotations

import json
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import finding, fold

CLIENT_CONTROLS = {
    "LOG-001": "journald stores the journal on disk (Storage=persistent) with the site's size and retention",
    "LOG-002": "rsyslog forwards everything over RELP with TLS, the collector verified by certificate name",
    "LOG-003": "a disk-assisted queue that is saved on shutdown holds what the collector has not acknowledged",
    "LOG-004": "the collector answers a TLS handshake verified both ways, and nothing waits in the queue",
    "LOG-005": "sshd logs the key of each login (LogLevel VERBOSE)",
    "LOG-006": "sudo logs every command to syslog and to a log of its own",
}
COLLECTOR_CONTROLS = {
    "LOG-010": "rsyslog accepts RELP with TLS only from the permitted peers, by certificate name",
    "LOG-011": "one file tree per host, and each permitted peer heard from recently",
    "LOG-012": "the per-host logs are rotated daily and kept for the retention period",
}

PACKAGES = ["rsyslog", "rsyslog-relp"]
COLLECTOR_PACKAGES = ["rsyslog", "rsyslog-relp", "logrotate"]
CLIENT_CONF = "/etc/rsyslog.d/60-yoroi-forward.conf"
COLLECTOR_CONF = "/etc/rsyslog.d/10-yoroi-collector.conf"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/60-yoroi.conf"
JOURNALD_FILES = ("/usr/lib/systemd/journald.conf.d", "/etc/systemd/journald.conf", "/etc/systemd/journald.conf.d",
                  "/run/systemd/journald.conf.d")
SUDOERS_DROPIN = "/etc/sudoers.d/60-yoroi-logging"
LOGROTATE_CONF = "/etc/logrotate.d/yoroi-remote"
TLS_DIR = "/etc/yoroi/log-forwarding"
COLLECTOR_TLS_DIR = "/etc/yoroi/log-collector"
SPOOL_DIR = "/var/spool/rsyslog"
QUEUE_NAME = "yoroi_forward"
REMOTE_DIR = "/var/log/remote"
SYSLOG_FILE = "/var/log/syslog"
STATS_INTERVAL = 30
# a report older than this (three intervals) no longer tells the queue's size
STATS_MAX_AGE = 3 * STATS_INTERVAL
HEADER = "# Managed by Yoroi (%s); changes here are overwritten.\n"

_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9*_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$")
_SIZE = re.compile(r"^[0-9]+[KMGT]?$")


def tls_paths(directory):
    return {"ca": directory + "/ca.pem", "cert": directory + "/cert.pem", "key": directory + "/key.pem"}


def parse_endpoint(text, default_port=2514):
    """``host[:port]`` -> (host, port); ValueError naming the value when malformed."""
    host, _sep, port = str(text).strip().partition(":")
    if not _NAME.match(host) or "*" in host or (port and not port.isdigit()):
        raise ValueError("collector %r is not host or host:port" % (text,))
    number = int(port) if port else default_port
    if not 1 <= number <= 65535:
        raise ValueError("collector %r: port out of range" % (text,))
    return host, number


def check_names(names, what):
    """Permitted peer names: a host name, or one with '*' wildcards (rsyslog's own)."""
    for name in names:
        if not _NAME.match(str(name)):
            raise ValueError("%s %r is not a certificate name" % (what, name))


def check_size(value):
    if not _SIZE.match(str(value)):
        raise ValueError("size %r is not a number with an optional K, M, G or T" % (value,))


def _quote(value):
    return '"%s"' % value


def render_client(collectors, queue_max_disk, tls_dir=TLS_DIR):
    """The client's rsyslog configuration: imjournal with a cursor, one ruleset with a
    disk-assisted queue saved on shutdown, omrelp to each collector in turn, each after
    the first only while the one before is suspended."""
    tls = tls_paths(tls_dir)
    lines = [HEADER % "log_forwarding, LOG-002 LOG-003",
             "# The journal is read with its cursor kept in a state file: a restart of rsyslog",
             "# resumes where it stopped (journald's socket forwarding drops lines when full).",
             'module(load="imjournal" StateFile="yoroi-imjournal.state" IgnorePreviousMessages="on"',
             '       Ratelimit.Interval="60" Ratelimit.Burst="100000")',
             'module(load="omrelp")',
             "# rsyslog's own counters every %d s (to syslog, so the collector has them too):" % STATS_INTERVAL,
             "# the queue's size now and what each collector took (LOG-003, LOG-004).",
             'module(load="impstats" interval="%d" severity="7" format="json" resetCounters="off")' % STATS_INTERVAL,
             "# One disk-assisted queue in front of all collectors, saved to disk on shutdown.",
             'ruleset(name="%s" queue.type="LinkedList" queue.filename="%s"' % (QUEUE_NAME, QUEUE_NAME),
             '        queue.maxDiskSpace="%s" queue.saveOnShutdown="on" queue.size="100000"' % queue_max_disk,
             '        queue.dequeueBatchSize="1" queue.timeoutShutdown="5000") {']
    last = len(collectors) - 1
    for index, (host, port) in enumerate(collectors):
        params = ['type="omrelp"', 'name="yoroi_collector_%d"' % (index + 1), 'target="%s"' % host,
                  'port="%d"' % port, 'tls="on"', 'tls.caCert="%s"' % tls["ca"], 'tls.myCert="%s"' % tls["cert"],
                  'tls.myPrivKey="%s"' % tls["key"], 'tls.authMode="name"', 'tls.permittedPeer=[%s]' % _quote(host),
                  # the last collector retries forever (the queue holds the lines meanwhile);
                  # one before it gives its line to the next when it cannot deliver
                  'action.resumeRetryCount="%s"' % ("-1" if index == last else "0"),
                  'action.resumeInterval="10"']
        if index:
            params.append('action.execOnlyWhenPreviousIsSuspended="on"')
        lines.append("  action(%s)" % "\n         ".join(params))
    lines += ["}", "*.* call %s" % QUEUE_NAME, ""]
    return "\n".join(lines)


def render_collector(port, peers, tls_dir=COLLECTOR_TLS_DIR, remote_dir=REMOTE_DIR):
    tls = tls_paths(tls_dir)
    return "\n".join([
        HEADER % "log_collector, LOG-010 LOG-011",
        'module(load="imrelp")',
        "# One tree per host, named by the host's name in its lines (only permitted peers",
        "# can send any); secpath-replace keeps a name from climbing out of the tree.",
        'template(name="yoroi_remote_file" type="string"',
        '         string="%s/%%HOSTNAME:::secpath-replace%%/syslog.log")' % remote_dir,
        'ruleset(name="yoroi_remote") {',
        '  action(type="omfile" dynaFile="yoroi_remote_file" dirCreateMode="0750" fileCreateMode="0640")',
        "  stop",
        "}",
        'input(type="imrelp" port="%d" ruleset="yoroi_remote" tls="on"' % port,
        '      tls.caCert="%s" tls.myCert="%s" tls.myPrivKey="%s"' % (tls["ca"], tls["cert"], tls["key"]),
        '      tls.authMode="name" tls.permittedPeer=[%s])' % ", ".join(_quote(p) for p in peers),
        ""])


def render_logrotate(retention_days, remote_dir=REMOTE_DIR):
    return "\n".join([
        HEADER % "log_collector, LOG-012",
        "%s/*/syslog.log {" % remote_dir,
        "  daily",
        "  rotate %d" % retention_days,
        "  maxage %d" % retention_days,
        "  dateext",
        "  compress",
        "  delaycompress",
        "  missingok",
        "  notifempty",
        "  create 0640 root adm",
        "  sharedscripts",
        "  postrotate",
        "    /usr/lib/rsyslog/rsyslog-rotate",
        "  endscript",
        "}",
        ""])


def render_journald(max_use, retention_days):
    return "\n".join([
        HEADER.rstrip("\n") % "log_forwarding, LOG-001",
        "# rsyslog reads the journal itself (imjournal): no second copy through the socket.",
        "[Journal]",
        "Storage=persistent",
        "SystemMaxUse=%s" % max_use,
        "MaxRetentionSec=%dday" % retention_days,
        "ForwardToSyslog=no",
        ""])


def render_sudoers(logfile):
    return "\n".join([
        HEADER.rstrip("\n") % "log_forwarding, LOG-006",
        "Defaults syslog=authpriv",
        'Defaults logfile="%s"' % logfile,
        ""])


# --- parsing ---------------------------------------------------------------------------

def journald_settings(files):
    """Effective [Journal] settings from ``[(path, text)]`` in systemd's order (later wins)."""
    settings = {}
    for _path, text in files:
        section = None
        for line in (text or "").splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Journal" and "=" in line:
                key, value = line.split("=", 1)
                settings[key.strip()] = value.strip()
    return settings


def sshd_loglevel(sshd_t):
    for line in (sshd_t or "").splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "loglevel":
            return parts[1].strip().upper()
    return None


def sudo_logging(sudo_v):
    """(syslog facility, log file) as ``sudo -V`` (run as root) prints them."""
    facility = logfile = None
    for line in (sudo_v or "").splitlines():
        if line.startswith("Syslog facility if syslog is being used for logging:"):
            facility = line.split(":", 1)[1].strip()
        elif line.startswith("Path to log file:"):
            logfile = line.split(":", 1)[1].strip()
    return facility, logfile


def latest_stats(syslog_tail, queue=QUEUE_NAME):
    """The last impstats report of the forwarding queue and the collectors' actions in the
    tail of the local syslog file: {"time": ..., "size": n, "enqueued": n, "actions":
    {name: {"processed", "failed", "suspended"}}}, or None when there is none."""
    found = None
    actions = {}
    for line in (syslog_tail or "").splitlines():
        start = line.find("rsyslogd-pstats")
        brace = line.find("{", start)
        if start < 0 or brace < 0:
            continue
        try:
            record = json.loads(line[brace:])
        except ValueError:
            continue
        if record.get("name") == queue and record.get("origin") == "core.queue":
            found = {"time": line.split(" ", 1)[0], "size": int(record.get("size", 0)),
                     "enqueued": int(record.get("enqueued", 0)), "actions": dict(actions)}
        elif record.get("origin") == "core.action" and str(record.get("name", "")).startswith("yoroi_collector_"):
            actions[record["name"]] = dict((k, int(record.get(k, 0))) for k in ("processed", "failed", "suspended"))
            if found is not None:
                found["actions"][record["name"]] = actions[record["name"]]
    return found


def listening_ports(proc_tables):
    """TCP ports in LISTEN state from the text of /proc/net/tcp and tcp6."""
    ports = set()
    for text in proc_tables:
        for line in (text or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# --- evaluation ------------------------------------------------------------------------

def state_finding(control, expected, before, after, check_mode, attempted, evidence, subject=None):
    """``before``/``after``: (ok, actual)."""
    status = fold(before[0], after[0], check_mode, attempted)
    # an audit reports what is there now; an apply what is there after it
    return finding(control, status, expected, before[1] if check_mode else after[1], evidence, subject)


def journald_state(settings, persistent_dir_exists, max_use, retention_days):
    wanted = {"Storage": "persistent", "SystemMaxUse": str(max_use), "MaxRetentionSec": "%dday" % retention_days}
    wrong = ["%s=%s" % (k, settings.get(k, "(unset)")) for k, v in sorted(wanted.items()) if settings.get(k) != v]
    if not persistent_dir_exists:
        wrong.append("no /var/log/journal")
    if wrong:
        return False, "journald: " + ", ".join(wrong)
    return True, "journald: Storage=persistent, SystemMaxUse=%s, MaxRetentionSec=%dday, in /var/log/journal" % (
        max_use, retention_days)


def forwarding_state(installed, conf_matches, active, tls_ok, collectors):
    problems = []
    if not installed:
        problems.append("rsyslog-relp not installed")
    if not conf_matches:
        problems.append("%s is not the forwarding configuration" % CLIENT_CONF)
    if tls_ok is not True:
        problems.append(tls_ok or "TLS files missing")
    if not active:
        problems.append("rsyslog not running")
    names = ", ".join("%s:%d" % c for c in collectors)
    if problems:
        return False, "; ".join(problems)
    return True, "RELP over TLS to %s (tls.authMode=name)" % names


def queue_state(conf_matches, queue_files, stats=None):
    size = sum(queue_files.values())
    text = "queue %s: %d bytes on disk in %d files" % (QUEUE_NAME, size, len(queue_files))
    if stats:
        text += ", %d lines in the queue (rsyslog's report at %s)" % (stats["size"], stats["time"])
    return (conf_matches, text if conf_matches else "no disk-assisted queue configured; " + text)


def delivery_state(probes, stats, stats_age):
    """``probes``: [(collector, None or error, peer certificate name)]; ``stats``: the
    latest impstats report (latest_stats) and its age in seconds. The first collector
    that answered and verified both ways is the one seen; lines in the queue mean the
    last ones have not been delivered; a report too old (or none) tells nothing."""
    seen = [(c, name) for c, error, name in probes if error is None]
    errors = ["%s: %s" % (c, error) for c, error, _n in probes if error is not None]
    if not seen:
        return False, "no collector verified: " + ("; ".join(errors) or "none configured")
    text = "collector %s seen, TLS verified (certificate %s)" % (seen[0][0], seen[0][1])
    if errors:
        text += "; " + "; ".join(errors)
    if not stats or stats_age is None or stats_age > STATS_MAX_AGE:
        return False, text + "; no recent report of rsyslog's queue in %s" % SYSLOG_FILE
    taken = ", ".join("%s processed %d, failed %d" % (name, v["processed"], v["failed"])
                      for name, v in sorted(stats["actions"].items()))
    if stats["size"]:
        return False, text + "; %d lines waiting in the queue at %s (%s)" % (stats["size"], stats["time"], taken)
    return True, text + "; every line delivered as of %s (%s)" % (stats["time"], taken)


def sshd_state(level):
    return (level == "VERBOSE", "LogLevel %s" % (level or "unknown (sshd -T failed)"))


def sudo_state(facility, logfile, wanted_logfile):
    ok = facility not in (None, "", "none") and logfile == wanted_logfile
    return ok, "syslog facility %s, log file %s" % (facility or "none", logfile or "none")


def collector_state(installed, conf_matches, active, listening, port, peers):
    problems = []
    if not installed:
        problems.append("rsyslog-relp not installed")
    if not conf_matches:
        problems.append("%s is not the collector configuration" % COLLECTOR_CONF)
    if not active:
        problems.append("rsyslog not running")
    if not listening:
        problems.append("nothing listens on port %d" % port)
    if not peers:
        problems.append("no permitted peers")
    if problems:
        return False, "; ".join(problems)
    return True, "imrelp with TLS on port %d, permitted: %s" % (port, ", ".join(peers))


def tree_state(hosts, peers, now, max_silence_hours):
    """``hosts``: {name: last write, epoch seconds}. A permitted peer without a wildcard
    that was never heard from, or not within ``max_silence_hours``, fails."""
    silent = []
    for peer in peers:
        if "*" in peer:
            continue
        short = peer.split(".")[0]
        last = hosts.get(peer, hosts.get(short))
        if last is None:
            silent.append("%s never heard from" % peer)
        elif max_silence_hours and now - last > max_silence_hours * 3600:
            silent.append("%s silent for %.1f h" % (peer, (now - last) / 3600.0))
    seen = ", ".join("%s %ds ago" % (h, max(0, int(now - t))) for h, t in sorted(hosts.items())) or "no host yet"
    if silent:
        return False, "; ".join(silent) + " (last lines: %s)" % seen
    return True, "last lines: %s" % seen


def rotation_state(conf_matches, installed, retention_days):
    if not installed:
        return False, "logrotate not installed"
    if not conf_matches:
        return False, "%s is not the rotation policy" % LOGROTATE_CONF
    return True, "%s: daily, kept %d days, compressed" % (LOGROTATE_CONF, retention_days)
