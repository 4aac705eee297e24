# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stale, unsafe and unneeded accounts: read -> plan, as pure functions.

Nothing here touches the system: the module reads the files, these functions parse them
and decide, and the module carries out the plan. The login-record formats are the ones
Debian writes:

* ``/var/log/lastlog``: ``struct lastlog`` indexed by UID (int32 time, char[32] line,
  char[256] host), 292 bytes a record (bookworm and older).
* ``/var/log/wtmp``: ``struct utmp``, 384 bytes a record on x86_64 and arm64.
* lastlog2 (trixie and later): an sqlite database, table ``Lastlog2`` with ``Name`` and
  ``Time``.
* wtmpdb (trixie and later): an sqlite database, table ``wtmp`` with ``User`` and
  ``Login`` in microseconds.
"""

from __future__ import annotations

import posixpath
import re
import struct

# ERROR and FIXED are re-exported: the accounts module and its tests read them from here.
# pylint: disable-next=unused-import
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (  # noqa: F401 (re-exported)
    ERROR,
    FAIL,
    FIXED,
    PASS,
    SKIPPED,
    finding,
    fold,
)
# The account files are parsed by the shared host-file parsers; the names stay importable
# from here for the accounts concern.
# pylint: disable-next=unused-import
from ansible_collections.yoroi.baseline.plugins.module_utils._hostfiles import (  # noqa: F401
    Account,
    join_shadow,
    parse_login_defs,
    parse_passwd,
    parse_shadow,
    parse_shells,
    uid_range,
)

DAY = 86400

LASTLOG_RECORD = struct.Struct("<i32s256s")
UTMP_RECORD = struct.Struct("<hhi32s4s32s256shhiii4i20s")
UTMP_USER_PROCESS = 7

# Shells that do not give an interactive login even when listed in /etc/shells.
NO_LOGIN_SHELLS = frozenset(
    ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", ""]
)

# control id, the finding kind it covers, and the actions a policy may name for it
CONTROLS = {
    "stale": "ACC-001",
    "never_used": "ACC-002",
    "empty_password": "ACC-003",
    "extra_uid0": "ACC-004",
    "system_shell": "ACC-005",
}
ACTIONS = {
    "stale": ("report", "lock", "expire", "remove"),
    "never_used": ("report", "lock", "expire", "remove"),
    "empty_password": ("report", "lock", "expire", "remove"),
    # Removing a UID 0 account is refused: userdel sees root's processes as its own, and
    # its home is often /root.
    "extra_uid0": ("report", "lock", "expire"),
    "system_shell": ("report", "nologin"),
}
DEFAULT_POLICY = {
    "stale": "lock",
    "never_used": "lock",
    "empty_password": "lock",
    "extra_uid0": "lock",
    "system_shell": "nologin",
}
EXPECTED = {
    "stale": "no login within {days} days, or the account is disabled",
    "never_used": "no never-used account older than {days} days, or it is disabled",
    "empty_password": "a password or a locked password field",
    "extra_uid0": "UID 0 for root only",
    "system_shell": "a non-login shell for system accounts",
}


def _cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _lastlog_entry(record):
    when, line, host = LASTLOG_RECORD.unpack(record)
    if when > 0:
        return (when, "lastlog: %s from %s" % (_cstr(line) or "?", _cstr(host) or "local"))
    return None


def parse_lastlog(data, uids):
    """Last login time by UID from a lastlog file's bytes, for the UIDs asked."""
    logins = {}
    size = LASTLOG_RECORD.size
    for uid in uids:
        offset = uid * size
        if offset + size > len(data):
            continue
        entry = _lastlog_entry(data[offset:offset + size])
        if entry:
            logins[uid] = entry
    return logins


def read_lastlog(handle, uids, file_size):
    """Last login time by UID from an open lastlog file, one seek and one record per UID.

    lastlog is sparse and indexed by UID: a single login of a directory user with a UID
    near 1.5e9 makes it hundreds of GB long. Only the records of the accounts evaluated
    are read, so memory and time do not grow with the file's apparent size.
    """
    logins = {}
    size = LASTLOG_RECORD.size
    for uid in sorted(set(uids)):
        offset = uid * size
        if uid < 0 or offset + size > file_size:
            continue
        handle.seek(offset)
        record = handle.read(size)
        if len(record) != size:
            continue
        entry = _lastlog_entry(record)
        if entry:
            logins[uid] = entry
    return logins


def read_wtmp(handle, records_per_read=4096):
    """Last login time by user name from an open wtmp file, read in bounded chunks.

    wtmp only grows between rotations; memory stays at one chunk whatever its size.
    """
    logins = {}
    size = UTMP_RECORD.size
    while True:
        chunk = handle.read(size * records_per_read)
        if not chunk:
            return logins
        logins = parse_wtmp(chunk[: len(chunk) - len(chunk) % size], logins)
        if len(chunk) % size:
            return logins  # a torn last record (a write in progress)


def parse_wtmp(data, logins=None):
    """Last login time by user name from a wtmp file's bytes (newer than ``logins``)."""
    logins = dict(logins or {})
    size = UTMP_RECORD.size
    for offset in range(0, len(data) - size + 1, size):
        fields = UTMP_RECORD.unpack_from(data, offset)
        if fields[0] != UTMP_USER_PROCESS:
            continue
        user = _cstr(fields[5])
        when = fields[10]  # ut_tv.tv_sec (fields[9] is ut_session)
        if user and when > logins.get(user, (0, ""))[0]:
            logins[user] = (when, "wtmp: %s from %s" % (_cstr(fields[3]) or "?", _cstr(fields[6]) or "local"))
    return logins


_SSHD_ACCEPTED = re.compile(
    r"^(\d+)(?:\.\d+)?\s+\S+\s+sshd(?:-session)?\[\d+\]:\s+Accepted (\S+) for (\S+) from (\S+)")


def parse_sshd_accepted(text):
    """Newest successful SSH login by user name from ``journalctl -o short-unix`` output.

    sshd logs ``Accepted publickey for bob from 192.0.2.1 port 50610 ssh2`` for every login,
    with or without a terminal (sshd-session on trixie); lastlog and wtmp hold only the
    logins that opened a terminal.
    """
    logins = {}
    for line in (text or "").splitlines():
        match = _SSHD_ACCEPTED.match(line)
        if not match:
            continue
        when, method, user, address = int(match.group(1)), match.group(2), match.group(3), match.group(4)
        if when > logins.get(user, (0, ""))[0]:
            logins[user] = (when, "sshd log: Accepted %s from %s" % (method, address))
    return logins


def has_authorized_key(text):
    """Does an authorized_keys text hold at least one key line?"""
    return any(line.strip() and not line.strip().startswith("#") for line in (text or "").splitlines())


AUTHORIZED_KEYS = (".ssh/authorized_keys", ".ssh/authorized_keys2")


def key_holders(accounts, read):
    """Names of the accounts with a key in ~/.ssh/authorized_keys or authorized_keys2.

    ``read(path)`` returns a file's text, or None. Keys served by an AuthorizedKeysCommand
    (a directory) are not seen.
    """
    names = set()
    for account in accounts:
        if account.home and account.home != "/" and any(
                has_authorized_key(read(posixpath.join(account.home, rel))) for rel in AUTHORIZED_KEYS):
            names.add(account.name)
    return names


KEY_HOLDER_NOTE = "reported, not changed: the account holds an SSH key"


def spare_key_holders(decisions, key_holders, log_covers_window, max_inactive_days):
    """Stale and never-used decisions on accounts that hold an SSH key become ``report``.

    On bookworm a login without a terminal (a command, scp, sftp, rsync, git) writes no
    lastlog or wtmp record, so an account used every day with its key can look never
    used. Such an account is changed only when the sshd log, which records every login,
    reaches back over the whole window (``log_covers_window``) and still shows none.
    """
    spared = []
    for kind, account, detail, action, status in decisions:
        if (kind in ("stale", "never_used") and status == FAIL and action != "report"
                and account.name in key_holders and not log_covers_window):
            detail = "%s; %s, its logins without a terminal leave no lastlog or wtmp record, " \
                     "and the sshd log does not reach back %d days" % (detail, KEY_HOLDER_NOTE, max_inactive_days)
            action = "report"
        spared.append((kind, account, detail, action, status))
    return spared


def merge_logins(accounts, by_uid, by_name_sources):
    """The newest login of each account over every source: {name: (epoch, evidence)}."""
    newest = {}

    def offer(name, record):
        if record and record[0] > newest.get(name, (0, ""))[0]:
            newest[name] = record

    for account in accounts:
        offer(account.name, by_uid.get(account.uid))
        for source in by_name_sources:
            offer(account.name, source.get(account.name))
    return newest


def classify(accounts, logins, now, max_inactive_days, uid_min, uid_max, login_shells):
    """Every offence found, as (kind, account, detail) in a stable order."""
    today = int(now // DAY)
    limit = now - max_inactive_days * DAY
    offences = []
    for account in accounts:
        human = uid_min <= account.uid <= uid_max
        if account.uid == 0 and account.name != "root":
            offences.append(("extra_uid0", account, "UID 0"))
        if account.password == "":
            offences.append(("empty_password", account, "empty password field in /etc/shadow"))
        if human:
            record = logins.get(account.name)
            if record is not None:
                if record[0] < limit:
                    days = int((now - record[0]) // DAY)
                    offences.append(("stale", account, "last login %d days ago (%s)" % (days, record[1])))
            elif account.last_change is not None and account.last_change > 0 and account.last_change < today - max_inactive_days:
                offences.append(
                    (
                        "never_used",
                        account,
                        "no login record; password set %d days ago" % (today - account.last_change),
                    )
                )
        elif account.uid != 0 and account.shell in login_shells and account.shell not in NO_LOGIN_SHELLS:
            offences.append(("system_shell", account, "login shell %s" % account.shell))
    return offences


def plan(offences, policy, protected, now):
    """Decide per offence: (kind, account, detail, action, status_before).

    status_before is SKIPPED for protected accounts; PASS when the account is already
    disabled (expired accounts cannot log in by any method, which is what the account
    controls ask for) and the policy is not removal; FAIL when the policy's action must
    run, or, with ``report``, the offence stays as drift.
    """
    today = int(now // DAY)
    decisions = []
    for kind, account, detail in offences:
        action = policy[kind]
        if account.name in protected:
            decisions.append((kind, account, detail, "none", SKIPPED))
        elif kind != "system_shell" and account.disabled(today) and action != "remove":
            decisions.append((kind, account, detail, "none", PASS))
        else:
            decisions.append((kind, account, detail, action, FAIL))
    return decisions


def commands_for(action, account, nologin_shell="/usr/sbin/nologin"):
    """The argv lists that carry out an action (removal is done by the module)."""
    if action == "lock":
        return [["usermod", "--lock", "--expiredate", "1", account.name]]
    if action == "expire":
        return [["usermod", "--expiredate", "1", account.name]]
    if action == "nologin":
        return [["usermod", "--shell", nologin_shell, account.name]]
    return []


def after_state(action, account):
    return {
        "lock": "password locked, expired",
        "expire": "expired",
        "remove": "removed (home archived)",
        "nologin": "shell /usr/sbin/nologin",
    }.get(action, account.state(0))


def build_findings(decisions, outcomes, check_mode, max_inactive_days, human_count, today):
    """Findings for every control: one per offending account, or one pass when none.

    ``outcomes`` maps (kind, name) -> (ok, evidence) for actions that were carried out.
    """
    findings = []
    seen = set()
    for kind, account, detail, action, status in decisions:
        control = CONTROLS[kind]
        seen.add(kind)
        expected = EXPECTED[kind].format(days=max_inactive_days)
        evidence = detail
        if status == SKIPPED:
            evidence = "%s; protected account, left unchanged" % detail
            actual = detail
        elif status == PASS:
            actual = "%s; %s" % (detail, account.state(today))
        elif action == "report":
            status = fold(False, False, check_mode, attempted=False)
            actual = detail
            evidence = detail if KEY_HOLDER_NOTE in detail else "%s; policy is report" % detail
        elif check_mode:
            status = fold(False, True, check_mode)
            actual = detail
            evidence = "%s; would %s" % (detail, action)
        else:
            ok, note = outcomes.get((kind, account.name), (False, "not carried out"))
            status = fold(False, ok, check_mode, applied_ok=ok)
            actual = after_state(action, account) if ok else detail
            evidence = "%s; %s" % (detail, note)
        findings.append(finding(control, status, expected, actual, evidence, subject=account.name))
    for kind, control in sorted(CONTROLS.items(), key=lambda item: item[1]):
        if kind not in seen:
            findings.append(
                finding(
                    control,
                    PASS,
                    EXPECTED[kind].format(days=max_inactive_days),
                    "none found",
                    "%d human accounts checked" % human_count,
                )
            )
    return findings
