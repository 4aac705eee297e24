# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.time_sync: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/time_sync.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils import _time_sync as tim
from ansible_collections.yoroi.baseline.plugins.module_utils._kernel import container_name

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
ENV = {"LC_ALL": "C"}
POLL_SECONDS = 0.5


def host(path):
    return ROOT + path


def run(module, argv):
    """(rc, stdout, stderr) of a command, or (None, "", why) when it is not installed."""
    path = module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin"])
    if not path:
        return None, "", "%s not found" % argv[0]
    return module.run_command([path] + argv[1:], environ_update=ENV)


def read_dir(directory, suffix):
    """{path: text} of the files of ``directory`` that end with ``suffix``."""
    try:
        names = sorted(os.listdir(host(directory)))
    except OSError:
        return {}
    return dict(("%s/%s" % (directory, name), _files.read_text(host("%s/%s" % (directory, name)), ""))
                for name in names if name.endswith(suffix) and os.path.isfile(host("%s/%s" % (directory, name))))


class Reader(object):
    """One reading of the host's time synchronization."""

    def __init__(self, module, daemon):
        self.module = module
        self.daemon = daemon

    def packages(self):
        missing = _packages.missing(self.module, list(tim.TIME_PACKAGES))
        return dict((name, name not in missing) for name in tim.TIME_PACKAGES)

    def units(self):
        rc, out, _err = run(self.module, ["systemctl", "show", "-p", tim.SHOW_PROPERTIES]
                            + list(tim.TIME_UNITS))
        return tim.parse_units(out) if rc == 0 else {}

    def files(self):
        """{path: text} of the files the daemon reads its servers from."""
        if self.daemon == "chrony":
            conf = _files.read_text(host(tim.CHRONY_CONF))
            files = {tim.CHRONY_CONF: conf}
            for directory in tim.confdirs(conf):
                files.update(read_dir(directory, ".conf"))
            files.update(read_dir(tim.SOURCES_DIR, ".sources"))
            files[tim.CLOCK_DROPIN] = _files.read_text(host(tim.CLOCK_DROPIN))
            return files
        found = dict((directory, dict((path.rsplit("/", 1)[1], text) for path, text in read_dir(directory, ".conf").items()))
                     for directory in tim.TIMESYNCD_DIRS)
        files = dict(tim.order_dropins(found))
        files[tim.TIMESYNCD_CONF] = _files.read_text(host(tim.TIMESYNCD_CONF))
        files.setdefault(tim.TIMESYNCD_DROPIN, None)
        return files

    def report(self, units):
        """The daemon's own word on the clock; only asked when its unit runs (a stopped
        daemon would make chronyc and timedatectl wait)."""
        unit = tim.DAEMONS[self.daemon]["unit"]
        if not tim.unit_running(units.get(unit, {})):
            return {"error": "%s is not running" % unit}
        if self.daemon == "chrony":
            rc, out, err = run(self.module, ["chronyc", "-n", "tracking"])
            if rc != 0:
                return {"error": "chronyc -n tracking: %s" % (err or out or "exit %s" % rc).strip()}
            return {"tracking": tim.parse_tracking(out)}
        rc, out, err = run(self.module, ["timedatectl", "show", "-p", "NTPSynchronized"])
        if rc != 0:
            return {"error": "timedatectl show: %s" % (err or out or "exit %s" % rc).strip()}
        report = {"synchronized": tim.parse_keyvalues(out).get("NTPSynchronized")}
        rc, out, _err = run(self.module, ["timedatectl", "timesync-status"])
        report["status"] = tim.parse_timesync_status(out) if rc == 0 else {}
        rc, out, _err = run(self.module, ["timedatectl", "show-timesync"])
        report["link_servers"] = tim.parse_keyvalues(out).get("LinkNTPServers", "").split() if rc == 0 else []
        return report

    def sources(self, files, report):
        """(sources, per-interface servers) for TIM-002."""
        if self.daemon == "chrony":
            conf = files.get(tim.CHRONY_CONF)
            dirs = tim.confdirs(conf)
            conf_files = dict((p, t) for p, t in files.items() if any(p.startswith(d + "/") for d in dirs))
            source_files = dict((p, t) for p, t in files.items() if p.startswith(tim.SOURCES_DIR + "/") and t is not None)
            return tim.chrony_sources(conf, conf_files, source_files), ()
        ordered = [(tim.TIMESYNCD_CONF, files.get(tim.TIMESYNCD_CONF))] + [
            (p, t) for p, t in sorted(files.items(), key=lambda item: item[0].rsplit("/", 1)[-1])
            if p != tim.TIMESYNCD_CONF and t is not None]
        ntp, fallback, origin = tim.timesyncd_servers(ordered)
        found = [("server", name, origin.get(name, "")) for name in ntp]
        if not ntp:
            found += [("fallback", name, "FallbackNTP") for name in (fallback or ["(built-in list)"])]
        return found, tuple(report.get("link_servers") or ())


def wanted_files(daemon, servers, files, measure):
    """{path: text, or None to remove} of the files the daemon should have."""
    if daemon == "timesyncd":
        return {tim.TIMESYNCD_DROPIN: tim.render_timesyncd(servers)}
    wanted = {tim.SOURCES_FILE: tim.render_sources(servers)}
    conf = tim.render_chrony_conf(files.get(tim.CHRONY_CONF))
    if conf is not None:
        wanted[tim.CHRONY_CONF] = conf
    unit_text = None
    for path in tim.CHRONY_UNITS:
        unit_text = _files.read_text(host(path))
        if unit_text is not None:
            break
    wanted[tim.CLOCK_DROPIN] = tim.render_clock_dropin(unit_text) if measure else None
    return wanted


def remove_file(module, path):
    """Remove a file of ours, backing it up first; (changed, backup)."""
    if not os.path.exists(host(path)):
        return False, None
    if module.check_mode:
        return True, None
    backup = module.backup_local(host(path))
    os.unlink(host(path))
    return True, backup


def wait_for_sync(module, reader, units, seconds, max_offset_ms):
    """Poll the daemon's report until it says synchronized or ``seconds`` pass; the
    seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if tim.sync_state(reader.daemon, reader.report(units), max_offset_ms)[0]:
            break
        time.sleep(POLL_SECONDS)
    return time.monotonic() - start


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            daemon=dict(type="str", choices=sorted(tim.DAEMONS), default="chrony"),
            servers=dict(type="list", elements="str", default=[]),
            max_offset_ms=dict(type="int", default=100),
            clock_control=dict(type="str", choices=list(tim.CLOCK_CONTROL), default="auto"),
            wait=dict(type="int", default=15),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "time_sync", tim.CONTROLS, change="time synchronization")
    daemon, servers = params["daemon"], tim.unique(params["servers"])
    try:
        tim.check_servers(servers)
    except ValueError as exc:
        concern.refuse(str(exc))
    if not 1 <= params["max_offset_ms"] <= 3600000 or not 0 <= params["wait"] <= 600:
        concern.refuse("max_offset_ms must be from 1 to 3600000 and wait from 0 to 600")
    unit = tim.DAEMONS[daemon]["unit"]
    in_container = container_name(_files.read_text(host("/run/systemd/container")),
                                  os.path.exists(host("/run/.containerenv")), os.path.exists(host("/.dockerenv")))
    measure = daemon == "chrony" and tim.measures_only(params["clock_control"], in_container)
    reader = Reader(module, daemon)

    # read
    installed = reader.packages()
    units = reader.units()
    others = tim.others_running(daemon, units)
    errors = []
    if servers and not module.check_mode:
        # another time daemon first: two would fight over the clock, and its package may
        # conflict with the one to install
        with concern.changing(needed=bool(others)):
            for other in others:
                for action in ("stop", "disable"):
                    rc, _out, err = run(module, ["systemctl", action, other])
                    if rc != 0:
                        errors.append("systemctl %s %s: %s" % (action, other, (err or "").strip()))
        replace = [name for name in tim.TIME_PACKAGES if installed.get(name) and name not in params["packages"]]
        concern.install(params["packages"], params["apt_cache_valid_time"], replace=replace)
        if concern.installed or others:
            installed, units = reader.packages(), reader.units()
    files = reader.files()
    report = reader.report(units)
    sources_before = reader.sources(files, report)

    # plan: nothing without the site's servers, nor without the daemon (not asked for)
    plan = {}
    present = installed.get(tim.DAEMONS[daemon]["package"], False)
    if servers and (present or module.check_mode):
        for path, text in wanted_files(daemon, servers, files, measure).items():
            if text != files.get(path):
                plan[path] = (files.get(path), text)
    state = units.get(unit, {})
    acting = bool(servers) and (present or module.check_mode)
    enable = acting and not tim.unit_enabled(state)
    # a unit whose start condition failed (systemd-timesyncd in a container) is started
    # again only when a file changed: another try would change nothing, every run
    start = acting and (bool(plan) or (not tim.unit_running(state) and not tim.condition_failed(state)))

    written = {}
    waited = 0.0
    with concern.changing(needed=bool(plan or enable or start)):
        for path, (_old, text) in sorted(plan.items()):
            if text is None:
                written[path] = remove_file(module, path)[1]
            else:
                written[path] = _files.write_file(module, host(path), text, mode=0o644)[1]
        if not module.check_mode and present:
            if tim.CLOCK_DROPIN in plan:
                run(module, ["systemctl", "daemon-reload"])
            for action, needed in (("enable", enable), ("restart" if plan else "start", start)):
                if needed:
                    rc, _out, err = run(module, ["systemctl", action, unit])
                    if rc != 0:
                        errors.append("systemctl %s %s: %s" % (action, unit, (err or "").strip()))
    changed = bool(plan or enable or start or others) if servers else False

    # read back (or take the plan, in check mode)
    if module.check_mode or not servers:
        after_installed, after_units, after_files, after_report = installed, units, files, report
        after_files = dict(files)
        after_files.update((path, text) for path, (_old, text) in plan.items())
    else:
        after_units = reader.units()
        # (a unit that did not start will not synchronize: no wait for it)
        if changed and params["wait"] and tim.unit_running(after_units.get(unit, {})):
            waited = wait_for_sync(module, reader, after_units, params["wait"], params["max_offset_ms"])
        after_installed, after_files, after_report = reader.packages(), reader.files(), reader.report(after_units)

    attempted = bool(servers) and not module.check_mode
    findings = [
        tim.daemon_finding(daemon, (installed, units), (after_installed, after_units), module.check_mode,
                           attempted and bool(changed or concern.installed), errors, bool(servers), measure, in_container),
        tim.config_finding(servers, sources_before, reader.sources(after_files, after_report), module.check_mode,
                           attempted and bool(plan)),
        tim.sync_finding(daemon, report, after_report, params["max_offset_ms"], module.check_mode,
                         attempted and changed, waited),
    ]
    diff = [_files.file_diff(path, old, text or "") for path, (old, text) in sorted(plan.items())]
    concern.exit(findings, changed, diff, files=written,
                 tracking=(after_report.get("tracking") or after_report.get("status") or {}))
