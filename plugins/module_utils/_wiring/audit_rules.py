# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.audit_rules: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/audit_rules.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _audit_rules as aud
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _walk
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._kernel import container_name
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, finding

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
LOGIN_DEFS = "/etc/login.defs"


def host(path):
    return ROOT + path


def privileged_programs(search_paths):
    """Every regular SUID/SGID file under ``search_paths``, each walked on its own file
    system; paths as the host names them."""
    found = set()
    skipped = set(host(path) for path in aud.SYSTEM_TREES_SKIPPED)
    for top in search_paths:
        top = host(top.rstrip("/") or "/") if top != "/" else (ROOT or "/")
        # a search path that is itself a symlink (merged /usr: /bin -> usr/bin) is walked
        # at its target; below it, the kit's walk follows no link
        top = os.path.realpath(top)
        for path, info in _walk.walk(top, skipped):
            if stat.S_ISREG(info.st_mode) and info.st_mode & (stat.S_ISUID | stat.S_ISGID):
                found.add(path[len(ROOT):] if ROOT else path)
    return sorted(found)


def rules_files():
    """{name: text} of the rules.d files."""
    directory = host(aud.RULES_DIR)
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    return dict((name, _files.read_text(os.path.join(directory, name), "")) for name in names
                if name.endswith(".rules") and os.path.isfile(os.path.join(directory, name)))


# (rc, output) of a host tool, or (None, why) when it is not installed (tests replace it)
run = _concern.run_tool


class Reader(object):
    """One reading of the host's audit state."""

    def __init__(self, module):
        self.module = module

    def installed(self):
        return not _packages.missing(self.module, ["auditd"])

    def service(self):
        enabled = run(self.module, ["systemctl", "is-enabled", "auditd"])[1]
        active = run(self.module, ["systemctl", "is-active", "auditd"])[1]
        return enabled.splitlines()[-1] if enabled else "", active.splitlines()[-1] if active else ""

    def loaded(self):
        """(auditctl -l output or None, why not)."""
        rc, out = run(self.module, ["auditctl", "-s"])
        if rc != 0:
            return None, out or "auditctl -s failed"
        rc, listed = run(self.module, ["auditctl", "-l"])
        return (listed, "") if rc == 0 else (None, listed)

    def state(self):
        rc, check = run(self.module, ["augenrules", "--check"])
        loaded, why = self.loaded()
        enabled, _active = self.service()
        return aud.State(rules_files(), check if rc == 0 else None, loaded,
                         _files.read_text(host(aud.SYSLOG_PLUGIN)), enabled), why


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            immutable=dict(type="bool", default=True),
            syslog=dict(type="bool", default=True),
            privileged_search_paths=dict(type="list", elements="path", default=["/"]),
            watches=dict(type="dict", default={}),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "audit_rules", aud.CONTROLS, change="audit rules")
    concern.install(params["packages"], params["apt_cache_valid_time"])

    # read
    reader = Reader(module)
    installed = reader.installed()
    enabled_before, active = reader.service()
    before, load_error = reader.state()
    uid_min = _hostfiles.uid_range(_hostfiles.parse_login_defs(_files.read_text(host(LOGIN_DEFS))))[0]
    programs = privileged_programs(params["privileged_search_paths"])
    arch_list = aud.arches(os.uname().machine)
    in_container = container_name(_files.read_text(host("/run/systemd/container")),
                                  os.path.exists(host("/run/.containerenv")), os.path.exists(host("/.dockerenv")))

    # plan
    current = _files.read_text(host(aud.RULES_FILE))
    rules = aud.plan(current, aud.render(arch_list, uid_min, programs, params["immutable"], params["watches"]))
    plugin_before = _files.read_text(host(aud.SYSLOG_PLUGIN))
    plugin_after = aud.render_plugin(plugin_before, True) if params["syslog"] else plugin_before
    writes = {}
    # without auditd (not asked for in packages) nothing would read the rules: none written
    if rules.write and installed:
        writes[aud.RULES_FILE] = (current, rules.content)
    if installed and plugin_after is not None and plugin_after != plugin_before:
        writes[aud.SYSLOG_PLUGIN] = (plugin_before, plugin_after)
    enable = installed and enabled_before != "enabled"
    # auditd cannot run in a container (no audit subsystem of its own): not started there
    start = installed and not in_container and active != "active"
    keys = aud.wanted_keys(params["watches"], programs)
    unloaded = before.loaded is not None and not keys <= before.loaded
    load = installed and (rules.write or not before.compiled or unloaded)

    written = {}
    with concern.changing(needed=bool(writes or enable or start or load)):
        for path, (_old, text) in sorted(writes.items()):
            written[path] = _files.write_file(module, host(path), text, mode=0o640)[1]
        if not module.check_mode:
            if enable:
                run(module, ["systemctl", "enable", "auditd"])
            if start:
                run(module, ["systemctl", "start", "auditd"])
            if load:
                # compiles rules.d into audit.rules, then loads it (refused in a container)
                rc, out = run(module, ["augenrules", "--load"])
                if rc != 0:
                    load_error = "augenrules --load: %s" % (out.splitlines()[-1] if out else "exit %s" % rc)
            if aud.SYSLOG_PLUGIN in writes and active == "active":
                # auditd re-reads its plugins on SIGHUP
                run(module, ["systemctl", "kill", "-s", "SIGHUP", "auditd"])

    # read back (or take the plan, in check mode)
    if module.check_mode:
        files = rules_files()
        if rules.write:
            files[os.path.basename(aud.RULES_FILE)] = rules.content
        after = aud.State(files, "No change" if installed else None, None, plugin_after,
                          "enabled" if installed else enabled_before)
        after.loaded = before.loaded if not rules.write else None
        enabled_after = "enabled" if installed else enabled_before
        active_after = "active" if start else active
    else:
        after, later_error = reader.state()
        load_error = load_error or later_error
        enabled_after, active_after = reader.service()

    findings = [aud.service_finding(installed and not concern.installed, installed, (enabled_before, active),
                                    (enabled_after, active_after), in_container, module.check_mode,
                                    bool(concern.installed) or enable or start)]
    lines_attempted = bool(rules.write) or load
    for group in aud.GROUPS:
        findings.append(aud.rule_findings("AUD-002", group[0], aud.group_lines(group, arch_list, uid_min), group[1],
                                          before, after, module.check_mode, lines_attempted, load_error, in_container))
    for path, key in sorted(params["watches"].items()):
        findings.append(aud.rule_findings("AUD-002", path, aud.extra_lines({path: key}), key,
                                          before, after, module.check_mode, lines_attempted, load_error, in_container))
    findings.append(aud.rule_findings("AUD-003", "%d SUID/SGID programs" % len(programs),
                                      aud.privileged_lines(programs, uid_min), aud.PRIVILEGED_KEY,
                                      before, after, module.check_mode, lines_attempted, load_error, in_container))
    refused = aud.split_programs(programs)[1]
    if refused:
        # a file name that cannot stand in a rule (whitespace, a line break: a user may name
        # a SUID file of theirs so) or one past the limit is reported, never written
        findings.append(finding("AUD-003", FAIL, aud.CONTROLS["AUD-003"],
                                "%d SUID/SGID file(s) not audited" % len(refused),
                                "names that cannot stand in an audit rule, or more than %d programs: %s"
                                % (aud.MAX_PROGRAMS, ", ".join(repr(p) for p in refused[:20])),
                                subject="unauditable"))
    findings.append(aud.immutable_finding(params["immutable"], before, after, module.check_mode, lines_attempted))
    findings.append(aud.plugin_finding(params["syslog"], before, after, module.check_mode,
                                       aud.SYSLOG_PLUGIN in writes, installed))

    diff = [_files.file_diff(path, old, text) for path, (old, text) in sorted(writes.items())]
    changed = bool(writes or enable or start or load)
    concern.exit(findings, changed, diff, files=written, privileged_programs=programs, load_error=load_error or "")
