#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_hardening
short_description: Harden sshd with one validated drop-in, refusing any change that locks out the automation
version_added: 0.1.0
description:
  - Reads the live effective configuration once (C(sshd -T)), the algorithms the installed
    OpenSSH supports (C(ssh -Q cipher|mac|kex)), C(/etc/ssh/sshd_config), the drop-in, the
    banner file and C(/etc/group), and evaluates C(SSH-001) to C(SSH-012) in one pass.
  - Settings go to the drop-in O(dropin_path) (C(00-yoroi.conf)), read first through the
    C(Include /etc/ssh/sshd_config.d/*.conf) at the top of Debian's C(sshd_config); sshd keeps
    the first value it reads. A main file without that Include, or with a managed keyword set
    before it (or the Include inside a Match block), gets the Include moved or added at the
    top; the findings of the affected controls say so.
  - Ciphers, MACs and key exchange algorithms are the intersection of O(ciphers), O(macs) and
    O(kex_algorithms) with C(ssh -Q), in the order given (post-quantum hybrid key exchange
    first where the OpenSSH has it).
  - The groups in O(allow_groups) are created when missing; the automation account, the
    break-glass accounts (with O(add_protected_to_allow_group)) and O(allow_group_members) are
    added to the first of them unless already in one.
  - Lockout pre-check, before anything changes - the candidate (main file, every live drop-in
    and the new drop-in) must pass C(sshd -t), then C(sshd -T -C user=...,host=...,addr=...)
    for the automation account (address of the current SSH connection) and each existing
    break-glass account must leave them allowed (AllowUsers, AllowGroups, DenyUsers,
    DenyGroups, the login shell, PermitRootLogin for UID 0) with an authentication method
    they have (the automation account - publickey with an authorized key; break-glass -
    O(break_glass_methods)). Otherwise the module fails naming the account and the setting,
    and nothing is changed.
  - When files change (not in check mode), a lockout guard is armed first (see
    C(yoroi.baseline.change_guard)) and its token returned as C(guard_token) - the caller
    proves a fresh login and confirms it, or the host restores the files by itself after
    O(guard_timeout) seconds. Each write is validated with C(sshd -t); then C(systemctl reload)
    of O(service_name).
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Plans, runs the pre-check on the staged candidate and reports the findings it would give.
  diff_mode:
    support: full
    description: Diffs of the drop-in, C(sshd_config) (when its Include moves), the banner and group memberships.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.guard
options:
  permit_root_login:
    description: PermitRootLogin (C(SSH-001) passes only with C(no)).
    type: str
    choices: ["no", prohibit-password, forced-commands-only]
    default: "no"
  max_auth_tries: {description: MaxAuthTries (C(SSH-003))., type: int, default: 4}
  login_grace_time: {description: LoginGraceTime in seconds (C(SSH-004))., type: int, default: 60}
  client_alive_interval: {description: ClientAliveInterval in seconds (C(SSH-005))., type: int, default: 300}
  client_alive_count_max: {description: ClientAliveCountMax (C(SSH-005))., type: int, default: 3}
  ciphers:
    description: Strong ciphers, most preferred first (C(SSH-006)); those C(ssh -Q cipher) lists are written.
    type: list
    elements: str
    default:
      - chacha20-poly1305@openssh.com
      - aes256-gcm@openssh.com
      - aes128-gcm@openssh.com
      - aes256-ctr
      - aes192-ctr
      - aes128-ctr
  macs:
    description: Strong MACs, most preferred first (C(SSH-007)).
    type: list
    elements: str
    default:
      - hmac-sha2-512-etm@openssh.com
      - hmac-sha2-256-etm@openssh.com
      - umac-128-etm@openssh.com
      - hmac-sha2-512
      - hmac-sha2-256
  kex_algorithms:
    description: Strong key exchange algorithms, most preferred first (C(SSH-008)).
    type: list
    elements: str
    default:
      - mlkem768x25519-sha256
      - sntrup761x25519-sha512
      - sntrup761x25519-sha512@openssh.com
      - curve25519-sha256
      - curve25519-sha256@libssh.org
      - ecdh-sha2-nistp521
      - ecdh-sha2-nistp384
      - ecdh-sha2-nistp256
      - diffie-hellman-group18-sha512
      - diffie-hellman-group16-sha512
      - diffie-hellman-group-exchange-sha256
      - diffie-hellman-group14-sha256
  allow_groups:
    description: AllowGroups (C(SSH-009)); created when missing. Empty leaves AllowGroups unset (and C(SSH-009) failing).
    type: list
    elements: str
    default: [ssh-users]
  allow_group_members:
    description: Further accounts to add to the first allowed group.
    type: list
    elements: str
    default: []
  add_protected_to_allow_group:
    description:
      - Add the automation account and the break-glass accounts to the first allowed group.
      - When false, the pre-check refuses a configuration that leaves them out.
    type: bool
    default: true
  break_glass_methods:
    description: How break-glass accounts log in; the pre-check needs one of them to stay usable.
    type: list
    elements: str
    choices: [password, publickey]
    default: [password]
  banner_path: {description: The banner file (C(SSH-010))., type: path, default: /etc/issue.net}
  banner_text:
    description: The banner; C({contact}) is replaced by O(contact).
    type: str
    default: "Authorized use only. Activity on this system is logged and monitored.\nReport security incidents and suspicious activity to: {contact}\n"
  contact: {description: The site's reporting contact; C(SSH-010) fails without it., type: str, default: ""}
  x11_forwarding: {description: X11Forwarding (C(SSH-011))., type: bool, default: false}
  allow_agent_forwarding: {description: AllowAgentForwarding (C(SSH-012))., type: bool, default: false}
  allow_tcp_forwarding: {description: AllowTcpForwarding (C(SSH-012))., type: bool, default: false}
  extra_settings:
    description: Further sshd keywords for the drop-in (not a managed one, not Match or Include).
    type: dict
    default: {}
  service_name: {description: The sshd unit to reload., type: str, default: ssh}
  guard_root: {description: Where the guard keeps its backups., type: path, default: /var/lib/yoroi/guard}
  sshd_config: {description: The main sshd configuration file., type: path, default: /etc/ssh/sshd_config}
  dropin_path: {description: The drop-in Yoroi writes., type: path, default: /etc/ssh/sshd_config.d/00-yoroi.conf}
  client_address:
    description: The address the automation connects from, for C(Match Address); by default from C(SSH_CONNECTION).
    type: str
  skip_lockout_check:
    description:
      - FOR TESTS ONLY - write even when the pre-check finds a lockout (the guard still rolls it back).
    type: bool
    default: false
  guard_timeout:
    default: 300
notes:
  - On a host with no SSH server (no C(sshd)), every SSH control is reported as C(skipped) and nothing is changed.
  - Runs as root (C(become)) on hosts with systemd and OpenSSH 8.2 or later.
  - Every account that logs in over SSH today (a login shell, and a password hash or an
    authorized key) and that the new configuration would refuse gets its own C(SSH-009)
    finding (C(subject) the account) - C(fail) in check mode, so an audit lists who would
    lose SSH access before any apply; C(fixed) once applied.
"""

EXAMPLES = r"""
- name: Harden sshd
  yoroi.baseline.sshd_hardening:
    allow_groups: [ssh-users]
    automation_account: yoroi
    break_glass_accounts: [breakglass]
    contact: "security-desk@example.org"
  register: sshd

- name: Audit only
  yoroi.baseline.sshd_hardening:
    contact: "security-desk@example.org"
  check_mode: true
"""

RETURN = r"""
findings:
  description:
    - One finding per control (and per subject where a control is about one account or
      file) - C(control), C(status) (pass, fail, fixed, error, skipped), C(expected),
      C(actual), C(evidence), C(subject). A refused run has an C(error) finding for every
      control of the module.
  returned: always
  type: list
  elements: dict
guard_token:
  description: The lockout guard armed for this change; confirm it after a fresh login.
  returned: when something changed (not in check mode) and O(guard_timeout) is not 0
  type: str
guard:
  description:
    - The armed guard - C(token), C(unit) (its transient timer), C(dir) (its backups),
      C(timeout) and C(change) (what changed); the C(yoroi.baseline.lockout_guard) role reads it.
  returned: with guard_token
  type: dict
algorithms:
  description: The Ciphers, MACs and KexAlgorithms written (the supported strong ones).
  returned: always
  type: dict
main_config_note:
  description: What was wrong with the main file's Include, or empty.
  returned: always
  type: str
group_changes:
  description: Groups created and accounts added, as lines.
  returned: always
  type: list
  elements: str
precheck: {description: The accounts checked with C(sshd -T -C) and the problems found., returned: always, type: dict}
"""

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


if __name__ == "__main__":
    main()
