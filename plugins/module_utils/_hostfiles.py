# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's account and login files, parsed once for every concern.

Pure parsers over text (the module reads the file, with its own path, and passes the
text), plus the PAM module lookup, which takes the directories to search. Every module
that needs passwd, shadow, group, login.defs, /etc/shells or a PAM module uses these.
"""

from __future__ import annotations

import collections
import os

PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"
GROUP = "/etc/group"
LOGIN_DEFS = "/etc/login.defs"
SHELLS = "/etc/shells"
# Where Debian's libpam looks for modules (multiarch first).
PAM_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/security", "/usr/lib/aarch64-linux-gnu/security",
                   "/lib/x86_64-linux-gnu/security", "/lib/aarch64-linux-gnu/security", "/usr/lib/security")


class Account(object):
    """One row of /etc/passwd joined with its /etc/shadow row."""

    __slots__ = ("name", "uid", "gid", "home", "shell", "password", "last_change", "expire")

    def __init__(self, name, uid, gid, home, shell, password=None, last_change=None, expire=None):
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
        self.shell = shell
        self.password = password  # the shadow field; None when there is no shadow row
        self.last_change = last_change  # days since the epoch
        self.expire = expire  # days since the epoch

    def disabled(self, today):
        """An expired account cannot log in by any method (PAM account phase)."""
        return self.expire is not None and self.expire <= today

    def password_locked(self):
        return self.password is not None and self.password.startswith("!")

    def state(self, today):
        words = []
        if self.password_locked():
            words.append("password locked")
        if self.disabled(today):
            words.append("expired")
        if self.password == "":
            words.append("empty password")
        if not words:
            words.append("enabled")
        return ", ".join(words)


def _int_or_none(text):
    text = text.strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def parse_passwd(text):
    """[Account] from /etc/passwd text; NIS (+/-), comment and malformed lines are skipped."""
    accounts = []
    for line in (text or "").splitlines():
        if not line or line.startswith("#") or line.startswith("+") or line.startswith("-"):
            continue
        fields = line.split(":")
        if len(fields) < 7:
            continue
        try:
            uid, gid = int(fields[2]), int(fields[3])
        except ValueError:
            continue
        accounts.append(Account(fields[0], uid, gid, fields[5], fields[6]))
    return accounts


ShadowRow = collections.namedtuple("ShadowRow", "password last_change minimum maximum warn expire")


def parse_shadow(text):
    """{name: ShadowRow} from /etc/shadow text (numeric fields None when empty)."""
    rows = {}
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) < 8:
            continue
        rows[fields[0]] = ShadowRow(fields[1], _int_or_none(fields[2]), _int_or_none(fields[3]),
                                    _int_or_none(fields[4]), _int_or_none(fields[5]), _int_or_none(fields[7]))
    return rows


def join_shadow(accounts, shadow):
    """Fill each Account's password, last change and expiry from parse_shadow's rows."""
    for account in accounts:
        row = shadow.get(account.name)
        if row is not None:
            account.password, account.last_change, account.expire = row.password, row.last_change, row.expire
    return accounts


def password_usable(field):
    """A shadow password field that a password login can match (not empty, locked or ``*``)."""
    return bool(field) and field[0] not in "!*"


def parse_group(text):
    """[(name, gid, [members])] from /etc/group text."""
    rows = []
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        try:
            gid = int(fields[2])
        except ValueError:
            continue
        rows.append((fields[0], gid, [m for m in fields[3].split(",") if m]))
    return rows


def account_groups(name, primary_gid, group_rows):
    """Group names of an account: its primary group and every group listing it.

    ``group_rows`` is [(name, gid, [members])] as parse_group returns.
    """
    result = set()
    for group, gid, members in group_rows:
        if gid == primary_gid or name in members:
            result.add(group)
    return result


def parse_login_defs(text):
    """{KEY: value} of the active lines of login.defs."""
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        values[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return values


def uid_range(login_defs):
    """(UID_MIN, UID_MAX) of parsed login.defs, with Debian's defaults."""
    def number(key, default):
        try:
            return int(login_defs.get(key, default))
        except ValueError:
            return default

    return number("UID_MIN", 1000), number("UID_MAX", 60000)


def parse_shells(text):
    """The login shells listed in /etc/shells."""
    return frozenset(
        line.strip() for line in (text or "").splitlines() if line.strip() and not line.startswith("#")
    )


def find_pam_module(name, dirs=PAM_MODULE_DIRS):
    """The path of PAM module ``name`` in the first of ``dirs`` that has it, else None."""
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None
