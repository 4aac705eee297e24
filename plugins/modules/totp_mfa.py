#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: totp_mfa
short_description: Require a TOTP code for SSH logins (and optionally sudo) of chosen groups
version_added: 0.1.0
description:
  - Reads the MFA groups' members and their C(~/.google_authenticator) files (options only,
    never the secret), C(/etc/pam.d/sshd), C(/etc/pam.d/sudo) and the composed sshd
    configuration once, and evaluates C(MFA-001) to C(MFA-005) in one pass.
  - sshd gets its own drop-in (O(dropin), C(Match) blocks only) - exemptions first, then
    C(Match Group) with C(KbdInteractiveAuthentication yes) and C(AuthenticationMethods)
    C(keyboard-interactive) (O(mode=password), PAM asks the password then the code) or
    C(publickey,keyboard-interactive) (O(mode=publickey), PAM asks only the code).
  - The PAM block (between marker comments, so a second run finds it) lets non-members
    skip with C(pam_succeed_if user notingroup), and exempt users from exempt addresses
    skip with C(pam_access) and O(access_file).
  - Enrolment - a member with no secret file gets one (20 random bytes from the OS, base32),
    five scratch codes and C(RATE_LIMIT 3 30), C(WINDOW_SIZE 3), C(DISALLOW_REUSE),
    C(TOTP_AUTH), created as the user with mode 0400 through a descriptor of the home
    directory opened without following links; a home that is a symlink or belongs to
    another user is refused. An existing file is never replaced, except one this module
    created whose hand-off was never confirmed (below).
  - Hand-off - the new secrets come back in the result (RV(handoff)), never read again from
    the user's directory. The collection's action plugin of the same name takes them out
    on the controller, writes C(<enrollment_dir>/<inventory_hostname>/<user>.otpauth)
    (0600) and calls this module again with O(confirm); only the findings and the names
    reach the task result.
  - Pending enrolments - until confirmed, an enrolment is recorded in
    C(/var/lib/yoroi/mfa/pending/<user>) (root, 0600, the SHA-256 of the secret). A pending
    enrolment counts as not enrolled (C(MFA-002)), and the next run replaces its secret
    (nobody holds it) and hands it off again.
  - Grace period - before O(deadline) the TOTP line has C(nullok), so unenrolled members
    still log in (reported C(MFA-002) fail); from the deadline on, C(nullok) is dropped.
    The deadline takes effect at the first run on or after it.
  - Lockout guard - before writing, the candidate configuration is composed in a temporary
    directory (the live C(sshd_config) and drop-ins plus the new drop-in), checked with
    C(sshd -t), and C(sshd -T -C) must show that O(automation_account) keeps a key-only way
    in and each of O(break_glass_accounts) a way it can complete; otherwise nothing is
    changed and the module fails with the reason. An automation account inside an MFA
    group without an exemption is refused outright. After the checks, with O(guard_timeout),
    the lockout guard is armed before the first write and its token returned, so the role
    confirms the change after a fresh login or lets the host restore it.
author:
  - Yoroi maintainers
attributes:
  check_mode:
    support: full
    description: Reads, composes the candidate and runs C(sshd -t)/C(sshd -T) on it; writes nothing; drift has status C(fail).
  diff_mode:
    support: full
    description: One diff per configuration file; enrolments are listed, never their content.
options:
  groups:
    description: Groups whose members must present a TOTP code.
    type: list
    elements: str
    required: true
  mode:
    description: C(password) - password and code through keyboard-interactive; C(publickey) - a key, then the code.
    type: str
    choices: [password, publickey]
    default: password
  deadline:
    description: End of the grace period (YYYY-MM-DD); empty means no grace period.
    type: str
    default: ""
  enroll:
    description: Create a secret for every member without one.
    type: bool
    default: true
  exemptions:
    description: Accounts that skip the code, and only with these methods from these addresses.
    type: list
    elements: dict
    default: []
    suboptions:
      user: {description: The account., type: str, required: true}
      methods: {description: "sshd AuthenticationMethods for it, e.g. C(publickey).", type: str, default: publickey}
      from: {description: Addresses or networks; empty means any., type: list, elements: str, default: []}
  sudo:
    description: Also require the code for sudo (C(MFA-005)); when false a block written before is removed.
    type: bool
    default: false
  automation_account:
    description: The account Ansible connects as; must keep a key-only way in.
    type: str
    required: true
  break_glass_accounts:
    description: Emergency accounts; each must keep a way in it can complete.
    type: list
    elements: str
    default: []
  dropin:
    description: The sshd drop-in this module owns.
    type: path
    default: /etc/ssh/sshd_config.d/50-yoroi-mfa.conf
  access_file:
    description: The pam_access file listing exemptions.
    type: path
    default: /etc/security/yoroi-mfa-exempt.conf
  enrollment_dir:
    description:
      - Controller directory for the otpauth URIs of new enrolments, used by the action
        plugin on the controller (the module ignores it); empty turns O(enroll) off, as a new
        secret would reach nobody.
    type: str
    default: ""
  issuer:
    description: The issuer named in the otpauth URIs (used on the controller).
    type: str
    default: Yoroi
  confirm:
    description:
      - Sent by the action plugin after the URIs are saved - the enrolments (user and
        secret digest) whose pending record is removed. With it, nothing else is done.
    type: list
    elements: dict
    suboptions:
      user: {description: The enrolled account., type: str, required: true}
      digest: {description: SHA-256 of the secret the controller saved., type: str, required: true}
  guard_timeout:
    description:
      - Seconds after which the lockout guard (C(module_utils/_guard.py)) restores the sshd
        and PAM files and reloads sshd, unless C(yoroi.baseline.change_guard) confirms a fresh
        login first; 0 turns the guard off. Secret files are not guarded - they are never
        replaced, only created.
    type: int
    default: 0
notes:
  - On a host with no SSH server (no C(sshd)) and O(sudo=false), every MFA control is reported as C(skipped) and nothing is changed.
  - Runs as root (C(become)). Needs libpam-google-authenticator installed before an apply;
    check mode plans without it and says so.
"""

EXAMPLES = r"""
- name: TOTP for the ops group, grace until the end of March
  yoroi.baseline.totp_mfa:
    groups: [mfa-users]
    mode: password
    deadline: "2027-03-31"
    automation_account: yoroi
    break_glass_accounts: [breakglass]
    exemptions:
      - {user: yoroi, methods: publickey, from: ["127.0.0.1", "10.0.0.0/8"]}
  register: mfa
"""

RETURN = r"""
findings:
  description: Findings for MFA-001 .. MFA-005 (per member where it is about one account).
  returned: always
  type: list
  elements: dict
enrolled:
  description: Members enrolled in this run, with the path of their new secret file (never the secret).
  returned: always
  type: list
  elements: dict
  sample: [{user: alice, path: /home/alice/.google_authenticator}]
handoff:
  description:
    - The new secrets, for the controller only (user, secret, digest). The action plugin
      removes this key before the result reaches a log, an event or a report.
  returned: when something was enrolled
  type: list
  elements: dict
confirmed:
  description: With O(confirm), the users whose pending enrolment was cleared.
  returned: with O(confirm)
  type: list
  elements: str
nullok:
  description: Whether unenrolled members can still log in (before the deadline).
  returned: always
  type: bool
members:
  description: Members of the MFA groups.
  returned: always
  type: list
  elements: str
backups:
  description: Backup files written in this run.
  returned: always
  type: list
  elements: str
guard_token:
  description: The token of the armed lockout guard, for C(yoroi.baseline.change_guard) to confirm or roll back.
  returned: when a guard was armed (O(guard_timeout) set and something changed)
  type: str
guard:
  description: The armed guard (token, unit, dir).
  returned: when a guard was armed
  type: dict
"""

import datetime
import errno
import grp
import os
import pwd
import secrets
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _mfa as mfa
from ansible_collections.yoroi.baseline.plugins.module_utils._files import file_diff, read_text, write_file
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, FAIL, SKIPPED, finding

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard

# Path constants: tests point them at a tmp dir.
SSHD_CONFIG = "/etc/ssh/sshd_config"
PAM_SSHD = mfa.PAM_SSHD
PAM_SUDO = mfa.PAM_SUDO
SHADOW = "/etc/shadow"
PAM_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/security", "/usr/lib/aarch64-linux-gnu/security",
                   "/lib/x86_64-linux-gnu/security", "/lib/aarch64-linux-gnu/security", "/usr/lib/security")
TOTP_MODULE = "pam_google_authenticator.so"
PENDING_DIR = mfa.PENDING_DIR


# --- reading ------------------------------------------------------------------------------------


def read_member(name, uid, gid, home):
    """A Member with its secret file's state; neither the home nor the file is followed as a link."""
    if not home or not os.path.isdir(home):
        return mfa.Member(name, uid, gid, home, "no_home", "no home directory")
    try:
        home_fd = open_home(home, uid)
    except EnrolmentRefused as exc:
        return mfa.Member(name, uid, gid, home, "unsafe_home", str(exc))
    try:
        fd = os.open(mfa.SECRET_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=home_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return mfa.Member(name, uid, gid, home, "absent")
        # ELOOP: a symlink - never followed as root
        return mfa.Member(name, uid, gid, home, "unusable", "cannot open without following links: %s" % exc.strerror)
    finally:
        os.close(home_fd)
    try:
        info = os.fstat(fd)
        state, detail = mfa.secret_state(stat.S_ISREG(info.st_mode), info.st_uid, info.st_mode, uid)
        parsed = digest = None
        if stat.S_ISREG(info.st_mode) and info.st_size <= 65536:
            with os.fdopen(os.dup(fd), "r", encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            parsed, digest = mfa.parse_secret_file(text), mfa.secret_digest(text)
        return mfa.Member(name, uid, gid, home, state, detail, parsed, digest)
    finally:
        os.close(fd)


def read_accounts(groups):
    group_db = {}
    for group in groups:
        try:
            entry = grp.getgrnam(group)
            group_db[group] = (entry.gr_gid, list(entry.gr_mem))
        except KeyError:
            pass
    passwd = [(p.pw_name, p.pw_uid, p.pw_gid, p.pw_dir) for p in pwd.getpwall()]
    return group_db, passwd


def usable_password(name):
    for line in (read_text(SHADOW, "") or "").splitlines():
        fields = line.split(":")
        if len(fields) > 1 and fields[0] == name:
            return fields[1] not in ("", "*") and not fields[1].startswith("!") and not fields[1].startswith("*")
    return False


def has_key(name):
    try:
        home = pwd.getpwnam(name).pw_dir
    except KeyError:
        return False
    path = os.path.join(home, ".ssh", "authorized_keys")
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def connection_address():
    """The client address of the SSH connection this module runs under, if any.

    sudo drops SSH_CONNECTION from the environment, so the ancestors' environments are read.
    """
    pid = os.getpid()
    for _depth in range(12):
        try:
            # sudo itself is not dumpable (setuid): its environ is unreadable even to root
            with open("/proc/%d/environ" % pid, "rb") as handle:
                for item in handle.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        return item.split(b"=", 1)[1].split()[0].decode()
        except OSError:
            pass
        try:
            with open("/proc/%d/stat" % pid) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 1:
            return None
    return None


def find_pam_module(name):
    for directory in PAM_MODULE_DIRS:
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return None


def missing_pam_parts(text):
    modules, includes = mfa.pam_modules_named(text)
    missing = sorted(m for m in modules if find_pam_module(m) is None)
    missing += sorted("@include %s" % i for i in includes if not os.path.exists(os.path.join(os.path.dirname(PAM_SSHD), i)))
    return missing


# --- the candidate sshd configuration -----------------------------------------------------------


class Candidate(object):
    """The live sshd configuration with our drop-in replaced, composed in a temp dir."""

    def __init__(self, module, dropin, dropin_text):
        self.module = module
        self.sshd = module.get_bin_path("sshd", required=True, opt_dirs=["/usr/sbin"])
        self.dir = tempfile.mkdtemp(prefix="yoroi-mfa-sshd-")
        dropin_dir = os.path.dirname(dropin)
        conf_dir = os.path.dirname(SSHD_CONFIG)
        staged = os.path.join(self.dir, "sshd_config.d")
        os.mkdir(staged)
        main = read_text(SSHD_CONFIG, "") or ""
        lines = []
        for line in main.splitlines():
            words = line.split()
            if words and words[0].lower() == "include":
                targets = []
                for target in words[1:]:
                    absolute = target if target.startswith("/") else os.path.join(conf_dir, target)
                    if os.path.dirname(absolute) == dropin_dir:
                        targets.append(os.path.join(staged, os.path.basename(absolute)))
                    else:
                        targets.append(absolute)
                line = "Include " + " ".join(targets)
            lines.append(line)
        if os.path.isdir(dropin_dir):
            for name in os.listdir(dropin_dir):
                source = os.path.join(dropin_dir, name)
                if source != dropin and os.path.isfile(source):
                    shutil.copy(source, os.path.join(staged, name))
        with open(os.path.join(staged, os.path.basename(dropin)), "w") as handle:
            handle.write(dropin_text)
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def test(self):
        rc, out, err = self.module.run_command([self.sshd, "-t", "-f", self.config], environ_update={"LC_ALL": "C"})
        return rc == 0, (err or out).strip().replace(self.dir, "<candidate>")

    def effective(self, user, address):
        rc, out, err = self.module.run_command(
            [self.sshd, "-T", "-f", self.config, "-C", "user=%s,host=%s,addr=%s" % (user, address, address)],
            environ_update={"LC_ALL": "C"})
        if rc != 0:
            return None, (err or out).strip().replace(self.dir, "<candidate>")
        return mfa.parse_sshd_t(out), ""

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def exempt_at(exemptions, user, address):
    import ipaddress

    for item in exemptions:
        if item["user"] != user:
            continue
        if not item["from"]:
            return True
        for source in item["from"]:
            if ipaddress.ip_address(address) in ipaddress.ip_network(source, strict=False):
                return True
    return False


def lockout_problems(candidate, params, exemptions, members, use_nullok, connection):
    """Reasons the candidate would lock out the automation or a break-glass account ([] = safe)."""
    problems, evidence = [], []
    automation = params["automation_account"]
    accounts = [(automation, True)] + [(name, False) for name in params["break_glass_accounts"] if name != automation]
    for name, is_automation in accounts:
        try:
            pwd.getpwnam(name)
        except KeyError:
            if is_automation:
                problems.append("automation account %s does not exist" % name)
            continue
        sources = [s for item in exemptions if item["user"] == name for s in item["from"]]
        addresses = mfa.probe_addresses(sources, connection)
        enrolled = name in members and members[name].state == "ok"
        key, password = has_key(name), usable_password(name)
        results = []
        for address in addresses:
            effective, error = candidate.effective(name, address)
            if effective is None:
                problems.append("sshd -T for %s failed: %s" % (name, error))
                break
            if is_automation:
                # Ansible has a key and nothing else: one alternative must be a key alone
                capabilities = {"key": key, "password": False, "kbdint": False}
            else:
                capabilities = {"key": key, "password": password,
                                "kbdint": mfa.kbdint_ok(name in members, exempt_at(exemptions, name, address),
                                                        params["mode"], enrolled, use_nullok, password)}
            ok, how = mfa.way_in(effective, capabilities)
            results.append((address, ok, how))
        if not results:
            continue
        if is_automation:
            bad = [r for r in results if not r[1]]
            for address, _ok, how in bad:
                problems.append("automation account %s would be locked out from %s (%s; it logs in with a key only)"
                                % (name, address, how))
        elif not any(r[1] for r in results):
            problems.append("break-glass account %s would have no way in (%s)" % (
                name, "; ".join("%s: %s" % (r[0], r[2]) for r in results)))
        evidence.extend("%s from %s: %s" % (name, r[0], r[2]) for r in results if r[1])
    return problems, evidence


# --- writing ------------------------------------------------------------------------------------


class EnrolmentRefused(Exception):
    """A member's home directory must not be written as root."""


def open_home(home, uid):
    """A descriptor of the home directory, opened without following a link, owned by the user or root."""
    try:
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EnrolmentRefused("a symlink (never followed as root)")
        if exc.errno == errno.ENOTDIR:
            raise EnrolmentRefused("not a directory")
        raise
    problem = mfa.home_problem(stat.S_ISDIR(os.fstat(fd).st_mode), os.fstat(fd).st_uid, uid)
    if problem:
        os.close(fd)
        raise EnrolmentRefused(problem)
    return fd


def create_secret(member):
    """Create ~/.google_authenticator as the user, 0400; returns (path, the file's text).

    Everything happens through a descriptor of the home (never a path a user could swap):
    the temp file is created O_EXCL|O_NOFOLLOW, chowned and chmodded through its own
    descriptor before it gets its name. A new file gets the name with link(), which
    refuses to replace anything (EEXIST); a pending one (ours, nobody holds its secret) is
    replaced with rename(), which replaces the name and never follows a link there.
    The pending record is written before the secret exists, so no secret is ever unrecorded.
    """
    text = mfa.new_secret_text(secrets.token_bytes(20),
                               [secrets.randbelow(90000000) + 10000000 for _i in range(mfa.SCRATCH_CODES)])
    home_fd = open_home(member.home, member.uid)
    tmp = ".yoroi-ga-%s" % secrets.token_hex(8)
    fd = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=home_fd)
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, 0o400)
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
        os.close(fd)
        fd = None
        write_pending(member.name, mfa.secret_digest(text))
        if member.state == "pending":
            os.rename(tmp, mfa.SECRET_NAME, src_dir_fd=home_fd, dst_dir_fd=home_fd)
        else:
            os.link(tmp, mfa.SECRET_NAME, src_dir_fd=home_fd, dst_dir_fd=home_fd, follow_symlinks=False)
        return os.path.join(member.home, mfa.SECRET_NAME), text
    finally:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp, dir_fd=home_fd)
        except OSError:
            pass  # renamed into place
        os.close(home_fd)


def read_pending(names):
    """{user: digest} of the pending enrolments among ``names``."""
    markers = {}
    for name in names:
        try:
            fd = os.open(os.path.join(PENDING_DIR, mfa.checked_user(name)), os.O_RDONLY | os.O_NOFOLLOW)
        except (OSError, ValueError):
            continue
        with os.fdopen(fd) as handle:
            markers[name] = handle.read(200).strip()
    return markers


def write_pending(name, digest):
    """Record an enrolment as pending (root, 0600), atomically."""
    os.makedirs(PENDING_DIR, mode=0o700, exist_ok=True)
    path = os.path.join(PENDING_DIR, mfa.checked_user(name))
    fd, tmp = tempfile.mkstemp(prefix=".pending-", dir=PENDING_DIR)
    try:
        os.write(fd, (digest + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def clear_pending(name):
    try:
        os.unlink(os.path.join(PENDING_DIR, mfa.checked_user(name)))
    except FileNotFoundError:
        pass


def enrol(members, to_enrol, stale):
    """Create the planned secrets: (enrolled result, hand-off, {user: error}).

    A failure for one member is reported for that member; the others are still enrolled.
    """
    for name in stale:
        clear_pending(name)  # the user replaced our file with their own: theirs
    enrolled, handoff, errors = [], [], {}
    for name in to_enrol:
        member = members[name]
        try:
            path, text = create_secret(member)
        except EnrolmentRefused as exc:
            errors[name] = "home directory refused: %s" % exc
            continue
        except ValueError as exc:  # a name that cannot name its pending record
            errors[name] = str(exc)
            continue
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue  # appeared meanwhile: kept, judged next run
            errors[name] = exc.strerror or str(exc)
            continue
        enrolled.append({"user": name, "path": path})
        handoff.append({"user": name, "secret": text.splitlines()[0], "digest": mfa.secret_digest(text)})
        members[name] = read_member(name, member.uid, member.gid, member.home)
    return enrolled, handoff, errors


def confirm_enrolments(module):
    """Clear the pending record of each enrolment whose URI the controller saved (same digest)."""
    confirmed = []
    try:
        wanted = [(mfa.checked_user(item["user"]), item["digest"]) for item in module.params["confirm"]]
    except ValueError as exc:
        module.fail_json(msg=str(exc), findings=[])
    markers = read_pending([name for name, _digest in wanted])
    for name, digest in wanted:
        if markers.get(name) == digest:
            if not module.check_mode:
                clear_pending(name)
            confirmed.append(name)
    module.exit_json(changed=bool(confirmed), confirmed=confirmed, findings=[])


def sshd_validate(module):
    """The write-time check of the drop-in (the composed candidate passed sshd -t before)."""
    return [module.get_bin_path("sshd", required=True, opt_dirs=["/usr/sbin"]), "-t", "-f", "%s"]


def reload_sshd(module):
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return "systemctl not found; sshd picks the drop-in up at its next start"
    rc, out, _err = module.run_command([systemctl, "is-active", "ssh.service"], environ_update={"LC_ALL": "C"})
    if out.strip() != "active":
        return "ssh.service is not running (socket activation reads the config per connection)"
    rc, out, err = module.run_command([systemctl, "reload", "ssh.service"], environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg="sshd reload failed: %s" % (err or out).strip(), findings=[])
    return "ssh.service reloaded"


def arm_guard(module, paths, timeout):
    """Arm the lockout guard: the host restores ``paths`` and reloads sshd unless the role
    confirms a fresh login within ``timeout`` seconds. None when the guard is off (0)."""
    if not timeout:
        return None
    try:
        return _guard.arm(module, paths, ["ssh.service"], timeout)
    except (_guard.GuardError, OSError) as exc:
        module.fail_json(msg="refused: the lockout guard could not be armed: %s. Nothing was changed." % exc, findings=[])


# --- main ---------------------------------------------------------------------------------------


def main():
    module = AnsibleModule(
        argument_spec=dict(
            groups=dict(type="list", elements="str", required=True),
            mode=dict(type="str", choices=["password", "publickey"], default="password"),
            deadline=dict(type="str", default=""),
            enroll=dict(type="bool", default=True),
            exemptions=dict(type="list", elements="dict", default=[], options=dict(
                user=dict(type="str", required=True),
                methods=dict(type="str", default="publickey"),
                **{"from": dict(type="list", elements="str", default=[])})),
            sudo=dict(type="bool", default=False),
            automation_account=dict(type="str", required=True),
            break_glass_accounts=dict(type="list", elements="str", default=[]),
            dropin=dict(type="path", default=mfa.DROPIN),
            access_file=dict(type="path", default=mfa.ACCESS_FILE),
            guard_timeout=dict(type="int", default=0),
            enrollment_dir=dict(type="str", default=""),
            issuer=dict(type="str", default="Yoroi"),
            confirm=dict(type="list", elements="dict", options=dict(
                user=dict(type="str", required=True), digest=dict(type="str", required=True, no_log=False))),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["confirm"] is not None:
        confirm_enrolments(module)
    try:
        deadline = mfa.parse_deadline(params["deadline"])
        exemptions = mfa.normalise_exemptions(params["exemptions"])
    except ValueError as exc:
        module.fail_json(msg=str(exc), findings=[])
    groups = params["groups"]
    if not groups:
        module.fail_json(msg="groups is empty: name at least one MFA group", findings=[])
    if not params["sudo"] and module.get_bin_path("sshd", opt_dirs=["/usr/sbin"]) is None:
        # No SSH server and no TOTP for sudo: there is no login this module protects.
        module.exit_json(changed=False, enrolled=[], findings=[
            finding(control, SKIPPED, expected, "no SSH server installed", "sshd not found; no SSH login to protect")
            for control, expected in sorted(mfa.CONTROLS.items())])
    today = datetime.date.today()
    use_nullok = mfa.nullok(deadline, today)
    automation = params["automation_account"]
    exempt_users = sorted(set(item["user"] for item in exemptions))

    # read
    group_db, passwd = read_accounts(groups)
    member_rows, missing_groups = mfa.members_of(groups, group_db, passwd)
    members = dict((name, read_member(name, *row)) for name, row in member_rows.items())
    stale_pending = mfa.mark_pending(members.values(), read_pending(members))

    # the automation account must never be asked for a code it does not have
    if automation in members and automation not in exempt_users:
        module.fail_json(
            msg="refused: the automation account %s is in an MFA group (%s) and has no exemption; it logs in with a key "
                "only and would be locked out. Add {user: %s, methods: publickey, from: [...]} to yoroi_mfa_exemptions "
                "or take it out of the group. Nothing was changed." % (automation, ", ".join(groups), automation),
            findings=[finding("MFA-004", ERROR, mfa.CONTROLS["MFA-004"], "%s in an MFA group without exemption" % automation,
                              "pre-check refused the change", subject=automation)])

    # plan
    to_enrol = mfa.enrolment_plan(members.values(), params["enroll"])
    dropin_text = mfa.render_dropin(groups, params["mode"], exemptions)
    access_text = mfa.render_access(exemptions)
    pam = {}
    for path, block, position, wanted in (
            (PAM_SSHD, mfa.sshd_block(groups, params["mode"], use_nullok, params["access_file"]),
             "before" if params["mode"] == "publickey" else "after", True),
            (PAM_SUDO, mfa.sudo_block(groups, sorted(set(exempt_users + [automation])), use_nullok), "after", params["sudo"])):
        before = read_text(path)
        if before is None:
            pam[path] = (None, None, "missing")
            continue
        after = mfa.place_block(before, block, position) if wanted else mfa.remove_block(before)
        pam[path] = (before, after, "" if after is not None else "no '@include common-auth' line to anchor the block")

    files = [(params["dropin"], dropin_text, None), (params["access_file"], access_text, None)]
    for path, (before, after, problem) in pam.items():
        if after is not None:
            files.append((path, after, None))
    changes = [(path, read_text(path), text) for path, text, _v in files if read_text(path) != text]

    findings = []
    totp_installed = find_pam_module(TOTP_MODULE) is not None
    pam_problems = []
    for path, (before, after, problem) in pam.items():
        if problem and (path == PAM_SSHD or params["sudo"]):
            pam_problems.append("%s: %s" % (path, problem))
        elif after is not None and after != before:
            missing = [m for m in missing_pam_parts(after) if not (m == TOTP_MODULE and not totp_installed and module.check_mode)]
            if missing:
                pam_problems.append("%s would name missing %s" % (path, ", ".join(missing)))

    # the candidate: sshd -t, the lockout check, and what members get
    connection = connection_address()
    candidate = Candidate(module, params["dropin"], dropin_text)
    try:
        valid, message = candidate.test()
        if not valid:
            module.fail_json(msg="refused: the candidate sshd configuration does not pass sshd -t: %s. Nothing was changed."
                             % message, findings=[])
        problems, safe_evidence = lockout_problems(candidate, params, exemptions, members, use_nullok, connection)
        if problems:
            module.fail_json(msg="refused, this would lock out: %s. Nothing was changed." % "; ".join(problems),
                             findings=[finding("MFA-001", ERROR, mfa.CONTROLS["MFA-001"], "; ".join(problems),
                                               "lockout pre-check on the candidate configuration (sshd -T)")])
        member_gaps = []
        for name in sorted(members):
            effective, error = candidate.effective(name, mfa.ELSEWHERE)
            ok, how = (False, error) if effective is None else mfa.requires_totp(effective)
            if not ok:
                member_gaps.append((name, how))
    finally:
        candidate.cleanup()

    if pam_problems and not module.check_mode:
        module.fail_json(msg="refused: %s. Nothing was changed." % "; ".join(pam_problems), findings=[])

    # act
    result = dict(changed=False, enrolled=[], nullok=use_nullok, members=sorted(members), backups=[])
    planned_files = [path for path, _before, _text in changes]
    if planned_files and not module.check_mode:
        guard = arm_guard(module, planned_files, params["guard_timeout"])
        if guard:
            result["guard_token"] = guard["token"]
            result["guard"] = guard
    for path, text, validate in files:
        if path == params["dropin"]:
            validate = sshd_validate(module)
        changed, backup = write_file(module, path, text, mode=0o644, validate=validate)
        if backup:
            result["backups"].append(backup)
    sshd_note = ""
    if params["dropin"] in planned_files and not module.check_mode:
        sshd_note = reload_sshd(module)

    enrol_errors = {}
    if to_enrol and not module.check_mode:
        result["enrolled"], result["handoff"], enrol_errors = enrol(members, to_enrol, stale_pending)
    enrolled_now = [item["user"] for item in result["enrolled"]]

    # findings
    expected1 = mfa.CONTROLS["MFA-001"]
    config_drift = bool([p for p in planned_files if p != PAM_SUDO])
    if missing_groups:
        findings.append(finding("MFA-001", FAIL, expected1, "group(s) %s do not exist" % ", ".join(missing_groups),
                                "nobody is required to use MFA through them; create the groups and add members"))
    if pam_problems:
        findings.append(finding("MFA-001", FAIL if module.check_mode else ERROR, expected1, "; ".join(pam_problems),
                                "libpam-google-authenticator %s" % ("installed" if totp_installed else
                                                                     "not installed yet (the role installs it)")))
    for name, how in member_gaps:
        findings.append(finding("MFA-001", FAIL, expected1, how,
                                "sshd -T -C user=%s on the composed configuration; another drop-in may win" % name,
                                subject=name))
    if not missing_groups and not member_gaps and not pam_problems:
        status = mfa.status_for(config_drift, module.check_mode)
        evidence = "sshd -T: %d member(s) need keyboard-interactive with the TOTP PAM line (%s mode)%s" % (
            len(members), params["mode"], "; " + sshd_note if sshd_note else "")
        if safe_evidence:
            evidence += "; still able to log in: " + "; ".join(safe_evidence)
        findings.append(finding("MFA-001", status, expected1,
                                "TOTP required for %s" % ", ".join(groups) if status != FAIL else "not configured",
                                evidence))
    findings += mfa.enrolment_findings(list(members.values()), set(enrolled_now if not module.check_mode else to_enrol),
                                       deadline, today, use_nullok, module.check_mode, params["enroll"], enrol_errors)
    findings += mfa.exemption_findings(exemptions, automation, params["break_glass_accounts"], members)
    expected5 = mfa.CONTROLS["MFA-005"]
    if params["sudo"]:
        status = mfa.status_for(PAM_SUDO in planned_files, module.check_mode)
        findings.append(finding("MFA-005", status, expected5, "sudo asks members for a code" if status != FAIL else "no TOTP for sudo",
                                "%s: TOTP block after common-auth; %s and exempt users skip it (NOPASSWD sudo never reaches it)"
                                % (PAM_SUDO, automation)))
    else:
        findings.append(finding("MFA-005", SKIPPED, expected5, "not enabled", "yoroi_mfa_sudo is false%s" % (
            "; the block written before is removed" if PAM_SUDO in planned_files else "")))

    result["changed"] = bool(planned_files) or bool(enrolled_now) or (module.check_mode and bool(to_enrol))
    result["findings"] = findings
    if module._diff and result["changed"]:
        diffs = [file_diff(path, before, text) for path, before, text in changes]
        if to_enrol:
            diffs.append({"before_header": "enrolment", "after_header": "enrolment", "before": "",
                          "after": "".join("%s: new %s (secret not shown)\n" % (n, mfa.SECRET_NAME) for n in to_enrol)})
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
