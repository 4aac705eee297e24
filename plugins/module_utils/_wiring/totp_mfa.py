# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.totp_mfa: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/totp_mfa.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import datetime
import errno
import grp
import os
import pwd
import secrets
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils import _mfa as mfa
from ansible_collections.yoroi.baseline.plugins.module_utils._files import file_diff, read_text, write_file
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, FAIL, SKIPPED, finding, fold

# Path constants: tests point them at a tmp dir.
SSHD_CONFIG = access.SSHD_CONFIG
PAM_SSHD = mfa.PAM_SSHD
PAM_SUDO = mfa.PAM_SUDO
SHADOW = hostfiles.SHADOW
GROUP = hostfiles.GROUP
PAM_MODULE_DIRS = hostfiles.PAM_MODULE_DIRS
TOTP_MODULE = "pam_google_authenticator.so"
PENDING_DIR = mfa.PENDING_DIR
# The SSH access engine's staged candidate and client lookup (tests replace them).
Candidate = access.Candidate
client_connections = access.client_connections


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


def missing_pam_parts(text):
    modules, includes = mfa.pam_modules_named(text)
    missing = sorted(m for m in modules if hostfiles.find_pam_module(m, PAM_MODULE_DIRS) is None)
    missing += sorted("@include %s" % i for i in includes if not os.path.exists(os.path.join(os.path.dirname(PAM_SSHD), i)))
    return missing


# --- who must keep SSH access -----------------------------------------------------------------


def access_accounts(concern, params, exemptions, members, use_nullok, connections):
    """The automation and break-glass accounts as the SSH access engine sees them.

    The automation logs in with a key only and must get in from every address it uses
    (the live connection and its exempt networks); a break-glass account needs one way
    in, with a key, its password, or the keyboard-interactive exchange of the PAM stack
    this module writes (a code when it is a member and not exempt from that address).
    """
    shadow = hostfiles.parse_shadow(read_text(SHADOW, "") or "")
    group_rows = hostfiles.parse_group(read_text(GROUP, "") or "")
    accounts = []
    for name, role in concern.must_keep_access():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if role == "automation":
                concern.refuse("the automation account %s does not exist" % name)
            continue
        sources = [s for item in exemptions if item["user"] == name for s in item["from"]]
        conns = list(connections)
        for address in (mfa.probe_addresses(sources) if sources else []):
            if address not in [c["addr"] for c in conns]:
                conns.append({"addr": address})
        groups = hostfiles.account_groups(name, entry.pw_gid, group_rows)
        shell = entry.pw_shell
        if role == "automation":
            accounts.append(access.account(name, entry.pw_uid, groups, shell, access.shell_ok(shell), key=None,
                                           password=False, kbdint=False, need="every", role=role,
                                           home=entry.pw_dir, connections=conns, methods=["publickey"]))
            continue
        row = shadow.get(name)
        password = row is not None and hostfiles.password_usable(row.password)
        enrolled = name in members and members[name].state == "ok"
        acct = access.account(name, entry.pw_uid, groups, shell, access.shell_ok(shell), key=None, password=password,
                              need="any", role=role, home=entry.pw_dir, connections=conns)
        acct["at"] = dict((conn["addr"], {"kbdint": mfa.kbdint_ok(name in members, mfa.exempt_at(exemptions, name, conn["addr"]),
                                                                  params["mode"], enrolled, use_nullok, password)})
                          for conn in conns)
        accounts.append(acct)
    return accounts


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
        raise RuntimeError("sshd reload failed: %s" % (err or out).strip())
    return "ssh.service reloaded"


# --- main ---------------------------------------------------------------------------------------


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            groups=dict(type="list", elements="str", required=True),
            mode=dict(type="str", choices=["password", "publickey"], default="password"),
            deadline=dict(type="str", default=""),
            enroll=dict(type="bool", default=True),
            exemptions=dict(type="list", elements="dict", default=[], options=dict(
                user=dict(type="str", required=True),
                methods=dict(type="str", default="publickey"),
                **{"from": dict(type="list", elements="str", default=[])})),
            sudo=dict(type="bool", default=False),
            dropin=dict(type="path", default=mfa.DROPIN),
            access_file=dict(type="path", default=mfa.ACCESS_FILE),
            enrollment_dir=dict(type="str", default=""),
            issuer=dict(type="str", default="Yoroi"),
            confirm=dict(type="list", elements="dict", options=dict(
                user=dict(type="str", required=True), digest=dict(type="str", required=True, no_log=False))),
        ), guard_timeout=0, protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "totp_mfa", mfa.CONTROLS, change="MFA")
    if params["confirm"] is not None:
        with concern.changing(needed=not module.check_mode):
            confirm_enrolments(module)
    try:
        deadline = mfa.parse_deadline(params["deadline"])
        exemptions = mfa.normalise_exemptions(params["exemptions"])
    except ValueError as exc:
        concern.refuse(str(exc))
    groups = params["groups"]
    if not groups:
        concern.refuse("groups is empty: name at least one MFA group")
    sshd_bin = module.get_bin_path("sshd", opt_dirs=["/usr/sbin"])
    if not params["sudo"] and sshd_bin is None:
        # No SSH server and no TOTP for sudo: there is no login this module protects.
        concern.exit([finding(control, SKIPPED, expected, "no SSH server installed", "sshd not found; no SSH login to protect")
                      for control, expected in sorted(mfa.CONTROLS.items())], False, enrolled=[])
    if not concern.automation:
        concern.refuse("no automation account: set automation_account (the run has no SUDO_USER either)")
    concern.install(params["packages"], params["apt_cache_valid_time"])
    today = datetime.date.today()
    use_nullok = mfa.nullok(deadline, today)
    automation = concern.automation
    exempt_users = sorted(set(item["user"] for item in exemptions))

    # read
    group_db, passwd = read_accounts(groups)
    member_rows, missing_groups = mfa.members_of(groups, group_db, passwd)
    members = dict((name, read_member(name, *row)) for name, row in member_rows.items())
    stale_pending = mfa.mark_pending(members.values(), read_pending(members))

    # the automation account must never be asked for a code it does not have
    for name in automation:
        if name in members and name not in exempt_users:
            concern.refuse(
                "the automation account %s is in an MFA group (%s) and has no exemption; it logs in with a key "
                "only and would be locked out. Add {user: %s, methods: publickey, from: [...]} to yoroi_mfa_exemptions "
                "or take it out of the group" % (name, ", ".join(groups), name),
                actual={"MFA-004": "%s in an MFA group without exemption" % name})

    # plan
    to_enrol = mfa.enrolment_plan(members.values(), params["enroll"])
    dropin_text = mfa.render_dropin(groups, params["mode"], exemptions)
    access_text = mfa.render_access(exemptions)
    pam = {}
    for path, block, position, wanted in (
            (PAM_SSHD, mfa.sshd_block(groups, params["mode"], use_nullok, params["access_file"]),
             "before" if params["mode"] == "publickey" else "after", True),
            (PAM_SUDO, mfa.sudo_block(groups, sorted(set(exempt_users + automation)), use_nullok), "after", params["sudo"])):
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
    totp_installed = hostfiles.find_pam_module(TOTP_MODULE, PAM_MODULE_DIRS) is not None
    pam_problems = []
    for path, (before, after, problem) in pam.items():
        if problem and (path == PAM_SSHD or params["sudo"]):
            pam_problems.append("%s: %s" % (path, problem))
        elif after is not None and after != before:
            missing = [m for m in missing_pam_parts(after) if not (m == TOTP_MODULE and not totp_installed and module.check_mode)]
            if missing:
                pam_problems.append("%s would name missing %s" % (path, ", ".join(missing)))

    # the candidate: sshd -t, who would lose SSH access (the access engine), what members get
    candidate = Candidate(module, sshd_bin or "sshd", params["dropin"], dropin_text, main_path=SSHD_CONFIG)
    try:
        valid, message = candidate.test()
        if not valid:
            concern.refuse("the candidate sshd configuration does not pass sshd -t: %s" % message)
        live, _error = candidate.effective()
        connections = client_connections(access.words(live, "port"))
        results, errors = access.who_loses_access(
            candidate, access_accounts(concern, params, exemptions, members, use_nullok, connections), connections)
        problems = ["%s account %s: %s" % (answer["role"], name, problem)
                    for name, answer in results.items() for problem in answer["problems"]] + errors
        if problems:
            concern.refuse("the change would lock out %s" % "; ".join(problems),
                           actual={"MFA-001": "; ".join(problems)})
        safe_evidence = ["%s from %s: %s" % (name, row["addr"], row["how"])
                         for name, answer in results.items() for row in answer["by_address"] if not row["problems"]]
        member_gaps = []
        for name in sorted(members):
            effective, error = candidate.effective(name, mfa.ELSEWHERE)
            ok, how = (False, error) if error else mfa.requires_totp(effective)
            if not ok:
                member_gaps.append((name, how))
    finally:
        candidate.cleanup()

    if pam_problems and not module.check_mode:
        concern.refuse("; ".join(pam_problems))

    # act, under the host lock when something changes
    result = dict(enrolled=[], nullok=use_nullok, members=sorted(members), backups=[])
    planned_files = [path for path, _before, _text in changes]
    with concern.changing(needed=bool(planned_files or to_enrol)):
        result.update(concern.arm_guard(planned_files, ["ssh.service"], params["guard_timeout"]))
        sshd_note = write_files(module, concern, result, files, planned_files, params["dropin"])
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
                                                                    "not installed yet (installed when applying)")))
    for name, how in member_gaps:
        findings.append(finding("MFA-001", FAIL, expected1, how,
                                "sshd -T -C user=%s on the composed configuration; another drop-in may win" % name,
                                subject=name))
    if not missing_groups and not member_gaps and not pam_problems:
        status = fold(not config_drift, True, module.check_mode)
        evidence = "sshd -T: %d member(s) need keyboard-interactive with the TOTP PAM line (%s mode)%s" % (
            len(members), params["mode"], "; " + sshd_note if sshd_note else "")
        if safe_evidence:
            evidence += "; still able to log in: " + "; ".join(safe_evidence)
        findings.append(finding("MFA-001", status, expected1,
                                "TOTP required for %s" % ", ".join(groups) if status != FAIL else "not configured",
                                evidence))
    findings += mfa.enrolment_findings(list(members.values()), set(enrolled_now if not module.check_mode else to_enrol),
                                       deadline, today, use_nullok, module.check_mode, params["enroll"], enrol_errors)
    findings += mfa.exemption_findings(exemptions, automation[0], concern.break_glass, members)
    expected5 = mfa.CONTROLS["MFA-005"]
    if params["sudo"]:
        status = fold(PAM_SUDO not in planned_files, True, module.check_mode)
        findings.append(finding("MFA-005", status, expected5, "sudo asks members for a code" if status != FAIL else "no TOTP for sudo",
                                "%s: TOTP block after common-auth; %s and exempt users skip it (NOPASSWD sudo never reaches it)"
                                % (PAM_SUDO, ", ".join(automation))))
    else:
        findings.append(finding("MFA-005", SKIPPED, expected5, "not enabled", "yoroi_mfa_sudo is false%s" % (
            "; the block written before is removed" if PAM_SUDO in planned_files else "")))

    changed = bool(planned_files) or bool(enrolled_now) or (module.check_mode and bool(to_enrol))
    diffs = [file_diff(path, before, text) for path, before, text in changes]
    if to_enrol:
        diffs.append({"before_header": "enrolment", "after_header": "enrolment", "before": "",
                      "after": "".join("%s: new %s (secret not shown)\n" % (n, mfa.SECRET_NAME) for n in to_enrol)})
    concern.exit(findings, changed, diffs if changed else None, **result)


def write_files(module, concern, result, files, planned_files, dropin):
    """Write the drop-in, the access file and the PAM files; reload sshd when its drop-in changed."""
    for path, text, validate in files:
        if path == dropin:
            validate = sshd_validate(module)
        _changed, backup = write_file(module, path, text, mode=0o644, validate=validate)
        if backup:
            result["backups"].append(backup)
    if dropin not in planned_files or module.check_mode:
        return ""
    try:
        return reload_sshd(module)
    except RuntimeError as exc:
        concern.fail(str(exc), **result)
