# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.sshd_hardening: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/sshd_hardening.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import pwd
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils import _sshd as sshd
from ansible_collections.yoroi.baseline.plugins.module_utils._files import file_diff, read_text, write_file
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import SKIPPED, finding

GROUP = hostfiles.GROUP
PASSWD = hostfiles.PASSWD
SHADOW = hostfiles.SHADOW
ENV = {"LC_ALL": "C"}
# Candidate is the SSH access engine's staged configuration (tests replace it).
Candidate = access.Candidate


def run(module, argv):
    return module.run_command(argv, environ_update=ENV)


def effective(module, sshd_bin):
    """(parsed live sshd -T output, error text)."""
    rc, out, err = run(module, [sshd_bin, "-T"])
    if rc != 0:
        return {}, (err or out).strip()
    return sshd.parse_effective(out), ""


def access_losses(live_cfg, after_cfg, group_rows, planned_rows, address):
    """Accounts that log in over SSH today (login shell, and a password hash or an
    authorized key) and that the candidate configuration would refuse (AllowGroups...)."""
    if not live_cfg or not after_cfg:
        return []
    accounts = hostfiles.join_shadow(hostfiles.parse_passwd(read_text(PASSWD, "")), hostfiles.parse_shadow(read_text(SHADOW, "")))
    today = int(time.time() // 86400)
    candidates = []
    for account in accounts:
        has_key = access.keys_found(live_cfg, account.name, account.home, account.uid)
        candidates.append({
            "name": account.name, "uid": account.uid, "shell": account.shell,
            "methods": sshd.login_methods(account.password, account.disabled(today), has_key),
            "groups_before": hostfiles.account_groups(account.name, account.gid, group_rows),
            "groups_after": hostfiles.account_groups(account.name, account.gid, planned_rows),
        })
    return sshd.ssh_access_losses(candidates, live_cfg, after_cfg, address)


def plan_groups(params, group_rows, accounts):
    """(groups to create, [(account, group)] to add, warnings)."""
    warnings = []
    existing = set(row[0] for row in group_rows)
    create = [g for g in params["allow_groups"] if g not in existing]
    adds = []
    if not params["allow_groups"]:
        return create, adds, warnings
    target = params["allow_groups"][0]
    wanted = list(params["allow_group_members"])
    if params["add_protected_to_allow_group"]:
        wanted = [name for name, _role in accounts] + wanted
    for name in wanted:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            warnings.append("account %s does not exist on this host; not added to %s" % (name, target))
            continue
        groups = hostfiles.account_groups(name, entry.pw_gid, group_rows)
        if not groups & set(params["allow_groups"]) and (name, target) not in adds:
            adds.append((name, target))
    return create, adds, warnings


def engine_accounts(concern, params, accounts, warnings, planned_rows):
    """The accounts that must keep SSH access, as the access engine sees them."""
    result = []
    for name, role in accounts:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if role == "automation":
                concern.refuse("the automation account %s does not exist" % name)
            warnings.append("break-glass account %s does not exist on this host; not checked" % name)
            continue
        methods = ["publickey"] if role == "automation" else list(params["break_glass_methods"])
        result.append(access.account(
            name, entry.pw_uid, hostfiles.account_groups(name, entry.pw_gid, planned_rows),
            shell=entry.pw_shell, shell_ok=access.shell_ok(entry.pw_shell), home=entry.pw_dir,
            key=None if "publickey" in methods else False, password="password" in methods,
            need="every", role=role, methods=methods))
    return result


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            permit_root_login=dict(type="str", default="no", choices=["no", "prohibit-password", "forced-commands-only"]),
            max_auth_tries=dict(type="int", default=4),
            login_grace_time=dict(type="int", default=60),
            client_alive_interval=dict(type="int", default=300),
            client_alive_count_max=dict(type="int", default=3),
            ciphers=dict(type="list", elements="str", default=list(sshd.PREFERRED_CIPHERS)),
            macs=dict(type="list", elements="str", default=list(sshd.PREFERRED_MACS)),
            kex_algorithms=dict(type="list", elements="str", default=list(sshd.PREFERRED_KEX)),
            allow_groups=dict(type="list", elements="str", default=["ssh-users"]),
            allow_group_members=dict(type="list", elements="str", default=[]),
            add_protected_to_allow_group=dict(type="bool", default=True),
            break_glass_methods=dict(type="list", elements="str", default=["password"], choices=["password", "publickey"]),
            banner_path=dict(type="path", default="/etc/issue.net"),
            banner_text=dict(type="str", default="Authorized use only. Activity on this system is logged and monitored.\n"
                                                 "Report security incidents and suspicious activity to: {contact}\n"),
            contact=dict(type="str", default=""),
            x11_forwarding=dict(type="bool", default=False),
            allow_agent_forwarding=dict(type="bool", default=False),
            allow_tcp_forwarding=dict(type="bool", default=False),
            extra_settings=dict(type="dict", default={}),
            service_name=dict(type="str", default="ssh"),
            guard_root=dict(type="path", default=guard.GUARD_ROOT),
            sshd_config=dict(type="path", default=sshd.SSHD_CONFIG),
            dropin_path=dict(type="path", default=os.path.join(sshd.DROPIN_DIR, sshd.DROPIN_NAME)),
            client_address=dict(type="str"),
            skip_lockout_check=dict(type="bool", default=False),
        ), guard_timeout=300, protected=False),
        supports_check_mode=True,
    )
    p = module.params
    concern = _concern.Concern(module, "sshd_hardening", dict(
        (control, "sshd: %s as configured" % ", ".join(keys)) for control, keys in sshd.CONTROL_KEYS.items()), change="sshd")
    for option, low, high in (("max_auth_tries", 1, 10), ("login_grace_time", 1, 600),
                              ("client_alive_interval", 1, 3600), ("client_alive_count_max", 1, 10)):
        if not low <= p[option] <= high:
            concern.refuse("%s must be between %d and %d, got %d" % (option, low, high, p[option]))
    if p["guard_timeout"] != 0 and p["guard_timeout"] < 10:
        concern.refuse("guard_timeout must be 0 (no guard) or at least 10 seconds")
    try:
        extra = sshd.extra_settings(p["extra_settings"])
    except ValueError as exc:
        concern.refuse(str(exc))
    sshd_bin = module.get_bin_path("sshd", opt_dirs=["/usr/sbin"])
    if sshd_bin is None:
        # No SSH server: no SSH login to harden. Said as skipped, not as a failed host,
        # so the other concerns of the run (and its exit code) still mean something.
        concern.exit([finding(control, SKIPPED, expected, "no SSH server installed",
                              "sshd not found; nothing to harden on this host")
                      for control, expected in sorted(concern.controls.items())], changed=False)
    if os.geteuid() != 0:
        concern.refuse("sshd_hardening needs root (become: true)")

    ssh_bin = module.get_bin_path("ssh", required=True)
    accounts = concern.must_keep_access()

    # --- read once
    supported = {}
    for kind in ("cipher", "mac", "kex"):
        rc, out, err = run(module, [ssh_bin, "-Q", kind])
        supported[kind] = sshd.parse_query(out) if rc == 0 else []
    live_cfg, live_error = effective(module, sshd_bin)
    main_text = read_text(p["sshd_config"])
    dropin_text = read_text(p["dropin_path"])
    banner_live = read_text(p["banner_path"])
    group_rows = hostfiles.parse_group(read_text(GROUP, ""))

    # --- plan
    chosen = {
        "Ciphers": sshd.choose_algorithms(p["ciphers"], supported["cipher"]),
        "MACs": sshd.choose_algorithms(p["macs"], supported["mac"]),
        "KexAlgorithms": sshd.choose_algorithms(p["kex_algorithms"], supported["kex"]),
    }
    allowed = {"Ciphers": p["ciphers"], "MACs": p["macs"], "KexAlgorithms": p["kex_algorithms"]}
    settings = sshd.desired_settings(p, chosen["Ciphers"], chosen["MACs"], chosen["KexAlgorithms"])
    dropin_new = sshd.render_dropin(settings, extra)
    banner_new = sshd.render_banner(p["banner_text"], p["contact"])
    main_new, main_note, overriding = sshd.plan_main_config(main_text, p["dropin_path"], sshd.MANAGED_KEYS + [k for k, _v in extra])
    eval_params = dict(p)
    before = sshd.evaluate(live_cfg, eval_params, allowed, banner_live, banner_new)
    concern.controls = dict((control, (expected, actual)) for control, (_ok, expected, actual) in before.items())
    for kind, names in chosen.items():
        if not names:
            concern.refuse("the installed OpenSSH supports none of the strong %s given (ssh -Q lists: %s)"
                           % (kind, ", ".join(supported[{"Ciphers": "cipher", "MACs": "mac", "KexAlgorithms": "kex"}[kind]])))
    create, adds, warnings = plan_groups(p, group_rows, accounts)
    planned_rows = [(g, gid, members + [a for a, t in adds if t == g]) for g, gid, members in group_rows]
    planned_rows += [(g, -1, [a for a, t in adds if t == g]) for g in create]

    file_changes = []
    if dropin_new != dropin_text:
        file_changes.append(p["dropin_path"])
    if main_new != (main_text or ""):
        file_changes.append(p["sshd_config"])
    if banner_new != banner_live:
        file_changes.append(p["banner_path"])
    changed = bool(file_changes or create or adds)

    # --- pre-check on the staged candidate: who would lose SSH access
    conns = access.client_connections(sshd.words(live_cfg, "port"), p["client_address"])
    candidate = Candidate(module, sshd_bin, p["dropin_path"], dropin_new, main_text=main_new)
    precheck = {"addresses": [c["addr"] for c in conns], "accounts": {}, "problems": []}
    try:
        valid, message = candidate.test()
        if not valid:
            concern.refuse("the candidate sshd configuration is invalid (sshd -t): %s" % message)
        after_cfg, after_error = candidate.effective()
        if after_error:
            concern.refuse("sshd -T on the candidate failed: %s" % after_error)
        results, errors = access.who_loses_access(
            candidate, engine_accounts(concern, p, accounts, warnings, planned_rows), conns)
        if errors:
            concern.refuse("; ".join(errors))
    finally:
        candidate.cleanup()
    for name, answer in results.items():
        precheck["accounts"][name] = {"role": answer["role"], "problems": answer["problems"]}
        precheck["problems"] += ["%s account %s: %s" % (answer["role"], name, problem) for problem in answer["problems"]]

    result = dict(algorithms=chosen, main_config_note=main_note, precheck=precheck,
                  group_changes=["create group %s" % g for g in create] + ["add %s to %s" % a for a in adds])
    if warnings:
        result["warnings"] = warnings
    if precheck["problems"]:
        message = "the new sshd configuration would lock out %s" % "; ".join(precheck["problems"])
        if not changed:
            result.setdefault("warnings", []).append("the live sshd configuration would refuse: " + "; ".join(precheck["problems"]))
        elif p["skip_lockout_check"]:
            result.setdefault("warnings", []).append("lockout pre-check SKIPPED (skip_lockout_check, tests only): " + message)
        else:
            concern.refuse(message, precheck=precheck, algorithms=chosen)

    diffs = []
    if p["dropin_path"] in file_changes:
        diffs.append(file_diff(p["dropin_path"], dropin_text, dropin_new))
    if p["sshd_config"] in file_changes:
        diffs.append(file_diff(p["sshd_config"], main_text, main_new))
    if p["banner_path"] in file_changes:
        diffs.append(file_diff(p["banner_path"], banner_live, banner_new))
    if create or adds:
        diffs.append({"before_header": GROUP, "after_header": GROUP,
                      "before": "".join("%s: %s\n" % (g, ",".join(m)) for g, _gid, m in group_rows if g in p["allow_groups"]),
                      "after": "".join("%s: %s\n" % (g, ",".join(m)) for g, _gid, m in planned_rows if g in p["allow_groups"])})

    live_evidence = "sshd -T (live)" if not live_error else "sshd -T failed: %s" % live_error
    notes = sshd.notes_for_main(main_note, overriding)
    losses = access_losses(live_cfg, after_cfg, group_rows, planned_rows, conns[0]["addr"])
    if module.check_mode or not changed:
        after = sshd.evaluate(after_cfg, eval_params, allowed, banner_new, banner_new)
        concern.exit(sshd.control_findings(before, after, module.check_mode, False, live_evidence, notes)
                     + sshd.access_loss_findings(losses, True), changed, diffs, **result)

    # --- apply, under the host lock: the guard first, then groups (they only grant), the files, the reload
    with concern.changing():
        result.update(concern.arm_guard(file_changes, [p["service_name"]], p["guard_timeout"], p["guard_root"]))
        for group in create:
            rc, out, err = run(module, [module.get_bin_path("groupadd", required=True), group])
            if rc != 0:
                concern.fail("groupadd %s failed: %s" % (group, (err or out).strip()), **result)
        for name, group in adds:
            rc, out, err = run(module, [module.get_bin_path("usermod", required=True), "-a", "-G", group, name])
            if rc != 0:
                concern.fail("usermod -a -G %s %s failed: %s" % (group, name, (err or out).strip()), **result)
        if file_changes:
            validate = [sshd_bin, "-t", "-f", "%s"]
            write_file(module, p["banner_path"], banner_new, mode=0o644)
            write_file(module, p["dropin_path"], dropin_new, mode=0o644, validate=validate)
            if p["sshd_config"] in file_changes:
                mode = os.stat(p["sshd_config"]).st_mode & 0o7777 if main_text is not None else 0o644
                write_file(module, p["sshd_config"], main_new, mode=mode, validate=validate)
            rc, out, err = run(module, [module.get_bin_path("systemctl", required=True), "reload", p["service_name"]])
            if rc != 0:
                message = "systemctl reload %s failed: %s" % (p["service_name"], (err or out).strip())
                if "guard_token" in result:
                    guard.rollback(module, result["guard_token"], p["guard_root"], lock_held=True)
                    message += "; the change was rolled back"
                concern.fail(message, **result)

    live_after, after_error = effective(module, sshd_bin)
    after = sshd.evaluate(live_after, eval_params, allowed, read_text(p["banner_path"]), banner_new)
    evidence = "sshd -T before and after the change" + ("" if not after_error else " (after: %s)" % after_error)
    concern.exit(sshd.control_findings(before, after, False, True, evidence, notes) + sshd.access_loss_findings(losses, False),
                 changed, diffs, **result)
