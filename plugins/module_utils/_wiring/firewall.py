# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.firewall: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/firewall.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import ipaddress
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _firewall as fw
from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils._files import file_diff, read_text, write_file
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, finding, fold

ENV = {"LC_ALL": "C"}
# What `systemctl enable nftables.service` creates (WantedBy=sysinit.target): the guard
# removes it again on a rollback when it was not there before.
ENABLED_LINK = "/etc/systemd/system/sysinit.target.wants/nftables.service"
# The live sshd configuration as the access engine asks it (tests replace it).
Live = access.Live


def run(module, argv):
    """(rc, stdout, stderr), or (None, "", "NAME not found")."""
    path = module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin"])
    if not path:
        return None, "", "%s not found" % argv[0]
    return module.run_command([path] + list(argv[1:]), environ_update=ENV)


def read_live(module):
    """(parsed ``nft -j list ruleset``, error text or "")."""
    rc, out, err = run(module, ["nft", "-j", "list", "ruleset"])
    if rc is None:
        return fw.parse_ruleset(None), "nftables is not installed (no nft)"
    if rc != 0:
        return None, (err or out).strip().splitlines()[0] if (err or out).strip() else "nft exited %s" % rc
    return fw.parse_ruleset(out), ""


def engine_accounts(concern, warnings):
    """The accounts that must keep SSH access, as the access engine sees them: the
    automation with its key from every address it is connected from, a break-glass
    account by any method from some management address."""
    result = []
    group_rows = hostfiles.parse_group(read_text(hostfiles.GROUP, ""))
    for name, role in concern.must_keep_access():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            warnings.append("%s account %s does not exist on this host; not checked" % (role, name))
            continue
        automation = role == "automation"
        result.append(access.account(
            name, entry.pw_uid, hostfiles.account_groups(name, entry.pw_gid, group_rows), shell=entry.pw_shell,
            shell_ok=access.shell_ok(entry.pw_shell), home=entry.pw_dir, key=None if automation else True,
            password=not automation, need="every" if automation else "any", role=role,
            methods=["publickey"] if automation else None))
    return result


def lockout_problems(module, concern, sshd_bin, live_model, desired, conns, management, warnings):
    """Accounts that reach sshd today and would not under the candidate table, per the
    kit's access engine; [] when nobody loses access."""
    if sshd_bin is None:
        return []
    accounts = engine_accounts(concern, warnings)
    # a break-glass account comes from some management address (a network's first host stands for it)
    sources = []
    for addr in [str(next(n.hosts(), n.network_address) if n.prefixlen < n.max_prefixlen else n.network_address)
                 for n in management] + [c["addr"] for c in conns]:
        if addr not in sources:
            sources.append(addr)
    for acct in accounts:
        if acct["need"] == "any" and sources:
            acct["connections"] = [{"addr": addr} for addr in sources]
    engine = Live(module, sshd_bin)
    before, errors = access.who_loses_access(engine, accounts, conns, reach=lambda a, p: fw.reaches(live_model, a, p))
    after, errors_after = access.who_loses_access(engine, accounts, conns, reach=lambda a, p: fw.reaches(desired, a, p))
    if errors or errors_after:
        concern.refuse("the lockout pre-check could not ask sshd: %s" % "; ".join(errors + errors_after))
    problems = []
    for name, answer in after.items():
        new = [p for p in answer["problems"] if p not in before[name]["problems"]]
        problems += ["%s account %s: %s" % (answer["role"], name, p) for p in new]
        if before[name]["problems"]:
            warnings.append("%s account %s has no way in already, whatever the firewall: %s"
                            % (answer["role"], name, "; ".join(before[name]["problems"])))
    return problems


def systemctl_enabled(module):
    rc, out, _err = run(module, ["systemctl", "is-enabled", fw.SERVICE])
    return rc == 0 and out.strip() in ("enabled", "enabled-runtime", "static", "alias")


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            management_addresses=dict(type="list", elements="str", default=[]),
            allow=dict(type="list", elements="dict", default=[]),
            ssh_ports=dict(type="list", elements="int", default=[]),
            keep_current_client=dict(type="bool", default=True),
            client_address=dict(type="str"),
            icmp_echo=dict(type="bool", default=True),
            log_rate=dict(type="str", default="5/minute"),
            guard_root=dict(type="path", default=guard.GUARD_ROOT),
        ), guard_timeout=120, protected=False, packages=True),
        supports_check_mode=True,
    )
    p = module.params
    concern = _concern.Concern(module, "firewall", fw.CONTROLS, change="firewall")
    try:
        management = [fw.network(text, "management_addresses") for text in p["management_addresses"]]
        allow = fw.check_allow(p["allow"])
        fw.check_rate(p["log_rate"])
        for number in p["ssh_ports"]:
            fw.port(number, "ssh_ports")
        if p["client_address"]:
            fw.network(p["client_address"], "client_address")
    except ValueError as exc:
        concern.refuse(str(exc))
    if p["guard_timeout"] != 0 and p["guard_timeout"] < 10:
        concern.refuse("guard_timeout must be 0 (no guard) or at least 10 seconds")
    if os.geteuid() != 0:
        concern.refuse("firewall needs root (become: true)")

    concern.install(p["packages"], p["apt_cache_valid_time"])

    # --- read once
    warnings = []
    live, live_error = read_live(module)
    if live is None:
        # no CAP_NET_ADMIN (a container without it), or a kernel without nf_tables
        evidence = "nft -j list ruleset: %s" % live_error
        concern.exit([finding(control, ERROR, expected, "nftables cannot read or load rules here: %s" % live_error, evidence)
                      for control, expected in sorted(fw.CONTROLS.items())], changed=False)
    sshd_bin = module.get_bin_path("sshd", opt_dirs=["/usr/sbin"])
    sshd_cfg = {}
    if sshd_bin:
        rc, out, _err = module.run_command([sshd_bin, "-T"], environ_update=ENV)
        sshd_cfg = access.parse_effective(out) if rc == 0 else {}
    ports = sorted(set(p["ssh_ports"] or [int(x) for x in access.words(sshd_cfg, "port")] or [22]))
    conns = access.client_connections([str(x) for x in ports], p["client_address"])
    conns = [c for c in conns if not ipaddress.ip_address(c["addr"]).is_loopback]
    current = [ipaddress.ip_network(c["addr"]) for c in conns] if p["keep_current_client"] else []
    rules_text = read_text(fw.RULES_FILE)
    conf_text = read_text(fw.NFTABLES_CONF)
    unit_text = read_text(fw.RELOAD_UNIT_FILE)
    enabled = systemctl_enabled(module)

    # --- plan (pure)
    desired = fw.policy(ports, management + current, allow, p["icmp_echo"], p["log_rate"])
    rules_new = fw.render(desired)
    conf_new = fw.plan_conf(conf_text)
    unit_new = fw.render_reload_unit()
    writes = [path for path, old, new in ((fw.RULES_FILE, rules_text, rules_new), (fw.NFTABLES_CONF, conf_text, conf_new),
                                          (fw.RELOAD_UNIT_FILE, unit_text, unit_new)) if new is not None and new != old]
    # a new file is loaded too: the live table is then the file's, whatever the model sees
    load = fw.differs(live, desired) or fw.RULES_FILE in writes
    changed = bool(writes or load or not enabled)

    def files_state(rules, conf_ok, is_enabled):
        notes = []
        if rules != rules_new:
            notes.append("%s %s" % (fw.RULES_FILE, "missing" if rules is None else "differs from the site's ruleset"))
        if not conf_ok:
            notes.append("%s does not include it" % fw.NFTABLES_CONF)
        if not is_enabled:
            notes.append("%s not enabled (the rules would not be loaded at boot)" % fw.SERVICE)
        return not notes, "; ".join(notes) or "%s included from %s, %s enabled" % (fw.RULES_FILE, fw.NFTABLES_CONF, fw.SERVICE)

    before = fw.evaluate(live, desired, management, ports, *files_state(rules_text, conf_new is None, enabled))
    others = [t for t in live["tables"] if t != "%s %s" % (fw.FAMILY, fw.TABLE)]
    result = dict(ssh_ports=ports, current_clients=[c["addr"] for c in conns], other_tables=others,
                  precheck={"addresses": [c["addr"] for c in conns], "problems": []})

    # --- lockout pre-check through the kit's access engine: refused before anything is written
    # (an audit says it in FWL-002, "no management address", and changes nothing anyway)
    if load and not management and not current and not module.check_mode:
        concern.refuse("no management address: a default-deny table would leave SSH open to nobody; "
                       "set the controller's addresses (management_addresses)", **result)
    if load:
        problems = lockout_problems(module, concern, sshd_bin, live.get("yoroi"), desired, conns, management, warnings)
        result["precheck"]["problems"] = problems
        if problems:
            concern.refuse("the new firewall ruleset would lock out %s" % "; ".join(problems), **result)
    diffs = [file_diff(path, old, new) for path, old, new in ((fw.RULES_FILE, rules_text, rules_new),
                                                              (fw.NFTABLES_CONF, conf_text, conf_new))
             if path in writes]
    evidence = "nft -j list ruleset; %s" % ("other tables, left alone: %s" % ", ".join(others) if others else "no other table")
    if live_error:
        evidence += "; %s" % live_error

    def findings(after, attempted):
        # an audit shows what is there now; an apply what is there after it
        shown = before if module.check_mode else after
        return [finding(control, fold(before[control][0], after[control][0], module.check_mode, attempted=attempted),
                        fw.CONTROLS[control], shown[control][1], evidence) for control in sorted(fw.CONTROLS)]

    if module.check_mode or not changed:
        planned = {"tables": live["tables"], "unknown": [],
                   "yoroi": dict(desired, hook="input", chains=[fw.CHAIN])}
        after = fw.evaluate(planned, desired, management, ports, *files_state(rules_new, True, True))
        concern.exit(findings(after, False), changed, diffs, **dict(result, **({"warnings": warnings} if warnings else {})))

    # --- apply, under the host lock: the reload unit, the guard, the files, the load, enable
    with concern.changing():
        if fw.RELOAD_UNIT_FILE in writes:
            write_file(module, fw.RELOAD_UNIT_FILE, unit_new, mode=0o644)
            run(module, ["systemctl", "daemon-reload"])
        # only a load can cut access: the guard covers it, and puts back what the boot loads
        guarded = [fw.RULES_FILE, fw.NFTABLES_CONF]
        if not enabled and not os.path.lexists(ENABLED_LINK):
            guarded.append(ENABLED_LINK)
        result.update(concern.arm_guard(guarded if load else [], [fw.RELOAD_UNIT], p["guard_timeout"], p["guard_root"]))
        nft = module.get_bin_path("nft", required=True, opt_dirs=["/usr/sbin", "/sbin"])
        # nft -c: the kernel checks the candidate in a transaction it does not commit
        write_file(module, fw.RULES_FILE, rules_new, mode=0o640, validate=[nft, "-c", "-f", "%s"])
        if conf_new is not None:
            mode = os.stat(fw.NFTABLES_CONF).st_mode & 0o7777 if conf_text is not None else 0o755
            write_file(module, fw.NFTABLES_CONF, conf_new, mode=mode, validate=[nft, "-c", "-f", "%s"])
        if load:
            rc, out, err = module.run_command([nft, "-f", fw.RULES_FILE], environ_update=ENV)
            if rc != 0:
                message = "nft -f %s failed: %s" % (fw.RULES_FILE, (err or out).strip())
                if "guard_token" in result:
                    guard.rollback(module, result["guard_token"], p["guard_root"], lock_held=True)
                    message += "; the change was rolled back"
                concern.fail(message, **result)
        if not enabled:
            rc, out, err = run(module, ["systemctl", "enable", fw.SERVICE])
            if rc != 0:
                warnings.append("systemctl enable %s: %s" % (fw.SERVICE, (err or out).strip()))

    live_after, error_after = read_live(module)
    if live_after is None:
        concern.fail("nft -j list ruleset after the change failed: %s" % error_after, **result)
    after = fw.evaluate(live_after, desired, management, ports,
                        *files_state(read_text(fw.RULES_FILE), fw.plan_conf(read_text(fw.NFTABLES_CONF)) is None,
                                     systemctl_enabled(module)))
    concern.exit(findings(after, True), changed, diffs, **dict(result, **({"warnings": warnings} if warnings else {})))
