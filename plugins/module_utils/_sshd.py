# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sshd hardening: read -> plan -> evaluate, as pure functions over text.

The module runs the commands (``ssh -Q``, ``sshd -T``, ``sshd -T -C``) and reads the
files; everything here parses, decides and renders, so it is tested on outputs recorded
from real bookworm (OpenSSH 9.2) and trixie (OpenSSH 10.0) hosts.

Two facts of sshd shape the plan:

* For most keywords sshd keeps the FIRST value it reads. Debian's sshd_config starts
  with ``Include /etc/ssh/sshd_config.d/*.conf``, so ``00-yoroi.conf`` wins over the
  rest of the main file. A main file without that Include, or one that sets a managed
  keyword before it (or has the Include inside a Match block), is rewritten so that the
  Include comes first; the findings say so.
* ``AllowUsers``, ``AllowGroups``, ``DenyUsers`` and ``DenyGroups`` ACCUMULATE over every
  line that is read; ``sshd -T -C`` prints the effective lists but does not decide
  whether a user is allowed: the SSH access engine (``_access.py``) decides that for
  the lockout pre-check, on a staged candidate.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

# The SSH access engine reads sshd -T the same way; its readers are the ones used here.
# parse_effective is re-exported: the sshd_hardening module and its tests read it from here.
# pylint: disable-next=unused-import
from ansible_collections.yoroi.baseline.plugins.module_utils._access import (  # noqa: F401
    SSH_DIR,
    access_problems,
    directive,
    parse_effective,
    value,
    words,
)
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    FAIL,
    FIXED,
    PASS,
    fold,
    finding,
)

SSHD_CONFIG = "/etc/ssh/sshd_config"
DROPIN_DIR = "/etc/ssh/sshd_config.d"
DROPIN_NAME = "00-yoroi.conf"

# Strong algorithms, most preferred first. The role writes the intersection with what the
# installed OpenSSH supports (``ssh -Q``), in this order; post-quantum hybrids first.
PREFERRED_CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
PREFERRED_MACS = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
]
PREFERRED_KEX = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp521",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group14-sha256",
]

# sshd_config keywords (canonical case) that accumulate instead of first-wins.
ACCUMULATING = frozenset(["allowusers", "allowgroups", "denyusers", "denygroups"])

CONTROL_KEYS = {
    "SSH-001": ["PermitRootLogin"],
    "SSH-002": ["PermitEmptyPasswords"],
    "SSH-003": ["MaxAuthTries"],
    "SSH-004": ["LoginGraceTime"],
    "SSH-005": ["ClientAliveInterval", "ClientAliveCountMax"],
    "SSH-006": ["Ciphers"],
    "SSH-007": ["MACs"],
    "SSH-008": ["KexAlgorithms"],
    "SSH-009": ["AllowGroups"],
    "SSH-010": ["Banner"],
    "SSH-011": ["X11Forwarding"],
    "SSH-012": ["AllowAgentForwarding", "AllowTcpForwarding"],
}
MANAGED_KEYS = [key for control in sorted(CONTROL_KEYS) for key in CONTROL_KEYS[control]]


# --- parsing ---------------------------------------------------------------------------


def parse_query(text):
    """The algorithm names printed by ``ssh -Q cipher|mac|kex``, in order."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def algorithms(config, key):
    return [name for name in value(config, key).split(",") if name]


def choose_algorithms(preferred, supported):
    """The preferred algorithms the installed OpenSSH supports, in preferred order."""
    available = set(supported)
    return [name for name in preferred if name in available]


# --- the files ---------------------------------------------------------------------------


def directive_value(setting):
    if isinstance(setting, bool):
        return "yes" if setting else "no"
    if isinstance(setting, (list, tuple)):
        return None
    return str(setting)


def desired_settings(params, ciphers, macs, kex):
    """The managed directives, in the order they are written: [(Keyword, value)]."""
    settings = [
        ("PermitRootLogin", params["permit_root_login"]),
        ("PermitEmptyPasswords", "no"),
        ("MaxAuthTries", str(params["max_auth_tries"])),
        ("LoginGraceTime", str(params["login_grace_time"])),
        ("ClientAliveInterval", str(params["client_alive_interval"])),
        ("ClientAliveCountMax", str(params["client_alive_count_max"])),
        ("Ciphers", ",".join(ciphers)),
        ("MACs", ",".join(macs)),
        ("KexAlgorithms", ",".join(kex)),
    ]
    if params["allow_groups"]:
        settings.append(("AllowGroups", " ".join(params["allow_groups"])))
    settings += [
        ("Banner", params["banner_path"]),
        ("X11Forwarding", "yes" if params["x11_forwarding"] else "no"),
        ("AllowAgentForwarding", "yes" if params["allow_agent_forwarding"] else "no"),
        ("AllowTcpForwarding", "yes" if params["allow_tcp_forwarding"] else "no"),
    ]
    return settings


def extra_settings(extra):
    """Validated extra directives: [(Keyword, value)]; raises ValueError on a clash."""
    managed = dict((key.lower(), key) for key in MANAGED_KEYS)
    result = []
    for key in sorted(extra or {}):
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*$", key):
            raise ValueError("extra sshd setting %r is not an sshd_config keyword" % key)
        if key.lower() in managed:
            raise ValueError("extra sshd setting %s is managed by the role; set its own variable instead" % key)
        if key.lower() in ("match", "include"):
            raise ValueError("extra sshd setting %s is not allowed in the drop-in" % key)
        text = directive_value(extra[key])
        if text is None or "\n" in text or not text.strip():
            raise ValueError("extra sshd setting %s needs a one-line value" % key)
        result.append((key, text))
    return result


def render_dropin(settings, extra=()):
    lines = [
        "# Managed by Yoroi (yoroi.baseline.ssh role, sshd_hardening module): SSH-001 .. SSH-012.",
        "# sshd keeps the first value it reads and includes this file first; local edits are",
        "# overwritten on the next run - change the role's variables instead.",
    ]
    lines += ["%s %s" % (key, text) for key, text in settings]
    if extra:
        lines.append("# Site settings (yoroi_ssh_extra_settings)")
        lines += ["%s %s" % (key, text) for key, text in extra]
    return "\n".join(lines) + "\n"


def render_banner(template, contact):
    text = template.replace("{contact}", contact or "")
    return text if text.endswith("\n") else text + "\n"


def include_covers(argument, path):
    """Does one Include argument (a glob, maybe relative) read ``path``?"""
    pattern = argument if argument.startswith("/") else posixpath.join(SSH_DIR, argument)
    return fnmatch.fnmatchcase(path, pattern)


def plan_main_config(text, dropin_path, managed_keys):
    """Make sure the drop-in is read before anything else in the main sshd_config.

    Returns ``(new_text, note, overriding)``: ``new_text`` equals ``text``, ``note`` is ""
    and ``overriding`` [] when the file already includes the drop-in before any managed
    keyword and outside Match; ``overriding`` lists the managed keywords set before it.
    Otherwise the Include goes to the top (the old line is kept as a comment) and ``note``
    says what was wrong. A missing file is treated like one without an Include.
    """
    text = text or ""
    managed = set(key.lower() for key in managed_keys)
    lines = text.splitlines(True)
    before = []
    include_at = None
    include_line = None
    in_match = False
    for index, line in enumerate(lines):
        tokens = directive(line)
        if tokens is None:
            continue
        key, rest = tokens
        if key == "include" and any(include_covers(arg, dropin_path) for arg in rest.split()):
            include_at, include_line = index, line
            break
        if key == "match":
            in_match = True
        before.append(key)
    overriding = sorted(set(k for k in before if k in managed))
    if include_at is not None and not overriding and not in_match:
        return text, "", []
    include = "Include %s/*.conf\n" % posixpath.dirname(dropin_path)
    header = "# Yoroi: the drop-ins come first, so their settings win (sshd keeps the first value).\n"
    if include_at is None:
        note = "%s had no Include of %s; one was added at the top" % (SSHD_CONFIG, posixpath.dirname(dropin_path) + "/*.conf")
        return header + include + text, note, []
    reasons = []
    if overriding:
        reasons.append("it set %s before the Include of the drop-ins" % ", ".join(overriding))
    if in_match:
        reasons.append("the Include was inside a Match block")
    note = "%s: %s; the Include was moved to the top" % (SSHD_CONFIG, " and ".join(reasons))
    lines[include_at] = "# Yoroi moved this Include to the top: %s" % include_line.lstrip()
    if not lines[include_at].endswith("\n"):
        lines[include_at] += "\n"
    return header + include + "".join(lines), note, overriding


# --- controls ------------------------------------------------------------------------------


def _bounded(config, key, limit):
    text = value(config, key)
    try:
        number = int(text)
    except ValueError:
        return False, text or "unset"
    return 0 < number <= limit, text


def evaluate(config, params, allowed, banner_text, expected_banner):
    """{control: (ok, expected, actual)} from an effective config (``sshd -T``).

    ``allowed`` maps Ciphers/MACs/KexAlgorithms to the strong lists; ``banner_text`` is the
    banner file's content (None when missing) and ``expected_banner`` what it should be.
    """
    if not config:
        unknown = "sshd -T gave no configuration"
        return dict((control, (False, "see the role documentation", unknown)) for control in CONTROL_KEYS)
    result = {}
    root = value(config, "permitrootlogin")
    result["SSH-001"] = (root == "no", "PermitRootLogin no", "PermitRootLogin %s" % root)
    empty = value(config, "permitemptypasswords")
    result["SSH-002"] = (empty == "no", "PermitEmptyPasswords no", "PermitEmptyPasswords %s" % empty)
    ok, text = _bounded(config, "maxauthtries", params["max_auth_tries"])
    result["SSH-003"] = (ok, "MaxAuthTries 1..%d" % params["max_auth_tries"], "MaxAuthTries %s" % text)
    ok, text = _bounded(config, "logingracetime", params["login_grace_time"])
    result["SSH-004"] = (ok, "LoginGraceTime 1..%d" % params["login_grace_time"], "LoginGraceTime %s" % text)
    ok1, interval = _bounded(config, "clientaliveinterval", params["client_alive_interval"])
    ok2, count = _bounded(config, "clientalivecountmax", params["client_alive_count_max"])
    result["SSH-005"] = (
        ok1 and ok2,
        "ClientAliveInterval 1..%d, ClientAliveCountMax 1..%d" % (params["client_alive_interval"], params["client_alive_count_max"]),
        "ClientAliveInterval %s, ClientAliveCountMax %s" % (interval, count),
    )
    for control, key in (("SSH-006", "Ciphers"), ("SSH-007", "MACs"), ("SSH-008", "KexAlgorithms")):
        offered = algorithms(config, key)
        weak = [name for name in offered if name not in allowed[key]]
        actual = "%s %s" % (key, ",".join(offered))
        if weak:
            actual += " (not in the strong list: %s)" % ",".join(weak)
        result[control] = (bool(offered) and not weak, "%s only from: %s" % (key, ",".join(allowed[key])), actual)
    groups = words(config, "allowgroups")
    wanted = list(params["allow_groups"])
    result["SSH-009"] = (
        bool(wanted) and sorted(set(groups)) == sorted(set(wanted)),
        "AllowGroups %s" % " ".join(wanted) if wanted else "AllowGroups set (yoroi_ssh_allow_groups is empty)",
        "AllowGroups %s" % " ".join(groups) if groups else "no AllowGroups (every account may log in)",
    )
    banner = value(config, "banner", "none")
    contact = params.get("contact") or ""
    if banner != params["banner_path"]:
        actual = "Banner %s" % banner
    elif banner_text is None:
        actual = "Banner %s, but the file is missing" % banner
    elif not contact:
        actual = "Banner %s without a reporting contact (yoroi_site_contact is not set)" % banner
    elif contact not in banner_text:
        actual = "Banner %s does not name the contact %s" % (banner, contact)
    elif banner_text != expected_banner:
        actual = "Banner %s names the contact but differs from the baseline text" % banner
    else:
        actual = "Banner %s naming %s" % (banner, contact)
    result["SSH-010"] = (
        bool(contact) and actual == "Banner %s naming %s" % (banner, contact),
        "Banner %s naming the site contact" % params["banner_path"],
        actual,
    )
    x11 = value(config, "x11forwarding")
    want_x11 = "yes" if params["x11_forwarding"] else "no"
    result["SSH-011"] = (x11 == "no" or x11 == want_x11, "X11Forwarding %s" % want_x11, "X11Forwarding %s" % x11)
    agent = value(config, "allowagentforwarding")
    tcp = value(config, "allowtcpforwarding")
    agent_ok = params["allow_agent_forwarding"] or agent == "no"
    tcp_ok = params["allow_tcp_forwarding"] or tcp == "no"
    result["SSH-012"] = (
        agent_ok and tcp_ok,
        "AllowAgentForwarding %s, AllowTcpForwarding %s" % (
            "yes" if params["allow_agent_forwarding"] else "no", "yes" if params["allow_tcp_forwarding"] else "no"),
        "AllowAgentForwarding %s, AllowTcpForwarding %s" % (agent, tcp),
    )
    return result


def control_findings(before, after, check_mode, applied, evidence, notes_by_control=None):
    """One finding per control.

    ``before``/``after`` come from :func:`evaluate` on the live config read first and on the
    candidate (check mode) or the reloaded live config (after a change). ``applied`` is
    False when the run changed nothing, so a failure stays a plain ``fail``.
    """
    notes_by_control = notes_by_control or {}
    findings = []
    for control in sorted(CONTROL_KEYS):
        ok_before, expected, actual_before = before[control]
        ok_after, _expected, actual_after = after[control]
        notes = [evidence] + list(notes_by_control.get(control, []))
        status = fold(ok_before, ok_after, check_mode, attempted=applied)
        if check_mode:
            actual = actual_before
            if status != PASS:
                notes.append("would become: %s" % actual_after if ok_after else "would stay failing: %s" % actual_after)
        else:
            actual = actual_before if ok_before and ok_after else actual_after
            if applied and ok_after and not ok_before:
                notes.append("was: %s" % actual_before)
            elif applied and not ok_after:
                notes.append("still failing after the change (another file or Match block may override it)")
        findings.append(finding(control, status, expected, actual, "; ".join(n for n in notes if n)))
    return findings


def notes_for_main(note, overridden_keys):
    """Which controls the main-config note belongs to: those whose keys were overridden,
    or every control when the Include was missing."""
    if not note:
        return {}
    result = {}
    lowered = set(k.lower() for k in overridden_keys)
    for control, keys in CONTROL_KEYS.items():
        if not lowered or any(k.lower() in lowered for k in keys):
            result[control] = [note]
    return result


# --- who loses SSH access --------------------------------------------------------------------

# Shells that give no session even when sshd lets the account authenticate.
NO_LOGIN_SHELLS = frozenset(["/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"])
ACCESS_EXPECTED = "every account that logs in over SSH today keeps access, unless it is left out on purpose"


def login_methods(password_field, expired, has_key):
    """How an account can authenticate over SSH today: a subset of [password, publickey].

    A password counts when the shadow field holds a hash (not empty, not ``!``/``*``
    locked); a key when an authorized_keys file holds one. An expired account has none.
    """
    if expired:
        return []
    methods = []
    if password_field and password_field[0] not in "!*":
        methods.append("password")
    if has_key:
        methods.append("publickey")
    return methods


def ssh_access_losses(candidates, live_cfg, after_cfg, address):
    """Accounts that log in over SSH with ``live_cfg`` and would be refused with ``after_cfg``.

    ``candidates``: [{name, uid, shell, methods, groups_before, groups_after}] (methods from
    :func:`login_methods`; groups with the planned group changes in ``groups_after``).
    Accounts without a login shell or any method are not candidates for a loss. Judged
    on the global configuration (``sshd -T`` without ``-C``): Match blocks are not seen.
    Returns [(name, methods, problems after)] in name order.
    """
    losses = []
    for item in sorted(candidates, key=lambda c: c["name"]):
        if not item["methods"] or (item.get("shell") or "/bin/sh") in NO_LOGIN_SHELLS:
            continue
        account = {"name": item["name"], "uid": item["uid"], "shell": item.get("shell"), "methods": item["methods"],
                   "keys_found": "publickey" in item["methods"]}
        before = access_problems(live_cfg, dict(account, groups=item["groups_before"]), address, address)
        after = access_problems(after_cfg, dict(account, groups=item["groups_after"]), address, address)
        if not before and after:
            losses.append((item["name"], item["methods"], after))
    return losses


def access_loss_findings(losses, check_mode):
    """One SSH-009 finding per account that would lose (check mode) or lost SSH access."""
    findings = []
    for name, methods, problems in losses:
        today = "logs in over SSH today with %s" % "/".join(methods)
        if check_mode:
            findings.append(finding("SSH-009", FAIL, ACCESS_EXPECTED, today,
                                    "would lose SSH access: %s; add it to yoroi_ssh_allow_group_members to keep it"
                                    % "; ".join(problems), subject=name))
        else:
            findings.append(finding("SSH-009", FIXED, ACCESS_EXPECTED, "no SSH access: %s" % "; ".join(problems),
                                    "SSH access removed by this change (was: %s)" % today, subject=name))
    return findings
