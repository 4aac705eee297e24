# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the modules yoroi.baseline.log_forwarding (clients, main) and
yoroi.baseline.log_collector (the central collector; collector_main, called from _wiring/log_collector.py):
arguments, read, plan, act, exit.

Their documentation is in plugins/modules/log_forwarding.py and log_collector.py. The
code lives here, in module_utils, so that the check-mode batch can run it in one process
with the other concerns. The private keys never pass through a module option: the roles
copy them (no_log) and the modules only check their owner and mode.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _log_forwarding as lf
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
PROBE_TIMEOUT = 3.0


def host(path):
    return ROOT + path


def unit_active(module, unit):
    rc, out = _concern.run_tool(module, ["systemctl", "is-active", unit])
    return rc == 0 and out.strip() == "active"


def key_problem(path):
    """None when the private key is root's, a regular file and 0600 or stricter."""
    try:
        info = os.lstat(host(path))
    except OSError:
        return "%s missing" % path
    if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        return "%s must be a file of root's, mode 0600 (is %04o)" % (path, stat.S_IMODE(info.st_mode))
    return None


def tls_files_ok(paths, ca_text, cert_text):
    """True, or what is wrong with the CA, certificate and key on the host."""
    for name, wanted in (("ca", ca_text), ("cert", cert_text)):
        if _files.read_text(host(paths[name])) != wanted:
            return "%s is not the given %s" % (paths[name], "CA certificate" if name == "ca" else "certificate")
    return key_problem(paths["key"]) or True


def relp_frame(txnr, command, data=b""):
    """One RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF."""
    head = b"%d %s %d" % (txnr, command, len(data))
    return head + (b" " + data if data else b"") + b"\n"


def probe(collector, paths):
    """(collector text, None or error, the certificate name the collector showed): a TLS
    handshake that verifies the collector by name against the CA and shows our
    certificate, then a RELP open and close - the collector checks our certificate when
    the session opens, and answers 200 only when it permits us."""
    hostname, port = collector
    label = "%s:%d" % collector
    try:
        context = ssl.create_default_context(cafile=host(paths["ca"]))
        context.load_cert_chain(host(paths["cert"]), host(paths["key"]))
        with socket.create_connection((hostname, port), timeout=PROBE_TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname=hostname) as tls:
                peer = tls.getpeercert() or {}
                names = [v for k, v in peer.get("subjectAltName", ()) if k == "DNS"]
                tls.sendall(relp_frame(1, b"open", b"relp_version=0\nrelp_software=yoroi\ncommands=syslog"))
                answer = b""
                while b"\n" not in answer[answer.find(b"rsp"):] and len(answer) < 4096:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                if not answer.startswith(b"1 rsp ") or b" 200 " not in answer[:40]:
                    return label, "our certificate refused: the RELP session was %s" % (
                        "closed" if not answer else "answered %r" % answer[:60]), None
                tls.sendall(relp_frame(2, b"close"))
        return label, None, names[0] if names else hostname
    except ssl.SSLCertVerificationError as exc:
        return label, "certificate not verified: %s" % exc.verify_message, None
    except ssl.SSLError as exc:
        return label, "TLS refused: %s" % (exc.reason or exc), None
    except (OSError, ValueError) as exc:
        return label, str(exc) or exc.__class__.__name__, None


def queue_files(directory=lf.SPOOL_DIR, name=lf.QUEUE_NAME):
    found = {}
    try:
        names = os.listdir(host(directory))
    except OSError:
        return found
    for entry in names:
        if entry.startswith(name + ".") and not entry.endswith(".qi"):
            try:
                found[entry] = os.lstat(host(directory + "/" + entry)).st_size
            except OSError:
                pass
    return found


def read_stats(path=lf.SYSLOG_FILE, size=262144):
    """(latest impstats report of the queue, its age in seconds) from the tail of the
    local syslog file; (None, None) when there is none."""
    try:
        with open(host(path), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None, None
    stats = lf.latest_stats(tail)
    if not stats:
        return None, None
    try:
        when = datetime.datetime.fromisoformat(stats["time"]).timestamp()
    except ValueError:
        return stats, None
    return stats, time.time() - when


def journald_files():
    """[(path, text)] of journald's configuration in systemd's order."""
    found = [("/etc/systemd/journald.conf", _files.read_text(host("/etc/systemd/journald.conf"), ""))]
    dropins = {}
    for directory in ("/usr/lib/systemd/journald.conf.d", "/etc/systemd/journald.conf.d", "/run/systemd/journald.conf.d"):
        try:
            names = os.listdir(host(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                dropins[name] = directory + "/" + name
    for name in sorted(dropins):
        found.append((dropins[name], _files.read_text(host(dropins[name]), "")))
    return found


def write_all(module, plan, written):
    for path, (text, mode, validate) in sorted(plan.items()):
        written[path] = _files.write_file(module, host(path), text, mode=mode, validate=validate)[1]


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            collectors=dict(type="list", elements="str", default=[]),
            ca_cert=dict(type="str", default=""),
            cert=dict(type="str", default=""),
            queue_max_disk=dict(type="str", default="2G"),
            journald_max_use=dict(type="str", default="1G"),
            journald_retention_days=dict(type="int", default=90),
            sudo_logfile=dict(type="path", default="/var/log/sudo.log"),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "log_forwarding", lf.CLIENT_CONTROLS, change="log forwarding")
    try:
        collectors = [lf.parse_endpoint(c) for c in params["collectors"]]
        lf.check_size(params["queue_max_disk"])
        lf.check_size(params["journald_max_use"])
    except ValueError as exc:
        concern.refuse(str(exc))
    if not 1 <= params["journald_retention_days"] <= 3650:
        concern.refuse("journald_retention_days must be from 1 to 3650")
    configured = bool(collectors and params["ca_cert"] and params["cert"])
    paths = lf.tls_paths(lf.TLS_DIR)
    if configured:
        # in check mode a missing package is recorded as a change the apply would make
        concern.install(params["packages"], params["apt_cache_valid_time"])
    missing = _packages.missing(module, list(lf.PACKAGES))

    def read():
        return dict(
            journald=lf.journald_settings(journald_files()),
            journal_dir=os.path.isdir(host("/var/log/journal")),
            conf=_files.read_text(host(lf.CLIENT_CONF)),
            tls=tls_files_ok(paths, params["ca_cert"], params["cert"]) if configured else "no collectors or certificates given",
            active=unit_active(module, "rsyslog"),
            sshd=lf.sshd_loglevel(_concern.run_tool(module, ["sshd", "-T"])[1]),
            sudo=lf.sudo_logging(_concern.run_tool(module, ["sudo", "-V"])[1]),
            queue=queue_files(),
            stats=read_stats(),
        )

    before = read()
    wanted_conf = lf.render_client(collectors, params["queue_max_disk"]) if configured else None
    plan = {}
    for path, text, mode, validate in (
            (lf.JOURNALD_DROPIN, lf.render_journald(params["journald_max_use"], params["journald_retention_days"]), 0o644, None),
            (lf.SUDOERS_DROPIN, lf.render_sudoers(params["sudo_logfile"]), 0o440, ["visudo", "-cf", "%s"])):
        if _files.read_text(host(path)) != text:
            plan[path] = (text, mode, validate)
    rsyslog_plan = {}
    if configured:
        for path, text in ((paths["ca"], params["ca_cert"]), (paths["cert"], params["cert"])):
            if _files.read_text(host(path)) != text:
                rsyslog_plan[path] = (text, 0o644, None)
        if before["conf"] != wanted_conf:
            rsyslog_plan[lf.CLIENT_CONF] = (wanted_conf, 0o644, ["rsyslogd", "-N1", "-f", "%s"])
    start = configured and not before["active"]
    written = {}
    errors = []
    with concern.changing(needed=bool(plan or rsyslog_plan or start)):
        if not module.check_mode:
            write_all(module, plan, written)
            if lf.JOURNALD_DROPIN in plan:
                for argv in (["systemctl", "restart", "systemd-journald"], ["journalctl", "--flush"]):
                    rc, out = _concern.run_tool(module, argv)
                    if rc != 0:
                        errors.append("%s: %s" % (" ".join(argv), out))
            if configured and not missing:
                write_all(module, dict((p, v) for p, v in rsyslog_plan.items() if p != lf.CLIENT_CONF), written)
                write_all(module, dict((p, v) for p, v in rsyslog_plan.items() if p == lf.CLIENT_CONF), written)
                if rsyslog_plan or start or lf.JOURNALD_DROPIN in plan:
                    rc, out = _concern.run_tool(module, ["systemctl", "restart", "rsyslog"])
                    if rc != 0:
                        errors.append("systemctl restart rsyslog: %s" % out)
    changed = bool(plan or rsyslog_plan or start)

    if module.check_mode:
        after = dict(before)
        after["conf"] = wanted_conf if configured else before["conf"]
        after["journald"] = lf.journald_settings(journald_files() + [(lf.JOURNALD_DROPIN, plan[lf.JOURNALD_DROPIN][0])]) \
            if lf.JOURNALD_DROPIN in plan else before["journald"]
        after["journal_dir"] = before["journal_dir"] or lf.JOURNALD_DROPIN in plan
        after["tls"] = True if configured else before["tls"]
        after["active"] = before["active"] or configured
    else:
        after = read()
    installed_before = not missing
    installed_after = not _packages.missing(module, list(lf.PACKAGES)) if not module.check_mode else (not missing or configured)
    seen = before if module.check_mode else after
    probes = [probe(c, paths) for c in collectors] if configured and seen["tls"] is True else []
    journald_args = (params["journald_max_use"], params["journald_retention_days"])
    attempted = not module.check_mode
    findings = [
        lf.state_finding("LOG-001", lf.CLIENT_CONTROLS["LOG-001"],
                         lf.journald_state(before["journald"], before["journal_dir"], *journald_args),
                         lf.journald_state(after["journald"], after["journal_dir"], *journald_args),
                         module.check_mode, attempted and lf.JOURNALD_DROPIN in plan,
                         "journald.conf and journald.conf.d/*.conf in systemd's order; /var/log/journal"),
        lf.state_finding("LOG-002", lf.CLIENT_CONTROLS["LOG-002"],
                         lf.forwarding_state(installed_before, before["conf"] == wanted_conf and configured,
                                             before["active"], before["tls"], collectors),
                         lf.forwarding_state(installed_after, after["conf"] == wanted_conf and configured,
                                             after["active"], after["tls"], collectors),
                         module.check_mode, attempted and bool(rsyslog_plan or start),
                         "%s; systemctl is-active rsyslog; %s" % (lf.CLIENT_CONF, lf.TLS_DIR)),
        lf.state_finding("LOG-003", lf.CLIENT_CONTROLS["LOG-003"],
                         lf.queue_state(before["conf"] == wanted_conf and configured, before["queue"], before["stats"][0]),
                         lf.queue_state(after["conf"] == wanted_conf and configured, after["queue"], after["stats"][0]),
                         module.check_mode, attempted and lf.CLIENT_CONF in rsyslog_plan,
                         "%s/%s.*" % (lf.SPOOL_DIR, lf.QUEUE_NAME)),
    ]
    delivered = lf.delivery_state(probes, *seen["stats"]) if probes else \
        (False, "no collector verified: " + ("rsyslog not configured" if not configured else str(seen["tls"])))
    findings.append(lf.finding("LOG-004", PASS_OR_FAIL[delivered[0]], lf.CLIENT_CONTROLS["LOG-004"], delivered[1],
                               "a TLS handshake and a RELP open with each collector (CA and name checked, our certificate shown); "
                               "rsyslog's impstats report of the queue in /var/log/syslog"))
    findings.append(lf.finding("LOG-005", PASS_OR_FAIL[lf.sshd_state(after["sshd"])[0]], lf.CLIENT_CONTROLS["LOG-005"],
                               lf.sshd_state(after["sshd"])[1],
                               "sshd -T; set by the ssh role (yoroi_ssh_extra_settings LogLevel: VERBOSE)"))
    findings.append(lf.state_finding("LOG-006", lf.CLIENT_CONTROLS["LOG-006"],
                                     lf.sudo_state(before["sudo"][0], before["sudo"][1], params["sudo_logfile"]),
                                     lf.sudo_state(*(after["sudo"] if not module.check_mode or lf.SUDOERS_DROPIN not in plan
                                                     else ("authpriv", params["sudo_logfile"])),
                                                   wanted_logfile=params["sudo_logfile"]),
                                     module.check_mode, attempted and lf.SUDOERS_DROPIN in plan,
                                     "sudo -V (as root); %s" % lf.SUDOERS_DROPIN))
    if errors:
        for item in findings:
            if item["control"] in ("LOG-001", "LOG-002") and item["status"] != "pass":
                item["status"] = "error"
                item["evidence"] += "; " + "; ".join(errors)
    if configured and missing and not module.check_mode:
        concern.fail("%s not installed after apt ran" % ", ".join(missing), changed=changed)
    diff = [_files.file_diff(path, None, text) for path, (text, _m, _v) in sorted(dict(plan, **rsyslog_plan).items())
            if not path.endswith(".pem")]
    concern.exit(findings, changed, diff, files=written, queue=after["queue"])


PASS_OR_FAIL = {True: "pass", False: "fail"}


def listening(port):
    tables = [_files.read_text(host("/proc/net/tcp"), ""), _files.read_text(host("/proc/net/tcp6"), "")]
    return port in lf.listening_ports(tables)


def host_tree(directory=lf.REMOTE_DIR):
    """{host: mtime of its newest file}."""
    hosts = {}
    try:
        names = os.listdir(host(directory))
    except OSError:
        return hosts
    for name in names:
        path = host(directory + "/" + name)
        if os.path.isdir(path) and not os.path.islink(path):
            times = [os.lstat(path + "/" + f).st_mtime for f in os.listdir(path)]
            if times:
                hosts[name] = max(times)
    return hosts


def collector_main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            port=dict(type="int", default=2514),
            permitted_peers=dict(type="list", elements="str", default=[]),
            ca_cert=dict(type="str", default=""),
            cert=dict(type="str", default=""),
            retention_days=dict(type="int", default=365),
            max_silence_hours=dict(type="int", default=24),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "log_collector", lf.COLLECTOR_CONTROLS, change="log collector")
    peers = params["permitted_peers"]
    try:
        lf.check_names(peers, "permitted peer")
    except ValueError as exc:
        concern.refuse(str(exc))
    if not 1 <= params["port"] <= 65535 or not 1 <= params["retention_days"] <= 3650:
        concern.refuse("port must be from 1 to 65535 and retention_days from 1 to 3650")
    configured = bool(peers and params["ca_cert"] and params["cert"])
    paths = lf.tls_paths(lf.COLLECTOR_TLS_DIR)
    if configured:
        # in check mode a missing package is recorded as a change the apply would make
        concern.install(params["packages"], params["apt_cache_valid_time"])
    missing = _packages.missing(module, list(lf.COLLECTOR_PACKAGES))
    wanted_conf = lf.render_collector(params["port"], peers)
    wanted_rotate = lf.render_logrotate(params["retention_days"])

    def read():
        return dict(conf=_files.read_text(host(lf.COLLECTOR_CONF)), rotate=_files.read_text(host(lf.LOGROTATE_CONF)),
                    tls=tls_files_ok(paths, params["ca_cert"], params["cert"]) if configured else "no peers or certificates given",
                    active=unit_active(module, "rsyslog"), listening=listening(params["port"]), hosts=host_tree())

    before = read()
    plan = {}
    if configured:
        for path, text in ((paths["ca"], params["ca_cert"]), (paths["cert"], params["cert"])):
            if _files.read_text(host(path)) != text:
                plan[path] = (text, 0o644, None)
        if before["conf"] != wanted_conf:
            plan[lf.COLLECTOR_CONF] = (wanted_conf, 0o644, ["rsyslogd", "-N1", "-f", "%s"])
        if before["rotate"] != wanted_rotate:
            plan[lf.LOGROTATE_CONF] = (wanted_rotate, 0o644, ["logrotate", "-d", "%s"])
    make_dir = configured and not os.path.isdir(host(lf.REMOTE_DIR))
    restart = configured and (any(p != lf.LOGROTATE_CONF for p in plan) or not before["active"] or not before["listening"])
    written = {}
    errors = []
    with concern.changing(needed=bool(plan or make_dir or restart)):
        if not module.check_mode and configured and not missing:
            if make_dir:
                os.makedirs(host(lf.REMOTE_DIR), 0o750)
                os.chmod(host(lf.REMOTE_DIR), 0o750)
            write_all(module, dict((p, v) for p, v in plan.items() if p != lf.COLLECTOR_CONF), written)
            write_all(module, dict((p, v) for p, v in plan.items() if p == lf.COLLECTOR_CONF), written)
            if restart:
                rc, out = _concern.run_tool(module, ["systemctl", "restart", "rsyslog"])
                if rc != 0:
                    errors.append("systemctl restart rsyslog: %s" % out)
                for _attempt in range(20):
                    if listening(params["port"]):
                        break
                    time.sleep(0.25)
    changed = bool(plan or make_dir or restart)
    if module.check_mode:
        after = dict(before, conf=wanted_conf if configured else before["conf"],
                     rotate=wanted_rotate if configured else before["rotate"],
                     tls=True if configured else before["tls"], active=before["active"] or configured,
                     listening=before["listening"] or configured)
    else:
        after = read()

    def conf_ok(state):
        return configured and state["conf"] == wanted_conf and state["tls"] is True

    installed_after = not _packages.missing(module, list(lf.COLLECTOR_PACKAGES)) if not module.check_mode else (not missing or configured)
    attempted = not module.check_mode
    now = time.time()
    findings = [
        lf.state_finding("LOG-010", lf.COLLECTOR_CONTROLS["LOG-010"],
                         lf.collector_state(not missing, conf_ok(before), before["active"], before["listening"],
                                            params["port"], peers),
                         lf.collector_state(installed_after, conf_ok(after), after["active"], after["listening"],
                                            params["port"], peers),
                         module.check_mode, attempted and bool(restart or plan),
                         "%s; systemctl is-active rsyslog; /proc/net/tcp{,6}%s" % (
                             lf.COLLECTOR_CONF, "" if before["tls"] is True or not configured else "; " + str(before["tls"]))),
        lf.finding("LOG-011", PASS_OR_FAIL[lf.tree_state(after["hosts"], peers, now, params["max_silence_hours"])[0]],
                   lf.COLLECTOR_CONTROLS["LOG-011"], lf.tree_state(after["hosts"], peers, now, params["max_silence_hours"])[1],
                   "%s/<host>/: the newest file's time per host" % lf.REMOTE_DIR),
        lf.state_finding("LOG-012", lf.COLLECTOR_CONTROLS["LOG-012"],
                         lf.rotation_state(before["rotate"] == wanted_rotate, "logrotate" not in missing, params["retention_days"]),
                         lf.rotation_state(after["rotate"] == wanted_rotate, installed_after, params["retention_days"]),
                         module.check_mode, attempted and lf.LOGROTATE_CONF in plan, lf.LOGROTATE_CONF),
    ]
    if errors:
        findings[0]["status"] = "error"
        findings[0]["evidence"] += "; " + "; ".join(errors)
    if configured and missing and not module.check_mode:
        concern.fail("%s not installed after apt ran" % ", ".join(missing), changed=changed)
    diff = [_files.file_diff(path, None, text) for path, (text, _m, _v) in sorted(plan.items()) if not path.endswith(".pem")]
    concern.exit(findings, changed, diff, files=written, hosts=dict((h, int(t)) for h, t in after["hosts"].items()))
