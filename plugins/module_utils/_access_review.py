# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Access review: who can do what on a host, compared with what the site approved.

Pure parse -> evaluate over the text of the files and what the module's walk found:

* sudoers (``/etc/sudoers`` and every ``@include``/``#include``/``@includedir``/
  ``#includedir``), with the aliases needed to name the users and groups of an entry and
  whether it grants every command (``ALL``) without a password (``NOPASSWD:``);
* authorized_keys lines (options before the key type), with the key's type and length
  read from its SSH wire-format blob and its SHA256 fingerprint as ``ssh-keygen -lf``
  prints it;
* the comparison with the site's approved lists, one finding per difference.

The review only reports: audit and apply give the same findings and nothing is changed.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import posixpath
import re
import struct

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, SKIPPED, finding, fold

CONTROLS = {
    "ACR-001": "root is the only account with UID 0 that can log in",
    "ACR-002": "every sudoers entry is approved for the site",
    "ACR-003": "every member of a privileged group is approved for the site",
    "ACR-004": "every SSH authorized key is approved for its account",
    "ACR-005": "no DSA key and no RSA key below the minimum length is authorized",
    "ACR-006": "no world-writable file or directory without the sticky bit in system paths, except approved ones",
    "ACR-007": "every SUID/SGID file is shipped by a package unchanged, or approved",
}

# Debian's own /etc/sudoers grants these; a site that keeps them needs nothing else.
DEBIAN_SUDOERS = ("root ALL=(ALL:ALL) ALL", "%sudo ALL=(ALL:ALL) ALL")


def status(ok, check_mode):
    """The review changes nothing: the kit's fold with nothing attempted."""
    return fold(ok, ok, check_mode, attempted=False)


# --- sudoers ---------------------------------------------------------------------------

SudoEntry = collections.namedtuple("SudoEntry", "path line text principals nopasswd all_commands")

ALIAS_KINDS = ("User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias")
TAGS = frozenset("NOPASSWD PASSWD NOEXEC EXEC SETENV NOSETENV LOG_INPUT NOLOG_INPUT LOG_OUTPUT NOLOG_OUTPUT "
                 "MAIL NOMAIL FOLLOW NOFOLLOW INTERCEPT NOINTERCEPT".split())
_TAG_SPACE = re.compile(r"\b(%s):\s*" % "|".join(sorted(TAGS)))
_INCLUDE = re.compile(r"^[@#](include|includedir)\s+(.+?)\s*$")
_OPTION = re.compile(r"^(ROLE|TYPE|CWD|CHROOT|TIMEOUT|NOTBEFORE|NOTAFTER|APPARMOR_PROFILE|PRIVS|LIMITPRIVS)=\S+\s*")


def normalize_entry(text):
    """One spelling per sudoers entry: single spaces, none around ``=``, ``,``, ``:``
    inside ``( )``, nor after a tag (``NOPASSWD:ALL``). Approved entries are compared in this form."""
    text = " ".join((text or "").split())
    text = re.sub(r"\s*=\s*", "=", text)
    text = re.sub(r"\s*,\s*", ",", text)
    text = re.sub(r"\(\s*([^)]*?)\s*\)", lambda m: "(" + re.sub(r"\s*:\s*", ":", m.group(1)) + ")", text)
    return _TAG_SPACE.sub(r"\1:", text)


def _logical_lines(text):
    """(line number, text) with backslash continuations joined and comments removed.

    ``#include``/``#includedir`` are directives, and ``#123`` names a UID, not a comment.
    """
    pending, start = "", None
    for number, raw in enumerate((text or "").splitlines(), 1):
        if start is None:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line, pending, first = (pending + raw).strip(), "", start
        start = None
        if _INCLUDE.match(line):
            yield first, line
            continue
        line = re.sub(r"(^|\s)#(?![0-9]).*$", "", line).strip()
        if line:
            yield first, line


def _split_list(text):
    """Items of a comma-separated sudoers list; a comma inside ``( )`` (a Runas list) does
    not split."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth <= 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def parse_sudoers(text, path):
    """([SudoEntry] with unexpanded principals, [include paths], {kind: {alias: [items]}}).

    An entry's principals are the raw user list; :func:`load_sudoers` expands aliases once
    every file is read (an alias may be defined in another file before its use).
    """
    entries, includes = [], []
    aliases = dict((kind, {}) for kind in ALIAS_KINDS)
    base = posixpath.dirname(path)
    for number, line in _logical_lines(text):
        include = _INCLUDE.match(line)
        if include:
            target = include.group(2).strip('"')
            includes.append((include.group(1), target if target.startswith("/") else posixpath.join(base, target)))
            continue
        word = line.split(None, 1)[0]
        if word in ALIAS_KINDS:
            for definition in line[len(word):].split(":"):
                if "=" in definition:
                    name, members = definition.split("=", 1)
                    aliases[word][name.strip()] = _split_list(members)
            continue
        if word.startswith("Defaults"):
            # "!authenticate" is NOPASSWD for everyone the line is about
            if re.search(r"(^|[\s,])!\s*authenticate\b", line[len(word):]):
                scope = word[len("Defaults"):]
                who = _split_list(scope[1:]) if scope[:1] == ":" else ["ALL"]
                entries.append(SudoEntry(path, number, normalize_entry(line), who, True, False))
            continue
        if "=" not in line:
            continue
        left, right = line.split("=", 1)
        left = re.sub(r"\s*,\s*", ",", left.strip())
        parts = left.split()
        if len(parts) < 2:
            continue
        who = _split_list(parts[0])
        nopasswd, commands = _commands(right)
        entries.append(SudoEntry(path, number, normalize_entry(line), who, nopasswd, commands))
    return entries, includes, aliases


def _commands(right):
    """(NOPASSWD given, the raw command items) of the right side of a user spec."""
    nopasswd = False
    commands = []
    for item in _split_list(right):
        item = re.sub(r"^\([^)]*\)\s*", "", item)
        while True:
            stripped = _OPTION.sub("", item, count=1)
            match = re.match(r"^([A-Z_]+):\s*", stripped)
            if match and match.group(1) in TAGS:
                nopasswd = nopasswd or match.group(1) == "NOPASSWD"
                stripped = stripped[match.end():]
            if stripped == item:
                break
            item = stripped
        # "host = cmd : host2 = cmd2": only the first command of a further spec is seen
        commands.append(item.split(" : ")[0].strip())
    return nopasswd, commands


def _expand(items, aliases, seen=()):
    """Alias names replaced by their members, recursively; negations and others kept."""
    result = []
    for item in items:
        bare = item.lstrip("!")
        if bare in aliases and bare not in seen:
            result += _expand(aliases[bare], aliases, seen + (bare,))
        else:
            result.append(item)
    return result


def included_names(names):
    """The files of an includedir that sudo reads: no name ending in ``~`` or holding a
    ``.``, in lexical order."""
    return sorted(name for name in names if not name.endswith("~") and "." not in name)


def load_sudoers(path, read, listdir, limit=128):
    """([SudoEntry] with principals expanded and ``all_commands`` resolved, [problems]).

    ``read(path)`` returns the text, or None when the file does not exist (it may raise
    OSError: a problem, reported); ``listdir(path)`` the names, or None.
    """
    entries, problems = [], []
    aliases = dict((kind, {}) for kind in ALIAS_KINDS)
    queue, seen = [path], set()
    while queue:
        current = queue.pop(0)
        if current in seen or len(seen) >= limit:
            continue
        seen.add(current)
        try:
            text = read(current)
        except (OSError, UnicodeError) as exc:
            problems.append("%s: not readable: %s" % (current, exc))
            continue
        if text is None:  # absent: sudo is not installed, or an include names nothing
            continue
        found, includes, defined = parse_sudoers(text, current)
        for kind in ALIAS_KINDS:
            aliases[kind].update(defined[kind])
        entries += found
        nested = []
        for kind, target in includes:
            if kind == "include":
                nested.append(target)
            else:
                names = listdir(target)
                nested += [posixpath.join(target, name) for name in included_names(names or [])]
        # an included file is read where the directive stands: before the rest of the queue
        queue[0:0] = nested
    commands = dict(aliases["Cmnd_Alias"], **aliases["Cmd_Alias"])
    resolved = []
    for entry in entries:
        principals = _expand(entry.principals, aliases["User_Alias"])
        all_commands = entry.all_commands
        if all_commands is not False:
            all_commands = "ALL" in _expand(entry.all_commands, commands)
        resolved.append(entry._replace(principals=principals, all_commands=bool(all_commands)))
    return resolved, problems


def sudo_findings(entries, problems, approved, check_mode):
    approved = set(normalize_entry(item) for item in approved)
    findings = []
    for entry in entries:
        flags = [word for word, on in (("NOPASSWD", entry.nopasswd), ("ALL commands", entry.all_commands)) if on]
        evidence = "for %s%s" % (", ".join(entry.principals), "; " + ", ".join(flags) if flags else "")
        findings.append(finding("ACR-002", status(entry.text in approved, check_mode), "an approved sudoers entry",
                                entry.text, evidence, subject="%s:%d" % (entry.path, entry.line)))
    for problem in problems:
        findings.append(finding("ACR-002", status(False, check_mode), "every sudoers file read", problem,
                                "sudo reads it; the review could not", subject=problem.split(":", 1)[0]))
    if not findings:
        findings.append(finding("ACR-002", status(True, check_mode), CONTROLS["ACR-002"], "no sudoers entry", ""))
    return findings


# --- SSH keys ----------------------------------------------------------------------------

SshKey = collections.namedtuple("SshKey", "line type bits fingerprint comment options problem")

_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
_KEY_START = re.compile(r"^(ssh-|ecdsa-|sk-)")


class _Reader(object):
    """SSH wire format (RFC 4251): uint32-length strings and mpints."""

    def __init__(self, data):
        self.data, self.offset = data, 0

    def string(self):
        if self.offset + 4 > len(self.data):
            raise ValueError("truncated key blob")
        (length,) = struct.unpack(">I", self.data[self.offset:self.offset + 4])
        start = self.offset + 4
        if start + length > len(self.data):
            raise ValueError("truncated key blob")
        self.offset = start + length
        return self.data[start:self.offset]

    def mpint_bits(self):
        return int(binascii.hexlify(self.string()) or b"0", 16).bit_length()


def fingerprint(blob):
    """``SHA256:`` and the unpadded base64 of the blob's SHA-256, as ``ssh-keygen -l`` prints."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def key_bits(blob):
    """(key type named inside the blob, bits) from the public key blob."""
    reader = _Reader(blob)
    kind = reader.string().decode("ascii", "replace")
    if kind.endswith("-cert-v01@openssh.com"):
        # authorized_keys trusts keys, and CAs through cert-authority; ssh-keygen would
        # fingerprint the plain key inside, which this review does not rebuild
        raise ValueError("a certificate (%s), not a key" % kind)
    base = kind.replace("@openssh.com", "")
    if base == "ssh-rsa":
        reader.mpint_bits()  # e
        return kind, reader.mpint_bits()  # n
    if base == "ssh-dss":
        return kind, reader.mpint_bits()  # p
    if base.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        curve = reader.string().decode("ascii", "replace")
        if curve not in _CURVE_BITS:
            raise ValueError("unknown curve %s" % curve)
        return kind, _CURVE_BITS[curve]
    if base in ("ssh-ed25519", "sk-ssh-ed25519"):
        return kind, 8 * len(reader.string())
    raise ValueError("unknown key type %s" % kind)


def _split_options(line):
    """(options, rest): the options field ends at the first blank outside double quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"' and (index == 0 or line[index - 1] != "\\"):
            quoted = not quoted
        elif char in " \t" and not quoted:
            return line[:index], line[index:].strip()
    return line, ""


def parse_key_line(text, number=0):
    """One authorized_keys line -> SshKey (``problem`` set when it is not a usable key)."""
    line = text.strip()
    options = ""
    if not _KEY_START.match(line):
        options, line = _split_options(line)
    fields = line.split(None, 2)
    if len(fields) < 2:
        return SshKey(number, fields[0] if fields else "", 0, "", "", options, "no key blob")
    kind, blob_text = fields[0], fields[1]
    comment = fields[2] if len(fields) > 2 else ""
    try:
        blob = base64.b64decode(blob_text.encode("ascii"), validate=True)
        inner, bits = key_bits(blob)
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        return SshKey(number, kind, 0, "", comment, options, "unreadable key: %s" % exc)
    if inner != kind:
        return SshKey(number, kind, bits, fingerprint(blob), comment, options,
                      "the line says %s, the key inside is %s" % (kind, inner))
    return SshKey(number, kind, bits, fingerprint(blob), comment, options, None)


def parse_authorized_keys(text):
    """[SshKey] of every non-blank, non-comment line."""
    keys = []
    for number, line in enumerate((text or "").splitlines(), 1):
        if line.strip() and not line.strip().startswith("#"):
            keys.append(parse_key_line(line, number))
    return keys


def key_weakness(key, min_rsa_bits):
    """Why a key is weak, or None. DSA is 1024 bits by definition and OpenSSH dropped it;
    ECDSA on the NIST curves and Ed25519 pass (NIST SP 800-186)."""
    if key.type == "ssh-dss":
        return "DSA key (%d bits)" % key.bits
    if key.type == "ssh-rsa" and key.bits < min_rsa_bits:
        return "RSA key of %d bits, below %d" % (key.bits, min_rsa_bits)
    return None


def describe_key(key, path):
    words = "%s %d %s" % (key.type, key.bits, key.fingerprint)
    if key.comment:
        words += " " + key.comment
    where = "%s:%d" % (path, key.line)
    if key.options:
        # option names only: a value (command="... --token=...", environment="PASS=...")
        # can hold a secret, and findings travel to the controller's reports
        where += ", options %s" % ",".join(option_names(key.options))
    return words, where


def option_names(options):
    """The names of an authorized_keys options field, values left out (quotes honoured)."""
    names, word, quoted, skipping = [], "", False, False
    for char in options + ",":
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            if word:
                names.append(word)
            word, skipping = "", False
        elif char == "=" and not quoted:
            skipping = True
        elif not skipping and not quoted:
            word += char
    return names


def key_findings(holdings, approved, min_rsa_bits, check_mode, keys_command=None):
    """ACR-004 and ACR-005 findings.

    ``holdings``: [(account, path, [SshKey] or None, refusal or None)] - a refused file
    is one that the review would not read (a symlink, a foreign owner) and fails ACR-004:
    what it grants cannot be reviewed. ``approved``: {account: [fingerprint]}.
    ``keys_command``: sshd's AuthorizedKeysCommand; the keys it serves are in no file, so
    ACR-004 is skipped for them, saying so.
    """
    review, weak = [], []
    count = 0
    for account, path, keys, refusal in holdings:
        if refusal:
            review.append(finding("ACR-004", status(False, check_mode), "a key file the review can read",
                                  "not read: %s" % refusal, path, subject="%s:%s" % (account, path)))
            continue
        allowed = set((approved or {}).get(account) or [])
        for key in keys or []:
            if key.problem:
                review.append(finding("ACR-004", SKIPPED, "a public key", key.problem,
                                      "%s:%d (sshd ignores such a line)" % (path, key.line), subject="%s:%s:%d" % (account, path, key.line)))
                continue
            count += 1
            actual, where = describe_key(key, path)
            review.append(finding("ACR-004", status(key.fingerprint in allowed, check_mode),
                                  "a key approved for %s" % account, actual, where, subject="%s:%s" % (account, key.fingerprint)))
            reason = key_weakness(key, min_rsa_bits)
            if reason:
                weak.append(finding("ACR-005", status(False, check_mode), CONTROLS["ACR-005"].replace("the minimum length", "%d bits" % min_rsa_bits),
                                    reason, "%s (%s)" % (actual, where), subject="%s:%s" % (account, key.fingerprint)))
    if keys_command:
        review.append(finding("ACR-004", SKIPPED, "every key that sshd accepts reviewed", "AuthorizedKeysCommand %s" % keys_command,
                              "the keys it serves are in no file; review them where they come from", subject="AuthorizedKeysCommand"))
    if not review:
        review.append(finding("ACR-004", status(True, check_mode), CONTROLS["ACR-004"], "no authorized key", ""))
    if not weak:
        weak.append(finding("ACR-005", status(True, check_mode), "no weak key", "no weak key among %d keys" % count, ""))
    return review + weak


def authorized_keys_command(config):
    """The AuthorizedKeysCommand of an ``sshd -T`` config, or None: keys it serves are
    not in any file."""
    for value in config.get("authorizedkeyscommand") or []:
        if value and value != "none":
            return value
    return None


# --- accounts and groups ------------------------------------------------------------------


def uid0_findings(accounts, today, check_mode):
    findings = []
    for account in accounts:
        if account.uid != 0 or account.name == "root":
            continue
        disabled = account.disabled(today)
        findings.append(finding("ACR-001", status(disabled, check_mode), "root alone has UID 0",
                                "UID 0 account %s, %s" % (account.name, account.state(today)),
                                "it can do all root can" if not disabled else "expired: no login by any method",
                                subject=account.name))
    if not findings:
        findings.append(finding("ACR-001", status(True, check_mode), CONTROLS["ACR-001"], "root alone has UID 0", "/etc/passwd"))
    return findings


def privileged_members(group_rows, accounts, groups):
    """{group: [members]} of the privileged ``groups`` that exist: listed members and the
    accounts whose primary group it is."""
    result = {}
    for name, gid, members in group_rows:
        if name not in groups:
            continue
        found = list(members) + [account.name for account in accounts if account.gid == gid]
        result[name] = sorted(set(found))
    return result


def group_findings(members, accounts, approved, today, check_mode):
    """ACR-003: root and disabled (expired) accounts pass - they add no access."""
    by_name = dict((account.name, account) for account in accounts)
    findings = []
    for group in sorted(members):
        allowed = set((approved or {}).get(group) or [])
        for member in members[group]:
            account = by_name.get(member)
            disabled = account is not None and account.disabled(today)
            ok = member == "root" or member in allowed or disabled
            if member == "root":
                evidence = "root"
            elif member in allowed:
                evidence = "approved"
            else:
                evidence = "account disabled (expired)" if disabled else "not in the approved list"
            if account is None:
                evidence += "; no such account"
            findings.append(finding("ACR-003", status(ok, check_mode), "members of %s approved" % group,
                                    "%s is a member of %s" % (member, group), evidence, subject="%s:%s" % (group, member)))
    if not findings:
        actual = "no members in %s" % ", ".join(sorted(members)) if members else "none of the groups exists"
        findings.append(finding("ACR-003", status(True, check_mode), CONTROLS["ACR-003"], actual, ""))
    return findings


# --- files ---------------------------------------------------------------------------------


def usr_aliases(path, merged):
    """The other names of ``path`` on a merged-/usr host: ``merged`` maps a top-level
    directory that is a symlink (``/bin``) to where it points (``/usr/bin``)."""
    names = [path]
    for link, target in merged.items():
        if path.startswith(target + "/"):
            names.append(link + path[len(target):])
        elif path.startswith(link + "/"):
            names.append(target + path[len(link):])
    return names


def _bounded(findings, control, limit, check_mode):
    failing = [f for f in findings if f["status"] == FAIL]
    if len(failing) <= limit:
        return findings
    kept = [f for f in findings if f["status"] != FAIL] + failing[:limit]
    kept.append(finding(control, status(False, check_mode), CONTROLS[control], "%d more not listed" % (len(failing) - limit),
                        "the report lists %d (max_reported)" % limit, subject="(%d more)" % (len(failing) - limit)))
    return kept


def world_writable_findings(found, more, approved, limit, check_mode):
    """ACR-006. ``found``: [(path, mode, kind)]; ``more``: how many the walk saw past its bound."""
    approved = set(approved or [])
    findings = []
    for path, mode, kind in found:
        findings.append(finding("ACR-006", status(path in approved, check_mode), "not world-writable (or approved)",
                                "%s %04o world-writable" % (kind, mode & 0o7777), "approved" if path in approved else "",
                                subject=path))
    findings = _bounded(findings, "ACR-006", limit, check_mode)
    if more:
        findings.append(finding("ACR-006", status(False, check_mode), CONTROLS["ACR-006"], "%d more not listed" % more,
                                "the walk stopped listing them", subject="(%d more)" % more))
    if not findings:
        findings.append(finding("ACR-006", status(True, check_mode), CONTROLS["ACR-006"], "none found", ""))
    return findings


def suid_findings(found, owners, changed, approved, limit, check_mode):
    """ACR-007.

    ``found``: [(path, mode, uid, gid)]; ``owners``: {path: package} for those a dpkg file
    list names; ``changed``: {path: why} for packaged files whose content differs from the
    package's md5sums; ``approved``: paths.
    """
    approved = set(approved or [])
    findings, packaged = [], []
    for path, mode, uid, gid in found:
        bits = "SUID" if mode & 0o4000 else ""
        bits += ("/" if bits else "") + "SGID" if mode & 0o2000 else ""
        actual = "%s %04o uid %d gid %d" % (bits, mode & 0o7777, uid, gid)
        if path in approved:
            findings.append(finding("ACR-007", status(True, check_mode), "shipped by a package, or approved", actual, "approved", subject=path))
        elif path in owners and path not in changed:
            packaged.append("%s (%s)" % (path, owners[path]))
        else:
            why = changed.get(path) or "no package ships it"
            findings.append(finding("ACR-007", status(False, check_mode), "shipped by a package, or approved", actual, why, subject=path))
    findings = _bounded(findings, "ACR-007", limit, check_mode)
    findings.append(finding("ACR-007", status(True, check_mode), "SUID/SGID files of packages, unchanged",
                            "%d shipped by packages" % len(packaged), "; ".join(packaged)))
    return findings
