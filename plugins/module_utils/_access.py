# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH access engine: who would lose SSH access under a staged candidate, and why.

Every concern whose change can cut SSH access (ssh, mfa, and the coming firewall and
containment roles) asks the same question on a candidate before writing it: for each
account that must keep a way in, and for each client address it comes from, does sshd
still let it in, with a method it can complete? The answer is per account and per
address, so a role that filters by address (a firewall) can use it as is.

Two halves:

* pure - :func:`access_problems` decides it the way sshd's ``allowed_user()`` does
  (auth.c): login shell, DenyUsers, AllowUsers, DenyGroups, AllowGroups, then
  PermitRootLogin for UID 0, and then whether some ``AuthenticationMethods`` list is made
  only of methods the account can complete (:func:`usable_methods`). ``sshd -T -C``
  prints the effective lists but does not decide; AllowUsers, AllowGroups, DenyUsers and
  DenyGroups ACCUMULATE over every line read, which is why they are judged here on the
  composed configuration and never on one file.
* on the host - :class:`Candidate` stages the live sshd configuration with one drop-in
  replaced in a temporary directory and asks ``sshd -t`` / ``sshd -T -C`` about it
  (:class:`Live` asks the live configuration, for a change that leaves sshd alone: a
  firewall, whose candidate answers through the ``reach`` of :func:`who_loses_access`);
  :func:`client_connections` finds the addresses the automation is connected from;
  :func:`who_loses_access` runs the check for every account and address.

An account (see :func:`account`) says what it can do: ``key`` (an authorized key, or
None to look in its AuthorizedKeysFile), ``password`` (a usable password) and ``kbdint``
(it can complete the keyboard-interactive PAM exchange; by default the same as
``password``). ``need`` is ``every`` (it must get in from every address checked: the
automation, which is connected from them now) or ``any`` (one way in is enough).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import posixpath
import re
import shutil
import struct
import tempfile

from ansible_collections.yoroi.baseline.plugins.module_utils._files import read_text

SSH_DIR = "/etc/ssh"  # relative Include paths are relative to it
SSHD_CONFIG = "/etc/ssh/sshd_config"
PASSWORD_METHODS = ("password", "keyboard-interactive")
# sshd's compiled-in defaults for the keywords judged here, when a config omits them.
DEFAULTS = {"pubkeyauthentication": "yes", "passwordauthentication": "yes",
            "kbdinteractiveauthentication": "yes", "usepam": "no", "authenticationmethods": "any",
            "authorizedkeysfile": ".ssh/authorized_keys .ssh/authorized_keys2"}
ENV = {"LC_ALL": "C"}


# --- reading sshd -T ---------------------------------------------------------------------


def parse_effective(text):
    """``sshd -T`` output -> {lowercase keyword: [value, ...]} (one entry per line)."""
    config = {}
    for line in (text or "").splitlines():
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        config.setdefault(parts[0].lower(), []).append(parts[1] if len(parts) > 1 else "")
    return config


def value(config, key, default=None):
    """The first value of ``key``; sshd's own default when the config omits it."""
    values = config.get(key.lower())
    if isinstance(values, str):
        return values
    if values:
        return values[0]
    return DEFAULTS.get(key.lower(), "") if default is None else default


def words(config, key):
    """Every word of an accumulating keyword (``allowgroups a b`` or one per line)."""
    values = config.get(key.lower(), [])
    if isinstance(values, str):
        values = [values]
    result = []
    for line in values:
        result.extend(line.split())
    return result


# --- sshd's pattern matching ---------------------------------------------------------------


def match_pattern(name, pattern):
    """sshd's match_pattern(): ``*`` and ``?`` wildcards, case-sensitive."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "[[]"))


def match_pattern_list(name, patterns):
    """sshd's match_pattern_list(): comma list, ``!`` negates; 1 match, -1 negated, 0 none."""
    result = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        if pattern and match_pattern(name, pattern):
            if negated:
                return -1
            result = 1
    return result


def _host_matches(host, address, pattern):
    if "/" in pattern:
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return match_pattern_list(host, pattern) == 1 or match_pattern_list(address, pattern) == 1


def match_user(user, host, address, pattern):
    """sshd's match_user(): ``user`` or ``user@host`` / ``user@cidr`` patterns."""
    if "@" not in pattern:
        return match_pattern(user, pattern)
    user_part, host_part = pattern.rsplit("@", 1)
    return match_pattern(user, user_part) and _host_matches(host, address, host_part)


# --- accounts and their methods ----------------------------------------------------------------


def account(name, uid, groups, shell="/bin/sh", shell_ok=True, key=None, password=False, kbdint=None,
            need="every", role="account", home="/", connections=None, methods=None):
    """An account as the engine sees it; see the module docstring for the capabilities.

    ``methods`` names what the account is expected to log in with, for messages only.
    """
    return {"name": name, "uid": uid, "groups": set(groups), "shell": shell, "shell_ok": shell_ok,
            "key": key, "password": bool(password), "kbdint": bool(password) if kbdint is None else bool(kbdint),
            "need": need, "role": role, "home": home, "connections": connections, "methods": methods}


def capabilities(acct):
    """An account's (key, password, kbdint); an account given as ``methods`` (publickey,
    password) and ``keys_found`` has a key when it logs in with one and one was found, and a
    password for both password and keyboard-interactive when it logs in with one."""
    if "key" in acct or "password" in acct:
        password = bool(acct.get("password"))
        return bool(acct.get("key")), password, bool(acct.get("kbdint", password))
    methods = acct.get("methods") or []
    password = "password" in methods
    return "publickey" in methods and acct.get("keys_found", True), password, password


def authorized_keys_paths(config, user, home, uid):
    """The AuthorizedKeysFile paths sshd reads for one account (tokens expanded)."""
    paths = []
    for item in " ".join(config.get("authorizedkeysfile") or [DEFAULTS["authorizedkeysfile"]]).split():
        if item == "none":
            continue
        expanded = item.replace("%%", "\0").replace("%h", home).replace("%u", user).replace("%U", str(uid))
        expanded = expanded.replace("\0", "%")
        paths.append(expanded if expanded.startswith("/") else posixpath.join(home, expanded))
    return paths


def keys_found(config, name, home, uid, read=read_text):
    """An AuthorizedKeysCommand, or an authorized_keys file with a key in it."""
    if value(config, "authorizedkeyscommand", "none") != "none":
        return True
    for path in authorized_keys_paths(config, name, home, uid):
        text = read(path)
        if text and any(line.strip() and not line.strip().startswith("#") for line in text.splitlines()):
            return True
    return False


def usable_methods(config, acct):
    """Authentication methods the account can complete with this config."""
    usable = set()
    key, password, kbdint = capabilities(acct)
    if key and value(config, "pubkeyauthentication") == "yes":
        usable.add("publickey")
    if password and value(config, "passwordauthentication") == "yes":
        usable.add("password")
    if kbdint and value(config, "kbdinteractiveauthentication") == "yes" and value(config, "usepam") == "yes":
        usable.add("keyboard-interactive")
    permit_root = value(config, "permitrootlogin", "")
    if acct["uid"] == 0:
        if permit_root in ("prohibit-password", "without-password", "forced-commands-only"):
            usable -= set(PASSWORD_METHODS)
        if permit_root == "forced-commands-only":
            usable = set()
    return usable


def method_lists(config):
    """AuthenticationMethods as alternatives, each a list of method names; [] for ``any``."""
    spec = value(config, "authenticationmethods")
    if spec == "any":
        return []
    return [[method.split(":", 1)[0] for method in alternative.split(",")] for alternative in spec.split()]


def way_in(config, usable):
    """(True, how) when one allowed alternative consists only of ``usable`` methods."""
    alternatives = method_lists(config)
    if not alternatives:
        order = [m for m in ("publickey", "password", "keyboard-interactive") if m in usable]
        if order:
            return True, "any method (%s)" % order[0]
        return False, "allowed: any, but no method usable"
    for alternative in alternatives:
        if alternative and set(alternative) <= usable:
            return True, ",".join(alternative)
    return False, "allowed: %s" % value(config, "authenticationmethods")


def auth_methods_satisfied(config, usable):
    """Is some AuthenticationMethods list made only of usable methods?"""
    return way_in(config, usable)[0]


def _methods(acct):
    if acct.get("methods"):
        return "/".join(acct["methods"])
    have = [name for name, on in zip(("publickey", "password", "keyboard-interactive"), capabilities(acct)) if on]
    return "/".join(have) or "no method it has"


def access_problems(config, acct, host, address):
    """Why sshd (with ``config`` from ``sshd -T -C``) would refuse ``acct``; [] if none.

    ``acct``: as :func:`account` builds it, with ``key`` already decided (True/False).
    """
    name = acct["name"]
    problems = []
    if not acct.get("shell_ok", True):
        problems.append("%s's login shell %s does not exist or is not executable" % (name, acct.get("shell")))
    for pattern in words(config, "denyusers"):
        if match_user(name, host, address, pattern):
            problems.append("DenyUsers %s matches %s" % (pattern, name))
            break
    allow_users = words(config, "allowusers")
    if allow_users and not any(match_user(name, host, address, p) for p in allow_users):
        problems.append("AllowUsers %s does not include %s" % (" ".join(allow_users), name))
    groups = sorted(acct.get("groups", []))
    for pattern in words(config, "denygroups"):
        hit = [g for g in groups if match_pattern_list(g, pattern) == 1]
        if hit:
            problems.append("DenyGroups %s matches %s's group %s" % (pattern, name, hit[0]))
            break
    allow_groups = words(config, "allowgroups")
    if allow_groups and not any(match_pattern_list(g, p) == 1 for g in groups for p in allow_groups):
        problems.append("AllowGroups %s: %s is in none of them (groups: %s)" % (
            " ".join(allow_groups), name, ", ".join(groups) or "none"))
    if acct["uid"] == 0 and value(config, "permitrootlogin", "") == "no":
        problems.append("PermitRootLogin no refuses %s (UID 0)" % name)
    ok, how = way_in(config, usable_methods(config, acct))
    if not ok:
        detail = []
        key, password, kbdint = capabilities(acct)
        if not key and "publickey" in (acct.get("methods") or ["publickey"]) and not password and not kbdint:
            detail.append("no authorized key found (AuthorizedKeysFile %s)" % value(config, "authorizedkeysfile"))
        detail.append("PubkeyAuthentication %s, PasswordAuthentication %s, KbdInteractiveAuthentication %s, "
                      "AuthenticationMethods %s" % (value(config, "pubkeyauthentication"), value(config, "passwordauthentication"),
                                                    value(config, "kbdinteractiveauthentication"), value(config, "authenticationmethods")))
        problems.append("%s could not authenticate with %s: %s" % (name, _methods(acct), "; ".join(detail)))
    return problems


# --- the client side ----------------------------------------------------------------------------


def parse_ssh_connection(text):
    """SSH_CONNECTION "client port server port" -> {addr, laddr, lport} or {}."""
    parts = (text or "").split()
    if len(parts) != 4:
        return {}
    return {"addr": parts[0], "laddr": parts[2], "lport": parts[3]}


def _proc_address(hex_text):
    raw = bytes.fromhex(hex_text)
    numbers = struct.unpack("<%dI" % (len(raw) // 4), raw)
    packed = struct.pack(">%dI" % len(numbers), *numbers)
    address = ipaddress.ip_address(packed)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def established_peers(proc_net_tcp, ports):
    """Client addresses of ESTABLISHED connections to ``ports`` in /proc/net/tcp{,6} text.

    Used when the SSH client address cannot be read from the environment (sudo removes
    SSH_CONNECTION and sshd's processes are unreadable in containers): every client
    connected to sshd is then checked, which only errs on the careful side.
    """
    peers = []
    wanted = set(int(port) for port in ports)
    for line in (proc_net_tcp or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "01":
            continue
        try:
            local_hex, local_port = fields[1].split(":")
            remote_hex, _remote_port = fields[2].split(":")
            if int(local_port, 16) in wanted:
                peer = _proc_address(remote_hex)
                if peer not in peers:
                    peers.append(peer)
        except ValueError:
            continue
    return peers


def connection_spec(user, conn):
    """The ``sshd -T -C`` argument for one account and connection."""
    addr = conn.get("addr") or "127.0.0.1"
    spec = ["user=%s" % user, "host=%s" % addr, "addr=%s" % addr]
    if conn.get("laddr"):
        spec.append("laddr=%s" % conn["laddr"])
    if conn.get("lport"):
        spec.append("lport=%s" % conn["lport"])
    return ",".join(spec)


def _ancestor_ssh_connection(pid):
    text = os.environ.get("SSH_CONNECTION")
    for _depth in range(12):
        if text or pid <= 1:
            break
        try:
            with open("/proc/%d/environ" % pid, "rb") as handle:
                for item in handle.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        text = item.split(b"=", 1)[1].decode()
        except OSError:
            pass  # sudo and sshd are not readable without CAP_SYS_PTRACE; go on up
        try:
            with open("/proc/%d/stat" % pid) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return text


def client_connections(ports, client_address=None):
    """[{addr, laddr, lport}] of the SSH connection(s) the automation may be using.

    ``client_address`` wins; then SSH_CONNECTION from this process or a readable ancestor
    (sudo drops it); then every client connected to sshd's ``ports`` (/proc/net/tcp), since
    in containers sshd and sudo cannot be read even by root; else 127.0.0.1.
    """
    if client_address:
        return [{"addr": client_address}]
    conn = parse_ssh_connection(_ancestor_ssh_connection(os.getppid()))
    if conn:
        return [conn]
    peers = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for peer in established_peers(read_text(table, ""), ports or ["22"]):
            if peer not in peers:
                peers.append(peer)
    return [{"addr": peer} for peer in peers] or [{"addr": "127.0.0.1"}]


# --- the staged candidate --------------------------------------------------------------------------


def directive(line):
    """(lowercase keyword, rest) of an sshd_config line, or None for blanks and comments."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    parts = re.split(r"[\s=]+", stripped, maxsplit=1)
    return parts[0].lower(), (parts[1] if len(parts) > 1 else "")


def staged_main_config(text, dropin_dir, staged_dir):
    """The main config with every Include of ``dropin_dir`` pointed at ``staged_dir``.

    Used to validate a candidate: the staged directory holds the live drop-ins with the
    candidate drop-in in place of the live one.
    """
    out = []
    for line in (text or "").splitlines(True):
        tokens = directive(line)
        if tokens is None or tokens[0] != "include":
            out.append(line)
            continue
        args = []
        for arg in tokens[1].split():
            full = arg if arg.startswith("/") else posixpath.join(SSH_DIR, arg)
            if posixpath.dirname(full) == dropin_dir:
                args.append(posixpath.join(staged_dir, posixpath.basename(full)))
            else:
                args.append(full)
        out.append("Include %s\n" % " ".join(args))
    return "".join(out)


class Live(object):
    """The live sshd configuration, asked as a :class:`Candidate` is: for a change that
    leaves sshd alone but can still cut access (a firewall, a containment), whose own
    part of the question is the ``reach`` of :func:`who_loses_access`."""

    def __init__(self, module, sshd_bin, config=SSHD_CONFIG):
        self.module = module
        self.sshd = sshd_bin
        self.config = config

    def _clean(self, text):
        return (text or "").strip()

    def effective(self, user=None, conn=None):
        """(parsed ``sshd -T [-C ...]`` of the configuration, error text)."""
        argv = [self.sshd, "-T", "-f", self.config]
        if user:
            if not isinstance(conn, dict):
                conn = {"addr": conn}
            argv += ["-C", connection_spec(user, conn)]
        rc, out, err = self.module.run_command(argv, environ_update=ENV)
        if rc != 0:
            return {}, self._clean(err or out)
        return parse_effective(out), ""

    def cleanup(self):
        pass


class Candidate(Live):
    """The live sshd configuration with one drop-in replaced, composed in a temp dir.

    ``main_text`` is the candidate main file (None: the live one at ``main_path``).
    """

    def __init__(self, module, sshd_bin, dropin_path, dropin_text, main_text=None, main_path=SSHD_CONFIG):
        self.module = module
        self.sshd = sshd_bin
        self.dir = tempfile.mkdtemp(prefix="yoroi-sshd-")
        dropin_dir = os.path.dirname(dropin_path)
        staged = os.path.join(self.dir, "sshd_config.d")
        os.mkdir(staged, 0o700)
        if os.path.isdir(dropin_dir):
            for name in sorted(os.listdir(dropin_dir)):
                source = os.path.join(dropin_dir, name)
                if source != dropin_path and os.path.isfile(source):
                    shutil.copyfile(source, os.path.join(staged, name))
        with open(os.path.join(staged, os.path.basename(dropin_path)), "w") as handle:
            handle.write(dropin_text)
        if main_text is None:
            main_text = read_text(main_path, "") or ""
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as handle:
            handle.write(staged_main_config(main_text, dropin_dir, staged))

    def _clean(self, text):
        return (text or "").strip().replace(self.dir, "<candidate>")

    def test(self):
        """(valid, message) of ``sshd -t`` on the candidate."""
        rc, out, err = self.module.run_command([self.sshd, "-t", "-f", self.config], environ_update=ENV)
        return rc == 0, self._clean(err or out)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the question -----------------------------------------------------------------------------------


def sshd_ports(config, conn):
    """The port(s) a connection reaches sshd on: its own, else every ``Port`` of ``config``."""
    if conn.get("lport"):
        return [str(conn["lport"])]
    return words(config, "port") or ["22"]


def who_loses_access(candidate, accounts, connections, read=read_text, reach=None):
    """Ask the candidate about every account from every address.

    ``reach``: for a change that filters by address (a firewall), ``reach(address, port)``
    -> ``(ok, why)`` says whether a new connection from the address gets to sshd's port;
    a port it does not reach is a problem for that address like any of sshd's own.

    ``accounts``: :func:`account` dicts (``connections`` in one overrides the shared ones;
    ``key`` None is looked up in the account's AuthorizedKeysFile under ``home``; ``at``
    maps an address to capabilities that differ there, such as ``kbdint`` where an
    exemption skips the code).
    Returns ``(results, errors)``: ``results`` is, per account name, ``{"role", "need",
    "by_address": [{"addr", "problems", "how"}], "problems": [...]}`` where ``problems``
    are the reasons it loses access under its ``need``; ``errors`` lists ``sshd -T``
    failures (the candidate could not be judged).
    """
    results, errors = {}, []
    for acct in accounts:
        conns = acct.get("connections") or connections or [{"addr": "127.0.0.1"}]
        rows = []
        for conn in conns:
            cfg, error = candidate.effective(acct["name"], conn)
            if error:
                errors.append("sshd -T -C for %s failed: %s" % (acct["name"], error))
                break
            probe = dict(acct)
            probe.update((acct.get("at") or {}).get(conn["addr"], {}))
            if probe.get("key") is None:
                probe["key"] = keys_found(cfg, acct["name"], acct.get("home") or "/", acct["uid"], read)
            problems = access_problems(cfg, probe, conn["addr"], conn["addr"])
            if reach is not None:
                for number in sshd_ports(cfg, conn):
                    ok, why = reach(conn["addr"], number)
                    if not ok:
                        problems.append(why)
            how = way_in(cfg, usable_methods(cfg, probe))[1]
            rows.append({"addr": conn["addr"], "problems": problems, "how": how})
        lost = []
        if acct["need"] == "every" or len(rows) == 1:
            for row in rows:
                for problem in row["problems"]:
                    text = problem if len(rows) == 1 else "from %s: %s" % (row["addr"], problem)
                    if text not in lost:
                        lost.append(text)
        elif rows and not any(not row["problems"] for row in rows):
            lost.append("no way in from any of %s (%s)" % (
                ", ".join(row["addr"] for row in rows),
                "; ".join("%s: %s" % (row["addr"], ", ".join(row["problems"])) for row in rows)))
        results[acct["name"]] = {"role": acct["role"], "need": acct["need"], "by_address": rows, "problems": lost}
    return results, errors


def shell_ok(path):
    """sshd refuses an account whose shell is missing or not executable (empty = /bin/sh)."""
    shell = path or "/bin/sh"
    return os.path.isfile(shell) and os.access(shell, os.X_OK)
