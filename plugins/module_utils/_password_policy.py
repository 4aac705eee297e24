# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password policy (PWD-001 .. PWD-013): parse -> plan -> evaluate, as pure functions.

Nothing here touches the system. The module reads every file once into a ``texts`` dict
(path -> text or None), these functions compute the files it should hold, and one
``evaluate`` judges the controls on any such dict: the state read before, the planned
state (check mode) and the state read back after the change are judged by the same code.

Facts these functions rely on (checked on Debian 12 and 13):

* libpwquality 1.4.5 reads ``/etc/security/pwquality.conf.d/*.conf`` first, then
  ``/etc/security/pwquality.conf``: an active key in the main file wins over a drop-in,
  and a module argument on the ``pam_pwquality.so`` line wins over both.
* ``pam_pwhistory`` reads ``/etc/security/pwhistory.conf`` from Linux-PAM 1.5.3 on
  (trixie); on bookworm (1.5.2) its settings must be module arguments.
* pam-auth-update orders profiles by Priority, highest first, then by name *descending*;
  within a Primary block ``success=end`` jumps past the block.
"""

from __future__ import annotations

import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    FAIL,
    FIXED,
    PASS,
    SKIPPED,
    finding,
    fold,
)
from ansible_collections.yoroi.baseline.plugins.module_utils._hostfiles import (
    parse_login_defs,
    parse_passwd,
    parse_shadow,
    password_usable,
    uid_range,
)

PWQUALITY_CONF = "/etc/security/pwquality.conf"
PWQUALITY_DIR = "/etc/security/pwquality.conf.d"
PWQUALITY_DROPIN = PWQUALITY_DIR + "/yoroi.conf"
FAILLOCK_CONF = "/etc/security/faillock.conf"
PWHISTORY_CONF = "/etc/security/pwhistory.conf"
LOGIN_DEFS = "/etc/login.defs"
PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"
PAM_D = "/etc/pam.d"
PAM_CONFIGS = "/usr/share/pam-configs"
PAM_STATE = "/var/lib/pam"
COMMON_TYPES = ("auth", "account", "password", "session", "session-noninteractive")

# The profile libpam-pwquality ships (identical on bookworm and trixie); used to plan in
# check mode before the package is installed.
PWQUALITY_PROFILE_NAME = "pwquality"
PWQUALITY_PROFILE = (
    "Name: Pwquality password strength checking\n"
    "Default: yes\n"
    "Priority: 1024\n"
    "Conflicts: cracklib\n"
    "Password-Type: Primary\n"
    "Password:\n"
    "\trequisite\t\t\tpam_pwquality.so retry=3\n"
    "Password-Initial:\n"
    "\trequisite\t\t\tpam_pwquality.so retry=3\n"
)

# pam_unix options that select the hash; exactly one is wanted on the password line.
HASH_OPTIONS = ("md5", "bigcrypt", "sha256", "sha512", "blowfish", "gost_yescrypt", "yescrypt")

CONTROLS = ("PWD-001", "PWD-002", "PWD-003", "PWD-004", "PWD-005", "PWD-006", "PWD-007",
            "PWD-008", "PWD-009", "PWD-010", "PWD-011", "PWD-012", "PWD-013")

HEADER = "# Managed by Yoroi (password_policy). Local changes are overwritten.\n"


# --- small parsers -------------------------------------------------------------------

def parse_conf(text):
    """Active settings of a PAM-style ``key = value`` file; a bare key maps to True."""
    values = {}
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
        else:
            values[line.split()[0]] = True
    return values


def parse_module_args(args):
    """``['minlen=8', 'enforce_for_root']`` -> {'minlen': '8', 'enforce_for_root': True}."""
    values = {}
    for arg in args:
        if "=" in arg:
            key, value = arg.split("=", 1)
            values[key] = value
        else:
            values[arg] = True
    return values


_PAM_LINE = re.compile(r"^\s*(-?\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


def parse_pam_stack(text, pam_type):
    """The active lines of one common-* file: [(control, module basename, [args])]."""
    stack = []
    for line in (text or "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PAM_LINE.match(line)
        if not match or match.group(1).lstrip("-") != pam_type:
            continue
        module = match.group(3).rsplit("/", 1)[-1]
        stack.append((match.group(2), module, match.group(4).split()))
    return stack


def stack_modules(texts, common_dir=PAM_D):
    """Every module basename named by the common-* files in ``texts``."""
    names = set()
    for pam_type in COMMON_TYPES:
        real_type = pam_type.replace("-noninteractive", "")
        for _control, module, _args in parse_pam_stack(texts.get("%s/common-%s" % (common_dir, pam_type)), real_type):
            names.add(module)
    return names


# --- editing files in place ------------------------------------------------------------

def _render_setting(key, value, style):
    if value is True:
        return key
    if style == "equals":
        return "%s = %s" % (key, value)
    return "%s\t%s" % (key, value)


def _active_key(line, style):
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if style == "equals":
        return stripped.split("#", 1)[0].split("=", 1)[0].strip() or None
    return stripped.split(None, 1)[0]


def set_values(text, wanted, style="equals", only_present=False):
    """Return ``text`` with each key of ``wanted`` set, keeping every other line.

    ``style`` is ``equals`` (``key = value``, PAM's /etc/security files) or ``space``
    (``KEY<whitespace>VALUE``, login.defs, whose own spacing is kept). The first active
    line of a key is edited in place; later active lines of the same key, which would
    override it, are commented out. A missing key goes after its commented example
    (``# deny = 3``) when there is one, else at the end. ``only_present`` edits keys that
    are already active and adds none. A value of True is a bare flag.
    """
    text = text or ""
    lines = text.splitlines()
    seen = set()
    out = []
    for line in lines:
        key = _active_key(line, style)
        if key in wanted:
            if key in seen:
                out.append("# " + line.lstrip() + "  # superseded (yoroi)")
                continue
            seen.add(key)
            value = wanted[key]
            if style == "space" and value is not True:
                match = re.match(r"^(\s*\S+)(\s+)\S.*$", line)
                line = (match.group(1) + match.group(2) + str(value)) if match else _render_setting(key, value, style)
            else:
                line = _render_setting(key, value, style)
        out.append(line)
    if not only_present:
        for key in wanted:
            if key in seen:
                continue
            rendered = _render_setting(key, wanted[key], style)
            example = re.compile(r"^#\s*%s(\s*=|\s+\S|\s*$)" % re.escape(key))
            anchor = None
            for index, line in enumerate(out):
                if example.match(line):
                    anchor = index
            if anchor is None:
                out.append(rendered)
            else:
                out.insert(anchor + 1, rendered)
    result = "\n".join(out)
    if out and (text.endswith("\n") or not text or len(out) > len(lines)):
        result += "\n"
    return result


def render_dropin(settings):
    """The whole text of a file Yoroi owns (the pwquality drop-in)."""
    return HEADER + "".join(_render_setting(key, value, "equals") + "\n" for key, value in settings.items())


# --- PAM profiles ----------------------------------------------------------------------

def render_profile(name, priority, sections):
    """A pam-auth-update profile; ``sections`` is [(Type, Primary|Additional, [lines])]."""
    text = "%sName: %s\nDefault: yes\nPriority: %d\n" % (HEADER, name, priority)
    for pam_type, block, lines in sections:
        text += "%s-Type: %s\n%s:\n" % (pam_type, block, pam_type)
        text += "".join("\t%s\n" % line for line in lines)
    return text


# A user name as it may stand in a pam_succeed_if ``user in a:b`` list: no whitespace,
# no ':' (the list separator), no glob or PAM syntax.
_PAM_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")


def faillock_exemption(names):
    """The ``pam_succeed_if.so`` line that jumps over the next one for ``names``, or None.

    The break-glass accounts are exempt from pam_faillock: anyone who reaches sshd could
    otherwise keep the emergency account locked by sending wrong passwords. faillock.conf
    has no per-user exemption, so the exemption lives in the stack: this line goes right
    before ``pam_faillock preauth`` (a locked account is not refused) and right before
    ``pam_faillock authfail`` (a failure is not counted; pam_deny still refuses it).
    """
    names = sorted(set(names or []))
    if not names:
        return None
    bad = [name for name in names if not _PAM_USER_NAME.match(name)]
    if bad:
        raise ValueError("break_glass_accounts: %s cannot be named in a PAM user list" % ", ".join(repr(b) for b in bad))
    return "[success=1 default=ignore]\tpam_succeed_if.so quiet user in %s" % ":".join(names)


def faillock_exempt_users(auth_stack):
    """Users that skip both pam_faillock preauth and authfail in a parsed auth stack."""
    def skipped_before(module_arg):
        position = _index(auth_stack, "pam_faillock.so", module_arg)
        if not position:
            return set()
        control, module, args = auth_stack[position - 1]
        if module != "pam_succeed_if.so" or not control.startswith("[") or "success=1" not in control:
            return set()
        words = [arg for arg in args if arg not in ("quiet", "quiet_success", "quiet_fail", "debug", "use_uid")]
        if len(words) != 3 or words[0] != "user" or words[1] != "in":
            return set()
        return set(words[2].split(":"))

    return skipped_before("preauth") & skipped_before("authfail")


def plan_profiles(params, pwhistory_conf_supported):
    """{profile name: text} for Yoroi's own profiles.

    Priorities, around pam_unix at 256 (the CIS Debian 12 layout):
    * yoroi-faillock-notify 1024: ``pam_faillock preauth`` before pam_unix (refuses a locked
      account before the password is checked), and ``pam_faillock`` in the account stack
      (clears the tally after a successful login).
    * yoroi-faillock 0: ``pam_faillock authfail`` after pam_unix, reached only when
      pam_unix failed (pam_unix's success=end jumps over it); ``default=die`` ends there.
    * yoroi-pwhistory 1023: after pam_pwquality (1024, which asks for the new password)
      and before pam_unix (256, which stores it); ``use_authtok`` takes the password
      pwquality accepted. Not 1024: equal priorities sort by name descending, which would
      put yoroi-pwhistory before pwquality.
    * break-glass accounts skip both faillock lines (see :func:`faillock_exemption`).
    """
    history = ["use_authtok"]
    if not pwhistory_conf_supported:
        history = ["remember=%d" % params["remember"], "enforce_for_root", "use_authtok"]
    exemption = faillock_exemption(params.get("break_glass_accounts"))
    skip = [exemption] if exemption else []
    return {
        "yoroi-faillock-notify": render_profile(
            "Yoroi: refuse locked accounts, reset the failure count on success", 1024,
            [("Auth", "Primary", skip + ["requisite\t\t\tpam_faillock.so preauth"]),
             ("Account", "Primary", ["required\t\t\tpam_faillock.so"])]),
        "yoroi-faillock": render_profile(
            "Yoroi: count failed logins (pam_faillock)", 0,
            [("Auth", "Primary", skip + ["[default=die]\t\t\tpam_faillock.so authfail"])]),
        "yoroi-pwhistory": render_profile(
            "Yoroi: refuse reused passwords (pam_pwhistory)", 1023,
            [("Password", "Primary", ["requisite\t\t\tpam_pwhistory.so " + " ".join(history)])]),
    }


def normalize_stack_options(text, encrypt_method, pwquality_settings):
    """Pre-edit common-password before pam-auth-update.

    pam-auth-update keeps option edits made by hand on managed lines (its diff merge), so a
    ``sha512`` put on pam_unix, or ``minlen=8`` put on pam_pwquality, would survive a
    regeneration. The conflicting options are rewritten here; nothing else is touched.
    """
    if text is None:
        return None
    hash_option = encrypt_method.lower()
    out = []
    for line in text.splitlines(True):
        match = _PAM_LINE.match(line.rstrip("\n"))
        if match and match.group(1) == "password" and not line.lstrip().startswith("#"):
            module = match.group(3).rsplit("/", 1)[-1]
            args = match.group(4).split()
            new_args = args
            if module == "pam_unix.so":
                new_args = [a for a in args if a not in HASH_OPTIONS] + [hash_option]
                if [a for a in args if a in HASH_OPTIONS] == [hash_option]:
                    new_args = args
            elif module == "pam_pwquality.so":
                new_args = []
                for arg in args:
                    key = arg.split("=", 1)[0]
                    value = arg.split("=", 1)[1] if "=" in arg else True
                    if key in pwquality_settings and str(pwquality_settings[key]) != str(value):
                        continue
                    new_args.append(arg)
            if new_args != args:
                prefix = line[: match.start(4)] if match.group(4) else line.rstrip("\n") + " "
                line = prefix + " ".join(new_args) + "\n"
        out.append(line)
    return "".join(out)


# --- the whole plan ----------------------------------------------------------------------

def pwquality_settings(params):
    settings = {
        "minlen": params["minlen"],
        "minclass": params["minclass"],
        "dictcheck": 1 if params["dictcheck"] else 0,
        "retry": params["retry"],
    }
    if params["enforce_for_root"]:
        settings["enforce_for_root"] = True
    return settings


def plan_files(texts, params, pwhistory_conf_supported):
    """{path: wanted text} for every configuration file (PAM stack files excluded)."""
    settings = pwquality_settings(params)
    planned = {PWQUALITY_DROPIN: render_dropin(settings)}
    main = texts.get(PWQUALITY_CONF)
    if main is not None:
        planned[PWQUALITY_CONF] = set_values(main, settings, only_present=True)
    planned[FAILLOCK_CONF] = set_values(texts.get(FAILLOCK_CONF), {
        "deny": params["faillock_deny"],
        "unlock_time": params["faillock_unlock_time"],
        "fail_interval": params["faillock_fail_interval"],
    })
    if pwhistory_conf_supported:
        history = {"remember": params["remember"]}
        if params["enforce_for_root"]:
            history["enforce_for_root"] = True
        planned[PWHISTORY_CONF] = set_values(texts.get(PWHISTORY_CONF), history)
    planned[LOGIN_DEFS] = set_values(texts.get(LOGIN_DEFS), {
        "PASS_MAX_DAYS": params["pass_max_days"],
        "PASS_MIN_DAYS": params["pass_min_days"],
        "PASS_WARN_AGE": params["pass_warn_age"],
        "ENCRYPT_METHOD": params["encrypt_method"],
    }, style="space")
    for name, text in plan_profiles(params, pwhistory_conf_supported).items():
        planned["%s/%s" % (PAM_CONFIGS, name)] = text
    return planned


def changed_files(texts, planned):
    return sorted(path for path, text in planned.items() if texts.get(path) != text)


# --- evaluation ----------------------------------------------------------------------------

def effective_pwquality(texts, dropins):
    """Merged pwquality settings: drop-ins (sorted), then the main file, then module args."""
    values = {}
    for path in sorted(dropins):
        values.update(parse_conf(texts.get(path)))
    values.update(parse_conf(texts.get(PWQUALITY_CONF)))
    for _control, module, args in parse_pam_stack(texts.get(PAM_D + "/common-password"), "password"):
        if module == "pam_pwquality.so":
            values.update(parse_module_args(args))
    return values


def _index(stack, module, arg=None):
    for position, (_control, name, args) in enumerate(stack):
        if name == module and (arg is None or arg in args):
            return position
    return None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def evaluate(texts, params, dropins, pwhistory_conf_supported):
    """{control: (ok, expected, actual, evidence)} for PWD-001 .. PWD-012 on ``texts``."""
    results = {}
    password = parse_pam_stack(texts.get(PAM_D + "/common-password"), "password")
    auth = parse_pam_stack(texts.get(PAM_D + "/common-auth"), "auth")
    account = parse_pam_stack(texts.get(PAM_D + "/common-account"), "account")
    quality = effective_pwquality(texts, dropins)
    sources = "pwquality.conf.d, pwquality.conf, common-password"

    unix_pw = _index(password, "pam_unix.so")
    pwq = _index(password, "pam_pwquality.so")
    retry = _int(quality.get("retry", 1))
    results["PWD-001"] = (
        pwq is not None and unix_pw is not None and pwq < unix_pw and retry == params["retry"],
        "pam_pwquality.so before pam_unix.so in common-password, retry=%d" % params["retry"],
        "pam_pwquality.so %s, retry=%s" % (
            "absent" if pwq is None else ("before pam_unix.so" if unix_pw is not None and pwq < unix_pw else "after pam_unix.so"),
            retry),
        "common-password")
    minlen = _int(quality.get("minlen", 8))
    results["PWD-002"] = (pwq is not None and minlen == params["minlen"], "minlen=%d" % params["minlen"],
                          "minlen=%s" % minlen, sources)
    minclass = _int(quality.get("minclass", 0))
    results["PWD-003"] = (pwq is not None and minclass == params["minclass"], "minclass=%d" % params["minclass"],
                          "minclass=%s" % minclass, sources)
    dictcheck = _int(quality.get("dictcheck", 1))
    wanted_dict = 1 if params["dictcheck"] else 0
    results["PWD-004"] = (pwq is not None and dictcheck == wanted_dict, "dictcheck=%d" % wanted_dict,
                          "dictcheck=%s" % dictcheck, sources)
    root = quality.get("enforce_for_root") is True
    results["PWD-005"] = (pwq is not None and root == params["enforce_for_root"],
                          "enforce_for_root %s" % ("set" if params["enforce_for_root"] else "unset"),
                          "enforce_for_root %s" % ("set" if root else "unset"), sources)

    hist = _index(password, "pam_pwhistory.so")
    history = {}
    if pwhistory_conf_supported:
        history.update(parse_conf(texts.get(PWHISTORY_CONF)))
    if hist is not None:
        history.update(parse_module_args(password[hist][2]))
    remember = _int(history.get("remember", 10 if hist is not None else 0))
    ok = (hist is not None and unix_pw is not None and hist < unix_pw and (pwq is None or pwq < hist)
          and remember == params["remember"] and "use_authtok" in password[hist][2]
          and (history.get("enforce_for_root") is True) == params["enforce_for_root"])
    results["PWD-006"] = (
        ok,
        "pam_pwhistory.so between pam_pwquality.so and pam_unix.so with use_authtok, remember=%d%s"
        % (params["remember"], ", enforce_for_root" if params["enforce_for_root"] else ""),
        "pam_pwhistory.so absent" if hist is None else "remember=%s%s%s" % (
            remember, ", enforce_for_root" if history.get("enforce_for_root") is True else "",
            ", use_authtok" if "use_authtok" in password[hist][2] else ""),
        "common-password" + (", pwhistory.conf" if pwhistory_conf_supported else ""))

    faillock = parse_conf(texts.get(FAILLOCK_CONF))
    unix_auth = _index(auth, "pam_unix.so")
    pre = _index(auth, "pam_faillock.so", "preauth")
    fail = _index(auth, "pam_faillock.so", "authfail")
    acct = _index(account, "pam_faillock.so")
    wired = unix_auth is not None and pre is not None and fail is not None and pre < unix_auth < fail and acct is not None
    deny = _int(faillock.get("deny", 3))
    results["PWD-007"] = (
        wired and deny == params["faillock_deny"],
        "pam_faillock preauth before and authfail after pam_unix.so, in common-account; deny=%d" % params["faillock_deny"],
        "%s; deny=%s" % ("wired" if wired else "pam_faillock not wired (preauth %s, authfail %s, account %s)" % (
            "yes" if pre is not None else "no", "yes" if fail is not None else "no", "yes" if acct is not None else "no"),
            deny),
        "common-auth, common-account, faillock.conf")
    unlock = _int(faillock.get("unlock_time", 600))
    interval = _int(faillock.get("fail_interval", 900))
    results["PWD-008"] = (
        wired and unlock == params["faillock_unlock_time"] and interval == params["faillock_fail_interval"],
        "unlock_time=%d, fail_interval=%d" % (params["faillock_unlock_time"], params["faillock_fail_interval"]),
        "unlock_time=%s, fail_interval=%s" % (unlock, interval), "faillock.conf")

    defs = parse_login_defs(texts.get(LOGIN_DEFS) or "")
    for control, key, option in (("PWD-009", "PASS_MAX_DAYS", "pass_max_days"),
                                 ("PWD-010", "PASS_MIN_DAYS", "pass_min_days"),
                                 ("PWD-011", "PASS_WARN_AGE", "pass_warn_age")):
        results[control] = (_int(defs.get(key)) == params[option], "%s %d" % (key, params[option]),
                            "%s %s" % (key, defs.get(key, "unset")), LOGIN_DEFS)
    method = defs.get("ENCRYPT_METHOD", "unset")
    unix_hash = [a for a in (password[unix_pw][2] if unix_pw is not None else []) if a in HASH_OPTIONS]
    wanted_hash = params["encrypt_method"].lower()
    results["PWD-012"] = (
        method.upper() == params["encrypt_method"] and unix_hash == [wanted_hash],
        "ENCRYPT_METHOD %s, pam_unix.so %s" % (params["encrypt_method"], wanted_hash),
        "ENCRYPT_METHOD %s, pam_unix.so %s" % (method, " ".join(unix_hash) or "no hash option"),
        LOGIN_DEFS + ", common-password")
    return results


def control_findings(before, after, check_mode, applied_ok, changed_by_control):
    """One finding per control from its state before and after (planned or read back)."""
    findings = []
    for control in sorted(before):
        ok_before, expected, actual_before, evidence = before[control]
        ok_after, _expected, actual_after, _evidence = after[control]
        status = fold(ok_before, ok_after, check_mode, attempted=not ok_before, applied_ok=applied_ok)
        if status == PASS:
            actual = actual_before
        elif check_mode:
            actual = actual_before
            if ok_after:
                evidence = "%s; would change %s" % (evidence, ", ".join(changed_by_control.get(control, [])) or "nothing")
            else:
                evidence = "%s; the planned change would not satisfy it (%s)" % (evidence, actual_after)
        elif status == FIXED:
            actual = actual_after
            evidence = "%s; was %s" % (evidence, actual_before)
        else:
            actual = actual_after
        findings.append(finding(control, status, expected, actual, evidence))
    return findings


# which planned files bear on which control, for the evidence
FILE_CONTROLS = {
    PWQUALITY_DROPIN: ("PWD-001", "PWD-002", "PWD-003", "PWD-004", "PWD-005"),
    PWQUALITY_CONF: ("PWD-001", "PWD-002", "PWD-003", "PWD-004", "PWD-005"),
    FAILLOCK_CONF: ("PWD-007", "PWD-008"),
    PWHISTORY_CONF: ("PWD-006",),
    LOGIN_DEFS: ("PWD-009", "PWD-010", "PWD-011", "PWD-012"),
    PAM_D + "/common-auth": ("PWD-007", "PWD-008"),
    PAM_D + "/common-account": ("PWD-007", "PWD-008"),
    PAM_D + "/common-password": ("PWD-001", "PWD-002", "PWD-003", "PWD-004", "PWD-005", "PWD-006", "PWD-012"),
}


def files_by_control(paths):
    by_control = {}
    for path in paths:
        for control in FILE_CONTROLS.get(path, ()):
            by_control.setdefault(control, []).append(path)
    return by_control


# --- PWD-013: aging of existing accounts -----------------------------------------------------

# Facts seen on bookworm lab hosts: once an account's password has passed its maximum age,
# pam_unix's account phase asks for a new password even when the login was made with a key,
# and even when the password field is locked ('!'). sshd then refuses a login without a
# terminal ("Password change required but no TTY available"), and with a terminal asks for
# the current password, which a key-only account does not have.
KEY_HOLDER_REASON = ("holds an SSH key; once its password expires, sshd refuses its logins without a terminal "
                     "(Password change required but no TTY available)")
KEY_ONLY_ARGV = ["--maxdays", "-1"]
KEY_ONLY_EXPECTED = "no password expiry on an account that logs in with a key only"
KEY_ONLY_REASON = ("no password, but an SSH key and a maximum password age: once the age passes, sshd refuses "
                   "its key logins (an expired password must be changed, and it has none)")


def _ages(maximum):
    return maximum is not None and 0 <= maximum < 99999


def plan_aging(passwd_text, shadow_text, login_defs_text, params, protected, key_holders=frozenset()):
    """[(name, status, wanted argv tail or None, actual, reason)] for human accounts.

    ``status`` is FAIL (chage needed), PASS or SKIPPED. Accounts with a usable password get
    the policy's aging, except protected ones and those in ``key_holders`` (SKIPPED: an
    expired password would refuse their key logins). An account with no usable password
    that holds a key and still carries a maximum age gets that maximum removed (FAIL with
    KEY_ONLY_ARGV): the age of a password it does not have can only lock its keys out.
    """
    uid_min, uid_max = uid_range(parse_login_defs(login_defs_text or ""))
    shadow = parse_shadow(shadow_text)
    wanted = (params["pass_min_days"], params["pass_max_days"], params["pass_warn_age"])
    plans = []
    for account in parse_passwd(passwd_text or ""):
        row = shadow.get(account.name)
        human = uid_min <= account.uid <= uid_max or account.name == "root"
        if not human or row is None:
            continue
        password, minimum, maximum, warn = row.password, row.minimum, row.maximum, row.warn
        actual = "min %s, max %s, warn %s" % (minimum, maximum, warn)
        if not password_usable(password):
            # no usable password: the policy's aging cannot apply
            if account.name in key_holders and _ages(maximum) and account.name not in protected:
                plans.append((account.name, FAIL, list(KEY_ONLY_ARGV), actual, KEY_ONLY_REASON))
            continue
        if (minimum, maximum, warn) == wanted:
            plans.append((account.name, PASS, None, actual, ""))
        elif account.name in protected:
            plans.append((account.name, SKIPPED, None, actual, protected[account.name]))
        elif account.name in key_holders:
            plans.append((account.name, SKIPPED, None, actual, KEY_HOLDER_REASON))
        else:
            argv = ["--mindays", str(wanted[0]), "--maxdays", str(wanted[1]), "--warndays", str(wanted[2])]
            plans.append((account.name, FAIL, argv, actual, ""))
    return plans


def aging_findings(plans, params, check_mode, outcomes):
    expected = "min %d, max %d, warn %d" % (params["pass_min_days"], params["pass_max_days"], params["pass_warn_age"])
    findings = []
    for name, status, argv, actual, reason in plans:
        wanted = KEY_ONLY_EXPECTED if argv == KEY_ONLY_ARGV else expected
        note = "; %s" % reason if argv == KEY_ONLY_ARGV else ""
        if status == SKIPPED and reason == KEY_HOLDER_REASON:
            findings.append(finding("PWD-013", SKIPPED, expected, actual, "left unchanged: the account %s" % reason,
                                    subject=name))
        elif status == SKIPPED:
            findings.append(finding("PWD-013", SKIPPED, expected, actual,
                                    "protected account (%s): left unchanged, since a forced password expiry could shut this way in" % reason,
                                    subject=name))
        elif status == PASS:
            findings.append(finding("PWD-013", PASS, expected, actual, "/etc/shadow", subject=name))
        elif check_mode:
            findings.append(finding("PWD-013", FAIL, wanted, actual, "/etc/shadow; would run chage %s%s" % (" ".join(argv), note),
                                    subject=name))
        else:
            ok, outcome = outcomes.get(name, (False, "not carried out"))
            findings.append(finding("PWD-013", fold(False, ok, False, applied_ok=ok), wanted, wanted if ok else actual,
                                    outcome + note, subject=name))
    if not plans:
        findings.append(finding("PWD-013", PASS, expected, "no human account with a password", "/etc/shadow"))
    return findings


# --- break-glass accounts and pam_faillock ----------------------------------------------------

FAILLOCK_EXEMPT_EXPECTED = "break-glass account exempt from pam_faillock (wrong passwords cannot lock it)"


def faillock_exemption_findings(before_texts, after_texts, break_glass, check_mode, applied_ok):
    """One PWD-007 finding per break-glass account, naming its exemption from faillock.

    ``skipped`` (with the exemption in ``actual``) when the stack exempts it: the control
    deliberately does not apply to it. ``fail`` in check mode when the change would
    exempt it, ``error`` when it was applied and the live stack still does not.
    """
    findings = []
    auth_file = PAM_D + "/common-auth"
    before = faillock_exempt_users(parse_pam_stack(before_texts.get(auth_file), "auth"))
    after = faillock_exempt_users(parse_pam_stack(after_texts.get(auth_file), "auth"))
    exempt_actual = "exempt: pam_succeed_if.so skips pam_faillock preauth and authfail for it"
    for name in sorted(set(break_glass or [])):
        if name in before:
            findings.append(finding("PWD-007", SKIPPED, FAILLOCK_EXEMPT_EXPECTED, exempt_actual, "common-auth", subject=name))
        elif check_mode:
            findings.append(finding("PWD-007", FAIL, FAILLOCK_EXEMPT_EXPECTED, "not exempt from pam_faillock",
                                    "common-auth; %s" % ("would exempt it" if name in after else "the planned stack would not exempt it"),
                                    subject=name))
        elif applied_ok and name in after:
            findings.append(finding("PWD-007", SKIPPED, FAILLOCK_EXEMPT_EXPECTED, exempt_actual,
                                    "common-auth; exemption added", subject=name))
        else:
            findings.append(finding("PWD-007", "error", FAILLOCK_EXEMPT_EXPECTED, "not exempt from pam_faillock",
                                    "common-auth after the change", subject=name))
    return findings
