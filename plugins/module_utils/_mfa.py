# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOTP MFA for SSH (and optionally sudo): read -> plan, as pure functions.

Nothing here touches the system. The module reads the files and runs ``sshd -T``; these
functions render the sshd drop-in, the PAM blocks and the pam_access file, decide
``nullok`` from the deadline, parse a google_authenticator file's options (never its
secret), plan enrolment and judge whether an account keeps a way in.

How sshd reads the drop-in (checked with ``sshd -T -C`` on Debian 12, OpenSSH 9.2, and
Debian 13, OpenSSH 10.0): a ``Match`` block in a file pulled in by ``Include`` ends at the
end of that file, so the next drop-in and the rest of ``sshd_config`` are global again.
The first value obtained for a keyword wins, and Debian's ``Include`` is at the top of
``sshd_config``, so a drop-in beats the main file. Within matching ``Match`` blocks the
first one that sets a keyword wins: exemptions are written before the group blocks, and a
drop-in that sorts earlier (``00-yoroi.conf``) beats this one - which is why the effect is
always judged on the composed configuration with ``sshd -T``, never on our file alone.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import re

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    ERROR,
    FAIL,
    FIXED,
    PASS,
    SKIPPED,
    finding,
)

DROPIN = "/etc/ssh/sshd_config.d/50-yoroi-mfa.conf"
PAM_SSHD = "/etc/pam.d/sshd"
PAM_SUDO = "/etc/pam.d/sudo"
ACCESS_FILE = "/etc/security/yoroi-mfa-exempt.conf"
SECRET_NAME = ".google_authenticator"
# Enrolments whose otpauth URI the controller has not confirmed saved: one root-owned file
# per user, holding the SHA-256 of the secret (never the secret).
PENDING_DIR = "/var/lib/yoroi/mfa/pending"
OTPAUTH_SUFFIX = ".otpauth"

BEGIN = "# BEGIN yoroi-mfa (managed by yoroi.baseline.totp_mfa; edits are overwritten)"
END = "# END yoroi-mfa"

# The options every new enrolment gets, as google-authenticator -t -d -f -r 3 -R 30 -w 3 writes them.
ENROL_OPTIONS = ('" RATE_LIMIT 3 30', '" WINDOW_SIZE 3', '" DISALLOW_REUSE', '" TOTP_AUTH')
REQUIRED_OPTIONS = ("DISALLOW_REUSE", "RATE_LIMIT")
SCRATCH_CODES = 5
METHODS = ("publickey", "password", "keyboard-interactive")
# A documentation address (RFC 5737): only ever a string handed to `sshd -T -C`, to ask
# what an MFA member gets from anywhere that no exemption covers.
ELSEWHERE = "192.0.2.1"

CONTROLS = {
    "MFA-001": "SSH logins of the MFA groups require a TOTP code",
    "MFA-002": "every MFA group member is enrolled (or within the grace period)",
    "MFA-003": "DISALLOW_REUSE and RATE_LIMIT in every enrolled user's file",
    "MFA-004": "exemptions are only those configured",
    "MFA-005": "sudo asks the MFA groups for a TOTP code",
}


# --- dates ------------------------------------------------------------------------------------


def parse_deadline(text):
    """A date from ``YYYY-MM-DD``; None for an empty value (no grace period)."""
    if text in (None, ""):
        return None
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        raise ValueError("deadline %r is not a date in the form YYYY-MM-DD" % (text,))
    return datetime.date(*[int(part) for part in text.split("-")])


def nullok(deadline, today):
    """Unenrolled members may still log in (pam_google_authenticator nullok) before the deadline.

    The deadline takes effect at the first run on or after it: the PAM line is rewritten
    then, so audits and applies must be scheduled around it.
    """
    return deadline is not None and today < deadline


# --- the google_authenticator file --------------------------------------------------------------


def parse_secret_file(text):
    """The options of a google_authenticator file, never its secret.

    Returns {"options": {NAME: first argument words}, "scratch_codes": n, "has_secret": bool}.
    The first line (the base32 secret) is only checked for shape and then dropped.
    """
    lines = text.splitlines()
    has_secret = bool(lines) and re.match(r"^[A-Z2-7]{16,}=*$", lines[0].strip() or "-") is not None
    options = {}
    scratch = 0
    for line in lines[1:]:
        if line.startswith('" '):
            words = line[2:].split()
            if words:
                # RATE_LIMIT keeps login timestamps after its two settings: keep the settings only
                options[words[0]] = " ".join(words[1:3])
        elif re.match(r"^\d{8}$", line.strip()):
            scratch += 1
    return {"options": options, "scratch_codes": scratch, "has_secret": has_secret}


def new_secret_text(random_bytes, scratch_numbers):
    """The content of a new google_authenticator file.

    ``random_bytes``: 20 bytes from the OS CSPRNG (the secret); ``scratch_numbers``:
    integers below 10**8 (emergency codes). The result is secret: callers never log it.
    """
    if len(random_bytes) < 20:
        raise ValueError("a TOTP secret needs at least 20 random bytes")
    secret = base64.b32encode(random_bytes).decode("ascii").rstrip("=")
    codes = ["%08d" % (number % 100000000) for number in scratch_numbers]
    return "\n".join([secret] + list(ENROL_OPTIONS) + codes) + "\n"


# --- members and enrolment ----------------------------------------------------------------------


class Member(object):
    """An MFA group member and what its secret file looks like (no secret kept)."""

    __slots__ = ("name", "uid", "gid", "home", "state", "detail", "parsed", "digest")

    def __init__(self, name, uid, gid, home, state="absent", detail="", parsed=None, digest=None):
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
        # absent | ok | unusable (not a regular file, wrong owner or mode) | no_home
        # | unsafe_home (a symlink, or owned by someone else: never written as root)
        # | pending (created by us, its URI never confirmed saved on the controller)
        self.state = state
        self.detail = detail
        self.parsed = parsed
        self.digest = digest  # secret_digest() of the file, to match a pending enrolment


def secret_state(is_regular, owner_uid, mode, user_uid):
    """Whether pam_google_authenticator would accept the file (its own checks).

    It refuses anything but a regular file owned by the user with permissions within
    0600 (its default ``allowed_perm``); the file it rewrites after each login is 0400.
    """
    if not is_regular:
        return "unusable", "not a regular file"
    if owner_uid != user_uid:
        return "unusable", "owned by uid %d, not the user" % owner_uid
    if mode & 0o7777 & ~0o600:
        return "unusable", "mode %04o is more permissive than 0600" % (mode & 0o7777)
    return "ok", "mode %04o" % (mode & 0o7777)


def members_of(groups, group_db, passwd):
    """Members of ``groups``: supplementary members and users whose primary group it is.

    ``group_db``: {group: (gid, [members])}; ``passwd``: [(name, uid, gid, home)].
    Returns ({name: (uid, gid, home)}, missing_groups).
    """
    by_name = dict((row[0], row) for row in passwd)
    found = {}
    missing = []
    for group in groups:
        if group not in group_db:
            missing.append(group)
            continue
        gid, names = group_db[group]
        for name in names:
            if name in by_name:
                found[name] = by_name[name][1:]
        for row in passwd:
            if row[2] == gid:
                found[row[0]] = row[1:]
    return found, missing


def enrolment_plan(members, enroll):
    """The members to enrol: those with no file at all, and those whose enrolment is pending
    (nobody holds that secret). Any other existing file is never touched."""
    if not enroll:
        return []
    return sorted(m.name for m in members if m.state in ("absent", "pending"))


# --- enrolment hand-off: names from hosts, pending enrolments ------------------------------------

# A user name as it may become one path component: no separator, no leading dot or dash,
# nothing a shell or a URI would read differently. Debian's NAME_REGEX is stricter; the
# extra characters allow directory users (user@domain, machine accounts ending in $).
USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\$?$")
HOST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}$")
BASE32 = re.compile(r"^[A-Z2-7]{16,}$")


def checked_user(name):
    """``name`` when it can safely become a file name, else ValueError."""
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise ValueError("refused user name %r: not a plain account name (letters, digits, . _ - @)" % (name,))
    return name


def checked_host(name):
    if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
        raise ValueError("refused host name %r: not a plain inventory host name (letters, digits, . _ - :)" % (name,))
    return name


def otpauth_path(directory, host, user):
    """``<directory>/<host>/<user>.otpauth``, with both names checked and the resolved host
    directory inside ``directory`` (one that is a link out is refused). The file name is
    one component; the writer replaces it and never follows a link there."""
    path = os.path.join(directory, checked_host(host), checked_user(user) + OTPAUTH_SUFFIX)
    root = os.path.realpath(directory)
    if os.path.commonpath([root, os.path.realpath(os.path.dirname(path))]) != root:
        raise ValueError("refused %s: it resolves outside %s" % (path, directory))
    return path


def otpauth_uri(issuer, user, host, secret):
    """The otpauth URI an authenticator app reads (a QR code of it, or typed in)."""
    from urllib.parse import quote

    if not BASE32.fullmatch(secret or ""):
        raise ValueError("refused to hand off a secret that is not base32: the host returned something else")
    label = quote(issuer, safe="") + ":" + quote("%s@%s" % (user, host), safe="")
    return "otpauth://totp/%s?secret=%s&issuer=%s&algorithm=SHA1&digits=6&period=30" % (
        label, secret, quote(issuer, safe=""))


def secret_digest(text):
    """SHA-256 of a google_authenticator file's secret line: the enrolment's identity.

    Only the first line counts: pam_google_authenticator rewrites the option lines after
    each login, the secret stays.
    """
    lines = text.splitlines()
    return hashlib.sha256((lines[0].strip() if lines else "").encode("utf-8")).hexdigest()


def mark_pending(members, markers):
    """Mark members whose file is the one a pending enrolment created.

    ``markers``: {user: digest} from PENDING_DIR. A marker whose user now has another
    readable file (they replaced it with their own) is stale: returned, to be removed.
    """
    stale = []
    for member in members:
        marker = markers.get(member.name)
        if not marker or member.digest is None:
            continue
        if member.digest == marker:
            member.state = "pending"
            member.detail = "its otpauth URI was never confirmed saved on the controller"
        else:
            stale.append(member.name)
    return sorted(stale)


def home_problem(is_directory, owner_uid, user_uid):
    """Why a home directory must not be written as root (None when it may be).

    The caller opened it without following a link (a symlink fails there already).
    """
    if not is_directory:
        return "not a directory (or a symlink)"
    if owner_uid not in (user_uid, 0):
        return "owned by uid %d, neither the user nor root" % owner_uid
    return None


# --- exemptions ---------------------------------------------------------------------------------


def normalise_exemptions(exemptions):
    """Check and normalise exemptions: [{user, methods, from}] with methods a comma list."""
    result = []
    for item in exemptions:
        methods = item.get("methods") or "publickey"
        for method in methods.split(","):
            if method not in METHODS:
                raise ValueError("exemption for %s: unknown method %r (use %s)" % (item["user"], method, ", ".join(METHODS)))
        sources = list(item.get("from") or [])
        for source in sources:
            try:
                ipaddress.ip_network(source, strict=False)
            except ValueError:
                raise ValueError("exemption for %s: %r is not an address or network" % (item["user"], source))
        result.append({"user": item["user"], "methods": methods, "from": sources})
    return result


def exempt_at(exemptions, user, address):
    """Is ``user`` exempt from the code when it comes from ``address``?"""
    for item in exemptions:
        if item["user"] != user:
            continue
        if not item["from"]:
            return True
        for source in item["from"]:
            if ipaddress.ip_address(address) in ipaddress.ip_network(source, strict=False):
                return True
    return False


def probe_addresses(exemption_sources, connection_address=None):
    """Addresses to ask ``sshd -T`` about: the live connection's, then one per exempt network."""
    addresses = []
    if connection_address:
        addresses.append(connection_address)
    for source in exemption_sources:
        address = str(ipaddress.ip_network(source, strict=False).network_address)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        addresses.append("127.0.0.1")
    return addresses


# --- rendering ----------------------------------------------------------------------------------


def render_dropin(groups, mode, exemptions):
    """The sshd drop-in: exemptions first (first match wins), then one block for the groups."""
    out = [
        "# Managed by yoroi.baseline.totp_mfa (controls MFA-001, MFA-004); edits are overwritten.",
        "# Only Match blocks: each ends at the end of this file, and sshd takes the first",
        "# value it meets, so exemptions come before the MFA groups.",
    ]
    for item in exemptions:
        criteria = "User %s" % item["user"]
        if item["from"]:
            criteria += " Address %s" % ",".join(item["from"])
        out.append("")
        out.append("# exemption (MFA-004)")
        out.append("Match %s" % criteria)
        methods = item["methods"].split(",")
        if "publickey" in methods:
            out.append("    PubkeyAuthentication yes")
        if "password" in methods:
            out.append("    PasswordAuthentication yes")
        if "keyboard-interactive" in methods:
            out.append("    KbdInteractiveAuthentication yes")
        out.append("    AuthenticationMethods %s" % item["methods"])
    if groups:
        out.append("")
        out.append("# MFA groups (MFA-001), mode %s" % mode)
        out.append("Match Group %s" % ",".join(groups))
        out.append("    KbdInteractiveAuthentication yes")
        if mode == "publickey":
            out.append("    PubkeyAuthentication yes")
            out.append("    AuthenticationMethods publickey,keyboard-interactive")
        else:
            out.append("    AuthenticationMethods keyboard-interactive")
    return "\n".join(out) + "\n"


def render_access(exemptions):
    """pam_access rules: an exempt user from an exempt address skips the TOTP line."""
    out = ["# Managed by yoroi.baseline.totp_mfa: who skips the TOTP prompt, from where (MFA-004)."]
    for item in exemptions:
        out.append("+:%s:%s" % (item["user"], " ".join(item["from"]) if item["from"] else "ALL"))
    out.append("-:ALL:ALL")
    return "\n".join(out) + "\n"


def _notingroup(groups):
    return " ".join("user notingroup %s" % group for group in groups)


def totp_line(use_nullok, jump=None):
    options = " nullok" if use_nullok else ""
    if jump:
        # publickey mode: a good code ends the stack, no code file (nullok) falls through to the password
        return "auth [success=done ignore=ignore default=die] pam_google_authenticator.so%s" % options
    return "auth required pam_google_authenticator.so%s" % options


def sshd_block(groups, mode, use_nullok, access_file=ACCESS_FILE):
    """The lines of the TOTP block for /etc/pam.d/sshd (without the markers)."""
    return [
        # non-members skip the block; exempt users from exempt addresses skip the code
        "auth [success=2 default=ignore] pam_succeed_if.so quiet %s" % _notingroup(groups),
        "auth [success=1 default=ignore] pam_access.so accessfile=%s" % access_file,
        totp_line(use_nullok, jump=(mode == "publickey")),
    ]


def sudo_block(groups, exempt_users, use_nullok):
    lines = ["auth [success=%d default=ignore] pam_succeed_if.so quiet %s" % (2 if exempt_users else 1, _notingroup(groups))]
    if exempt_users:
        lines.append("auth [success=1 default=ignore] pam_succeed_if.so quiet user in %s" % ":".join(exempt_users))
    lines.append(totp_line(use_nullok))
    return lines


def strip_block(text):
    """``text`` without our block; (text, had_block)."""
    lines = text.splitlines()
    out, inside, had = [], False, False
    for line in lines:
        if line.strip() == BEGIN:
            inside, had = True, True
            continue
        if inside:
            if line.strip() == END:
                inside = False
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if out else ""), had


def place_block(text, block, position):
    """Insert ``block`` between markers, ``before`` or ``after`` the first
    ``@include common-auth`` (a second run finds and replaces it). None when the file has
    no such line (a hand-made stack we do not guess about)."""
    base, _had = strip_block(text)
    lines = base.splitlines()
    for index, line in enumerate(lines):
        words = line.split()
        if len(words) >= 2 and words[0] == "@include" and words[1] == "common-auth":
            wrapped = [BEGIN] + list(block) + [END]
            at = index if position == "before" else index + 1
            return "\n".join(lines[:at] + wrapped + lines[at:]) + "\n"
    return None


def remove_block(text):
    return strip_block(text)[0]


def pam_modules_named(text):
    """Module file names a PAM service file uses, and the files it @includes."""
    modules, includes = set(), set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "@include" and len(words) > 1:
            includes.add(words[1])
            continue
        # type control module [args]; control may be a bracketed list with spaces
        rest = line[len(words[0]):].strip().lstrip("-")
        if rest.startswith("["):
            rest = rest[rest.index("]") + 1:].strip()
        else:
            rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        if rest:
            modules.add(rest.split()[0].rsplit("/", 1)[-1])
    return modules, includes


# --- judging the candidate (sshd -T -C, read by the SSH access engine) ---------------------


def requires_totp(effective):
    """Every way in passes through keyboard-interactive (where PAM asks the code).

    ``effective``: ``sshd -T -C`` as _access.parse_effective reads it.
    """
    if access.value(effective, "usepam") != "yes":
        return False, "UsePAM is off: the TOTP PAM line is never reached"
    if access.value(effective, "kbdinteractiveauthentication") != "yes":
        return False, "KbdInteractiveAuthentication is off"
    alternatives = access.method_lists(effective) or [["any"]]
    weak = [",".join(alt) for alt in alternatives if "keyboard-interactive" not in alt]
    if weak:
        return False, "AuthenticationMethods allows %s without keyboard-interactive" % " ".join(weak)
    return True, "AuthenticationMethods %s" % access.value(effective, "authenticationmethods")


def kbdint_ok(is_member, exempt_here, mode, enrolled, use_nullok, has_password):
    """Can the keyboard-interactive exchange succeed for this account (the PAM stack we write)?"""
    needs_code = is_member and not exempt_here
    if needs_code and not (enrolled or use_nullok):
        return False
    if needs_code and mode == "publickey" and enrolled:
        return True  # the code alone ends the stack
    return has_password


# --- findings -----------------------------------------------------------------------------------


# Member states where a file or home exists but does not count as enrolled:
# (actual, with the home and the detail filled in; evidence). Reported, never rewritten.
UNCOUNTED = {
    "pending": ("enrolment pending (home %s): %s",
                "nobody holds this secret; enrolment is off (yoroi_mfa_enroll), so it is not replaced"),
    "unsafe_home": ("not enrolled: home directory %s refused: %s",
                    "a home that is a symlink or belongs to someone else is never written as root"),
    "unusable": ("secret file in %s unusable: %s",
                 "pam_google_authenticator refuses it; fix owner/mode, the secret is not rewritten"),
}


def enrolment_findings(members, enrolled, deadline, today, use_nullok, check_mode, enroll, errors=None):
    """MFA-002 (enrolment) and MFA-003 (file options) for every member.

    ``errors``: {user: reason} for enrolments that failed on the host in this run.
    """
    findings = []
    errors = errors or {}
    for member in sorted(members, key=lambda m: m.name):
        expected2 = CONTROLS["MFA-002"]
        if member.name in errors:
            findings.append(finding("MFA-002", ERROR, expected2, "enrolment failed: %s" % errors[member.name],
                                    "no secret was handed off; the next run tries again", subject=member.name))
            continue
        if member.name in enrolled:
            pending = member.state == "pending"
            status = FAIL if check_mode else FIXED
            findings.append(finding("MFA-002", status, expected2,
                                    ("enrolment pending: %s" % member.detail if pending else "not enrolled")
                                    if check_mode else "enrolled",
                                    ("would replace %s (nobody holds that secret) and hand the new one off" % SECRET_NAME
                                     if pending else "would create %s (mode 0400)" % SECRET_NAME) if check_mode else
                                    "new secret in ~%s/%s (mode 0400), handed to the controller" % (
                                        member.name, SECRET_NAME),
                                    subject=member.name))
            continue
        if member.state in UNCOUNTED:
            actual, evidence = UNCOUNTED[member.state]
            findings.append(finding("MFA-002", FAIL, expected2, actual % (member.home, member.detail), evidence,
                                    subject=member.name))
            continue
        if member.state in ("absent", "no_home"):
            if use_nullok:
                actual = "not enrolled; grace until %s" % deadline.isoformat()
                evidence = "nullok until the deadline: password alone still works"
            else:
                since = (" since %s" % deadline.isoformat()) if deadline else ""
                actual = "not enrolled; MFA required%s, SSH login refused" % since
                evidence = "no nullok: the TOTP line fails without a secret file"
            if member.state == "no_home":
                evidence += "; home directory %s missing" % member.home
            elif not enroll:
                evidence += "; enrolment is off (yoroi_mfa_enroll)"
            findings.append(finding("MFA-002", FAIL, expected2, actual, evidence, subject=member.name))
            continue
        findings.append(finding("MFA-002", PASS, expected2, "enrolled", "%s %s" % (SECRET_NAME, member.detail),
                                subject=member.name))
        parsed = member.parsed or {"options": {}}
        missing = [name for name in REQUIRED_OPTIONS if name not in parsed["options"]]
        expected3 = CONTROLS["MFA-003"]
        if missing:
            findings.append(finding("MFA-003", FAIL, expected3, "missing: %s" % ", ".join(missing),
                                    "reported only: the user's file is never rewritten (re-enrol to fix)",
                                    subject=member.name))
        else:
            findings.append(finding("MFA-003", PASS, expected3,
                                    "DISALLOW_REUSE, RATE_LIMIT %s" % parsed["options"]["RATE_LIMIT"],
                                    "options read from %s; secret not read into the result" % SECRET_NAME,
                                    subject=member.name))
    if not members:
        findings.append(finding("MFA-002", PASS, CONTROLS["MFA-002"], "no members", "the MFA groups have no members"))
    return findings


def exemption_findings(exemptions, automation_account, break_glass, members):
    findings = []
    for item in exemptions:
        role = ("automation account" if item["user"] == automation_account
                else "break-glass account" if item["user"] in break_glass else "other account")
        where = ",".join(item["from"]) if item["from"] else "any address"
        findings.append(finding(
            "MFA-004", SKIPPED, CONTROLS["MFA-004"],
            "%s exempt from TOTP from %s with %s" % (item["user"], where, item["methods"]),
            "%s%s; sshd Match User %s%s: AuthenticationMethods %s; pam_access skip in %s" % (
                role, ", member of an MFA group" if item["user"] in members else ", not an MFA member",
                item["user"], (" Address " + where) if item["from"] else "", item["methods"], ACCESS_FILE),
            subject=item["user"]))
    if not exemptions:
        findings.append(finding("MFA-004", PASS, CONTROLS["MFA-004"], "no exemptions", "yoroi_mfa_exemptions is empty"))
    return findings
