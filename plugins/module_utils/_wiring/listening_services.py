# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.listening_services: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/listening_services.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _access
from ansible_collections.yoroi.baseline.plugins.module_utils import _assets
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _services as svc

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def read_listeners():
    owners = _assets.socket_owners()
    units = {}
    for found in owners.values():
        for pid, _name in found:
            if pid not in units:
                units[pid] = svc.unit_of_cgroup(_files.read_text("/proc/%d/cgroup" % pid, ""))
    return svc.listeners(_assets.read_sockets(), owners, units)


def ssh_ports(module):
    """The ports sshd listens on, from ``sshd -T``; 22 when it cannot tell."""
    sshd = module.get_bin_path("sshd", opt_dirs=["/usr/sbin"])
    if sshd:
        rc, out, _err = module.run_command([sshd, "-T"], environ_update=C_LOCALE)
        if rc == 0:
            return _access.words(_access.parse_effective(out), "port") or ["22"]
    return ["22"]


def unit_states(module, systemctl, units):
    states = {}
    for unit in units:
        rc, out, _err = module.run_command([systemctl, "show", "-p", "LoadState,ActiveState,UnitFileState", unit],
                                           environ_update=C_LOCALE)
        states[unit] = svc.parse_show(out) if rc == 0 else {}
    return states


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            allowlist=dict(type="list", elements="dict", default=[dict(d) for d in svc.DEFAULT_ALLOWLIST], options=dict(
                port=dict(type="int", required=True),
                protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
                process=dict(type="str"),
            )),
            allow_loopback=dict(type="bool", default=True),
            stop_units=dict(type="list", elements="str", default=[]),
        ), protected=False),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "listening_services", svc.CONTROLS, change="services")
    units = [svc.unit_name(name) for name in params["stop_units"]]

    # read
    found = read_listeners()
    systemctl = module.get_bin_path("systemctl")
    if units and not systemctl:
        concern.refuse("systemctl is not installed, so no unit can be stopped")
    before = unit_states(module, systemctl, units) if units else {}

    # plan: never sshd, nor what listens on the SSH port
    actions, refused = svc.plan_stops(units, before, svc.ssh_protected_units(found, ssh_ports(module)) if units else {})
    errors = {}
    with concern.changing(needed=bool(actions)):
        if not module.check_mode:
            for unit, todo in actions.items():
                for action in todo:
                    rc, _out, err = module.run_command([systemctl, action, unit], environ_update=C_LOCALE)
                    if rc != 0:
                        errors[unit] = "systemctl %s failed: %s" % (action, err.strip())
                        break

    after = before
    if actions and not module.check_mode:
        after = unit_states(module, systemctl, units)
        found = read_listeners()
    findings = svc.allowlist_findings(found, params["allowlist"], params["allow_loopback"])
    findings += svc.stop_findings(units, before, after, actions, refused, errors, module.check_mode)
    # check mode: "would change" exactly when an apply would stop or disable a unit
    concern.exit(findings, bool(actions), listening=found)
