# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.password_policy: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/password_policy.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import secrets
import shutil
import string
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _accounts as acc
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _guard
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils import _password_policy as pp
from ansible_collections.yoroi.baseline.plugins.module_utils._files import (
    file_diff,
    read_text,
    restore_file,
    write_file,
)

# Path constants: tests point them at a tmp dir.
PWQUALITY_CONF = pp.PWQUALITY_CONF
PWQUALITY_DIR = pp.PWQUALITY_DIR
FAILLOCK_CONF = pp.FAILLOCK_CONF
PWHISTORY_CONF = pp.PWHISTORY_CONF
LOGIN_DEFS = pp.LOGIN_DEFS
PASSWD = pp.PASSWD
SHADOW = pp.SHADOW
PAM_D = pp.PAM_D
PAM_CONFIGS = pp.PAM_CONFIGS
PAM_STATE = pp.PAM_STATE
PAM_MODULE_DIRS = hostfiles.PAM_MODULE_DIRS
DEBCONF_DIR = "/var/cache/debconf"
FAILLOCK_DIR = "/var/run/faillock"

RANGES = {
    "minlen": (8, 128), "minclass": (0, 4), "retry": (1, 10), "remember": (1, 400),
    "faillock_deny": (1, 100), "faillock_unlock_time": (0, 604800), "faillock_fail_interval": (1, 604800),
    "pass_max_days": (1, 99999), "pass_min_days": (0, 99999), "pass_warn_age": (0, 99999),
}


def logical_paths():
    """The canonical paths used by the pure code, mapped to the (patchable) real ones."""
    mapping = {
        pp.PWQUALITY_CONF: PWQUALITY_CONF, pp.FAILLOCK_CONF: FAILLOCK_CONF, pp.PWHISTORY_CONF: PWHISTORY_CONF,
        pp.LOGIN_DEFS: LOGIN_DEFS, pp.PASSWD: PASSWD, pp.SHADOW: SHADOW,
        pp.PWQUALITY_DROPIN: os.path.join(PWQUALITY_DIR, "yoroi.conf"),
    }
    for pam_type in pp.COMMON_TYPES:
        mapping["%s/common-%s" % (pp.PAM_D, pam_type)] = os.path.join(PAM_D, "common-" + pam_type)
    for name in list(pp.plan_profiles(dict(remember=1), True)) + [pp.PWQUALITY_PROFILE_NAME]:
        mapping["%s/%s" % (pp.PAM_CONFIGS, name)] = os.path.join(PAM_CONFIGS, name)
    return mapping


def pwhistory_reads_conf():
    path = hostfiles.find_pam_module("pam_pwhistory.so", PAM_MODULE_DIRS)
    if path is None:
        return os.path.exists(PWHISTORY_CONF)
    with open(path, "rb") as handle:
        return b"pwhistory.conf" in handle.read()


def read_state(paths):
    texts = dict((logical, read_text(real)) for logical, real in paths.items())
    dropins = []
    for real in sorted(glob.glob(os.path.join(PWQUALITY_DIR, "*.conf"))):
        logical = "%s/%s" % (pp.PWQUALITY_DIR, os.path.basename(real))
        texts.setdefault(logical, read_text(real))
        dropins.append(logical)
    if pp.PWQUALITY_DROPIN not in dropins:
        dropins.append(pp.PWQUALITY_DROPIN)
    return texts, dropins


# --- pam-auth-update, staged and live ---------------------------------------------------------

PROFILES_ENABLED = [pp.PWQUALITY_PROFILE_NAME, "yoroi-faillock-notify", "yoroi-faillock", "yoroi-pwhistory"]


def _debconf_env(stage):
    """A private debconf database copied from the real one: a staged run writes nothing real."""
    directory = os.path.join(stage, "debconf")
    os.makedirs(directory)
    for name in ("config.dat", "templates.dat"):
        if os.path.exists(os.path.join(DEBCONF_DIR, name)):
            shutil.copy2(os.path.join(DEBCONF_DIR, name), os.path.join(directory, name))
    rc = os.path.join(directory, "debconf.conf")
    with open(rc, "w") as handle:
        handle.write("Config: configdb\nTemplates: templatedb\n\n"
                     "Name: configdb\nDriver: File\nFilename: %s/config.dat\n\n"
                     "Name: templatedb\nDriver: File\nMode: 644\nFilename: %s/templates.dat\n" % (directory, directory))
    return {"DEBCONF_SYSTEMRC": rc, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def run_pam_auth_update(module, root=None, force=False, env=None):
    argv = [module.get_bin_path("pam-auth-update", required=True)]
    if root:
        argv += ["--root", root]
    argv += ["--package", "--enable"] + PROFILES_ENABLED
    if force:
        argv.append("--force")
    environ = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    environ.update(env or {})
    rc, out, err = module.run_command(argv, environ_update=environ)
    refused = "Local modifications" in (err or "") + (out or "")
    return rc, refused, (err or out or "").strip()


def predict_stack(module, texts, planned, pre_edited_password):
    """Run pam-auth-update on a staged copy; return ({logical common path: text}, hand_edited, error)."""
    stage = tempfile.mkdtemp(prefix="yoroi-pam-")
    try:
        for sub in ("etc/pam.d", "var/lib/pam", "usr/share/pam-configs"):
            os.makedirs(os.path.join(stage, sub))
        for pam_type in pp.COMMON_TYPES:
            text = texts.get("%s/common-%s" % (pp.PAM_D, pam_type))
            if pam_type == "password":
                text = pre_edited_password
            if text is not None:
                with open(os.path.join(stage, "etc/pam.d/common-" + pam_type), "w") as handle:
                    handle.write(text)
        if os.path.isdir(PAM_STATE):
            for name in os.listdir(PAM_STATE):
                if os.path.isfile(os.path.join(PAM_STATE, name)):
                    shutil.copy2(os.path.join(PAM_STATE, name), os.path.join(stage, "var/lib/pam", name))
        if os.path.isdir(PAM_CONFIGS):
            for name in os.listdir(PAM_CONFIGS):
                if os.path.isfile(os.path.join(PAM_CONFIGS, name)):
                    shutil.copy2(os.path.join(PAM_CONFIGS, name), os.path.join(stage, "usr/share/pam-configs", name))
        profiles = dict((path, text) for path, text in planned.items() if path.startswith(pp.PAM_CONFIGS + "/"))
        if texts.get("%s/%s" % (pp.PAM_CONFIGS, pp.PWQUALITY_PROFILE_NAME)) is None:
            # Not installed yet (check mode before the role's apt task): plan with the
            # profile the package ships.
            profiles["%s/%s" % (pp.PAM_CONFIGS, pp.PWQUALITY_PROFILE_NAME)] = pp.PWQUALITY_PROFILE
        for path, text in profiles.items():
            with open(os.path.join(stage, "usr/share/pam-configs", os.path.basename(path)), "w") as handle:
                handle.write(text)
        env = _debconf_env(stage)
        rc, refused, message = run_pam_auth_update(module, stage, False, env)
        hand_edited = refused
        if refused:
            rc, refused, message = run_pam_auth_update(module, stage, True, env)
        if rc != 0 or refused:
            return None, hand_edited, "pam-auth-update (staged) failed: %s" % message
        result = {}
        for pam_type in pp.COMMON_TYPES:
            result["%s/common-%s" % (pp.PAM_D, pam_type)] = read_text(os.path.join(stage, "etc/pam.d/common-" + pam_type))
        return result, hand_edited, None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# --- the lockout guard ----------------------------------------------------------------------------

PAM_SUCCESS = 0
PAM_PERM_DENIED = 6
PAM_AUTH_ERR = 7
# A wrong password must be refused, not crash a module. With the CIS layout
# (pam_faillock authfail with [default=die] after pam_unix) libpam reports the refusal as
# PAM_PERM_DENIED: authfail returns PAM_IGNORE and "die" on an ignore ends the stack with
# PAM_MUST_FAIL_CODE. Errors such as PAM_SYSTEM_ERR or PAM_MODULE_UNKNOWN fail the proof.
PAM_REFUSALS = (PAM_AUTH_ERR, PAM_PERM_DENIED)
PAM_PROMPT_ECHO_OFF = 1
PAM_PROMPT_ECHO_ON = 2


class _PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class _PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


_CONV_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(_PamMessage)),
                              ctypes.POINTER(ctypes.POINTER(_PamResponse)), ctypes.c_void_p)


class _PamConv(ctypes.Structure):
    _fields_ = [("conv", _CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


def pam_login(service, user, password):
    """(pam_authenticate rc, pam_acct_mgmt rc or None) through libpam, answering ``password``."""
    libpam = ctypes.CDLL(ctypes.util.find_library("pam") or "libpam.so.0")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.calloc.restype = ctypes.c_void_p
    libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    libc.strdup.restype = ctypes.c_void_p
    libc.strdup.argtypes = [ctypes.c_char_p]
    secret = password.encode()

    def conversation(count, messages, responses, _data):
        array = libc.calloc(count, ctypes.sizeof(_PamResponse))
        responses[0] = ctypes.cast(array, ctypes.POINTER(_PamResponse))
        for index in range(count):
            if messages[index].contents.msg_style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                responses[0][index].resp = libc.strdup(secret)
        return PAM_SUCCESS

    callback = _CONV_FUNC(conversation)
    handle = ctypes.c_void_p()
    libpam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_PamConv), ctypes.POINTER(ctypes.c_void_p)]
    libpam.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpam.pam_acct_mgmt.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpam.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
    rc = libpam.pam_start(service.encode(), user.encode(), ctypes.byref(_PamConv(callback, None)), ctypes.byref(handle))
    if rc != PAM_SUCCESS:
        return rc, None
    auth = libpam.pam_authenticate(handle, 0)
    account = libpam.pam_acct_mgmt(handle, 0) if auth == PAM_SUCCESS else None
    libpam.pam_end(handle, auth)
    return auth, account


def random_password():
    """24 characters with every class; no word for dictcheck to find."""
    alphabet = string.ascii_letters + string.digits + "#%+,-.:=@_"
    while True:
        candidate = "".join(secrets.choice(alphabet) for dummy in range(24))
        if (any(c.islower() for c in candidate) and any(c.isupper() for c in candidate)
                and any(c.isdigit() for c in candidate) and any(not c.isalnum() for c in candidate)):
            return candidate


def prove_login(module):
    """Prove the live stack: returns None when it works, else what failed (no password in it)."""
    user = "yoroi-pamchk-%s" % secrets.token_hex(3)
    service = "sshd" if os.path.exists(os.path.join(PAM_D, "sshd")) else "login"
    password = random_password()
    run = module.run_command
    env = {"LC_ALL": "C"}
    rc, out, err = run([module.get_bin_path("useradd", required=True), "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", user], environ_update=env)
    if rc != 0:
        return "useradd %s failed: %s" % (user, (err or out).strip())
    try:
        rc, out, err = run([module.get_bin_path("chpasswd", required=True)], data="%s:%s" % (user, password),
                           environ_update=env, binary_data=False)
        if rc != 0:
            return "chpasswd through the new password stack failed for a strong password: %s" % (err or out).strip()
        auth, account = pam_login(service, user, password)
        if auth != PAM_SUCCESS or account != PAM_SUCCESS:
            return "PAM service %s refused the right password (authenticate rc=%s, acct_mgmt rc=%s)" % (service, auth, account)
        auth, _account = pam_login(service, user, password + "x")
        if auth not in PAM_REFUSALS:
            return "PAM service %s answered a wrong password with rc=%s, not a refusal (PAM_AUTH_ERR or PAM_PERM_DENIED)" % (service, auth)
        return None
    finally:
        run([module.get_bin_path("userdel", required=True), user], environ_update=env)
        faillock = module.get_bin_path("faillock")
        if faillock:
            run([faillock, "--user", user, "--reset"], environ_update=env)
        tally = os.path.join(FAILLOCK_DIR, user)
        if os.path.exists(tally):
            os.unlink(tally)


def key_holders_of(passwd_text):
    """Accounts with an authorized SSH key: password aging would refuse their key logins."""
    return acc.key_holders(acc.parse_passwd(passwd_text or ""), read_text)


# --- main -------------------------------------------------------------------------------------


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            minlen=dict(type="int", default=14),
            minclass=dict(type="int", default=3),
            dictcheck=dict(type="bool", default=True),
            enforce_for_root=dict(type="bool", default=True),
            retry=dict(type="int", default=3),
            remember=dict(type="int", default=24),
            faillock_deny=dict(type="int", default=5),
            faillock_unlock_time=dict(type="int", default=900),
            faillock_fail_interval=dict(type="int", default=900),
            pass_max_days=dict(type="int", default=365, no_log=False),
            pass_min_days=dict(type="int", default=1, no_log=False),
            pass_warn_age=dict(type="int", default=7, no_log=False),
            encrypt_method=dict(type="str", default="YESCRYPT", choices=["YESCRYPT", "SHA512"]),
            apply_aging_to_existing=dict(type="bool", default=True),
        ), guard_timeout=120, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "password_policy", dict.fromkeys(pp.CONTROLS, "the password policy as configured"),
                               change="PAM")
    for option, (low, high) in sorted(RANGES.items()):
        if not low <= params[option] <= high:
            concern.refuse("%s must be between %d and %d, got %d" % (option, low, high, params[option]))
    for option in ("pass_min_days", "pass_warn_age"):
        if params[option] >= params["pass_max_days"]:
            concern.refuse("%s (%d) must be below pass_max_days (%d)" % (option, params[option], params["pass_max_days"]))
    if read_text(SHADOW) is None or not os.access(SHADOW, os.R_OK):
        concern.refuse("cannot read %s: run as root (become: true)" % SHADOW)
    concern.install(params["packages"], params["apt_cache_valid_time"])
    protected = concern.protected

    # read once
    paths = logical_paths()
    texts, dropins = read_state(paths)
    history_conf = pwhistory_reads_conf()

    # plan
    try:
        planned = pp.plan_files(texts, params, history_conf)
    except ValueError as exc:
        module.fail_json(msg=str(exc), findings=[])
    quality = pp.pwquality_settings(params)
    common_password = "%s/common-password" % pp.PAM_D
    pre_edited = pp.normalize_stack_options(texts.get(common_password), params["encrypt_method"], quality)
    stack, hand_edited, stage_error = predict_stack(module, texts, planned, pre_edited)
    if stage_error:
        concern.refuse(stage_error)
    stack_changes = [path for path, text in stack.items() if text != texts.get(path)]
    after_texts = dict(texts)
    after_texts.update(planned)
    after_texts.update(stack)
    file_changes = pp.changed_files(texts, planned)
    key_holders = key_holders_of(texts.get(pp.PASSWD))
    aging = pp.plan_aging(texts.get(pp.PASSWD), texts.get(pp.SHADOW), after_texts.get(pp.LOGIN_DEFS), params, protected,
                          key_holders)

    before = pp.evaluate(texts, params, dropins, history_conf)
    concern.controls.update((control, (expected, actual)) for control, (_ok, expected, actual, _e) in before.items())
    diffs = [file_diff(paths.get(p, p), texts.get(p), planned[p]) for p in file_changes]
    diffs += [file_diff(paths[p], texts.get(p), stack[p]) for p in sorted(stack_changes)]
    by_control = pp.files_by_control([paths.get(p, p) for p in file_changes + stack_changes])
    aging_todo = [plan for plan in aging if plan[1] == pp.FAIL and params["apply_aging_to_existing"]]
    changed = bool(file_changes or stack_changes or aging_todo)
    result = dict(backups=[], pam_auth_update="planned" if stack_changes else "unchanged")

    if module.check_mode:
        after = pp.evaluate(after_texts, params, dropins, history_conf)
        findings = pp.control_findings(before, after, True, True, by_control)
        if texts.get("%s/%s" % (pp.PAM_CONFIGS, pp.PWQUALITY_PROFILE_NAME)) is None:
            for item in findings:
                if item["control"] == "PWD-001":
                    item["evidence"] += "; libpam-pwquality is not installed yet (planned with the profile it ships)"
        findings += pp.aging_findings(aging, params, True, {})
        findings += pp.faillock_exemption_findings(texts, after_texts, params["break_glass_accounts"], True, True)
        concern.exit(findings, changed, diffs, **result)

    # guard before: every module the new stack names must exist
    missing = sorted(name for name in pp.stack_modules(stack) if hostfiles.find_pam_module(name, PAM_MODULE_DIRS) is None)
    if missing:
        concern.refuse("the new PAM stack names missing modules: %s (is libpam-pwquality installed?)" % ", ".join(missing))

    with concern.changing():
        diffs = apply(module, concern, result, paths, texts, planned, stack, pre_edited, hand_edited,
                      file_changes, stack_changes, diffs)
        after_texts, _dropins = read_state(paths)
        after = pp.evaluate(after_texts, params, dropins, history_conf)
        findings = pp.control_findings(before, after, False, True, by_control)
        outcomes = {}
        chage = module.get_bin_path("chage", required=True)
        for name, _status, argv, _actual, _reason in aging_todo:
            rc, out, err = module.run_command([chage] + argv + [name], environ_update={"LC_ALL": "C"})
            outcomes[name] = (rc == 0, "chage %s" % " ".join(argv) if rc == 0 else "chage failed: %s" % (err or out).strip())
    # with apply_aging_to_existing false, drift stays reported as fail (as in check mode)
    findings += pp.aging_findings(aging, params, not params["apply_aging_to_existing"], outcomes)
    findings += pp.faillock_exemption_findings(texts, after_texts, params["break_glass_accounts"], False, True)
    concern.exit(findings, changed, diffs, **result)


def apply(module, concern, result, paths, texts, planned, stack, pre_edited, hand_edited, file_changes, stack_changes, diffs):
    """Write every file, then run pam-auth-update, then prove a login; roll all back on failure.

    Returns the diffs as really applied.
    """
    common_password = "%s/common-password" % pp.PAM_D
    written = []  # (real path, backup or None)
    pam_paths = []
    if stack_changes:
        # pam-auth-update rewrites every common-* and its state: back them all up first
        for pam_type in pp.COMMON_TYPES:
            pam_paths.append(os.path.join(PAM_D, "common-" + pam_type))
        if os.path.isdir(PAM_STATE):
            pam_paths += [os.path.join(PAM_STATE, n) for n in sorted(os.listdir(PAM_STATE))
                          if os.path.isfile(os.path.join(PAM_STATE, n))]
    pam_backups = [(path, module.backup_local(path) if os.path.exists(path) else None) for path in pam_paths]
    result["backups"] = [b for _p, b in pam_backups if b]

    # The lockout guard: unless a fresh login of the automation account confirms the
    # change, the host puts every file back by itself (DESIGN invariant 5).
    result.update(concern.arm_guard([paths.get(p, p) for p in file_changes] + pam_paths, [], module.params["guard_timeout"]))

    def rollback(reason):
        for path, backup in reversed(written + pam_backups):
            restore_file(module, path, backup)
        if "guard_token" in result:
            # put back by hand above; the guard's own restore stops its timer
            _guard.rollback(module, result.pop("guard_token"), lock_held=True)
        result["pam_auth_update"] = "rolled-back"
        concern.fail("password policy rolled back: %s; every file was restored from the backups taken in this run" % reason,
                     changed=False, **result)

    try:
        for path in file_changes:
            _changed, backup = write_file(module, paths.get(path, path), planned[path], mode=0o644)
            written.append((paths.get(path, path), backup))
            if backup:
                result["backups"].append(backup)
        if stack_changes:
            if pre_edited != texts.get(common_password):
                # already backed up with the other common-* files above
                write_file(module, paths[common_password], pre_edited, backup=False)
            rc, refused, message = run_pam_auth_update(module, force=hand_edited)
            if rc != 0 or refused:
                rollback("pam-auth-update failed: %s" % message)
            result["pam_auth_update"] = "applied-forced" if hand_edited else "applied"
        if file_changes or stack_changes:
            problem = prove_login(module)
            if problem:
                rollback("lockout guard: %s" % problem)
    except Exception as exc:  # a half-applied PAM change must not stay
        if "AnsibleFailJson" in type(exc).__name__ or "AnsibleExitJson" in type(exc).__name__:
            raise
        rollback("unexpected error: %s" % exc)

    if stack_changes:
        # the diff shows what really changed in every common-* file
        final_texts, _dropins = read_state(paths)
        diffs = [d for d in diffs if not d["before_header"].startswith(PAM_D + "/common-")] + [
            file_diff(paths[p], texts.get(p), final_texts.get(p)) for p in sorted(stack)
            if final_texts.get(p) != texts.get(p)]
    return diffs
