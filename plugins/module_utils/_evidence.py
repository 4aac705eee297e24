# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incident-response triage on one host, read-only, in order of volatility.

The collection runs as root and changes nothing on the host but its own private staging
directory (mkdtemp, 0700, under /var/tmp), where the bundle is written as one tar.gz and
which the caller removes. Nothing else is written: every member of the bundle goes into
the tarball from memory. Files are opened with O_NOFOLLOW (and O_NOATIME, so that reading
them leaves their access times as they were), never followed through a symlink a user
could plant, and read up to a cap; what a cap cut short is listed in ``truncated``.

Pure parsers and formatters (``parse_*``, ``bodyfile_line``, ``escape_name``) are kept
apart from the readers so that they are tested on recorded host output.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time

from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils._access import (
    DEFAULTS, _proc_address, authorized_keys_paths)
from ansible_collections.yoroi.baseline.plugins.module_utils._walk import walk

MIB = 1024 * 1024
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
NOATIME = getattr(os, "O_NOATIME", 0)
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
              "0B": "CLOSING", "0C": "NEW_SYN_RECV"}
PROC_NET = ("tcp", "tcp6", "udp", "udp6")
CRON_PATHS = ("/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
              "/etc/cron.monthly", "/etc/anacrontab", "/var/spool/cron")
TIMELINE_PATHS = ("/etc", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/lib/systemd", "/var/spool/cron")
AUTH_LOGS = "/var/log"
AUTH_LOG_PREFIXES = ("auth.log", "secure")
# the newest lines of a journal query at the most (the output is read into memory first)
JOURNAL_LINES = 200000


# --- pure parsers and formatters --------------------------------------------------------


def escape_name(raw):
    r"""A file name (bytes) as one safe bodyfile field: every byte that is not printable
    ASCII, and the field separator ``|`` and ``\`` itself, become ``\xHH``. A name with a
    newline thus stays on its line and a name with ``|`` does not shift the fields."""
    out = []
    for byte in bytearray(raw):
        if byte < 0x20 or byte > 0x7e or byte in (0x7c, 0x5c):
            out.append("\\x%02x" % byte)
        else:
            out.append(chr(byte))
    return "".join(out)


def bodyfile_line(path, st, md5="0"):
    """One TSK 3.x bodyfile line (what mactime reads):
    MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime.
    ``path`` is bytes or str; crtime is 0 (os.stat does not give the birth time)."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return "%s|%s|%d|%s|%d|%d|%d|%d|%d|%d|0" % (
        md5, escape_name(raw), st.st_ino, stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_size,
        int(st.st_atime), int(st.st_mtime), int(st.st_ctime))


def parse_proc_stat(text):
    """(ppid, start time in clock ticks since boot) from /proc/<pid>/stat; the command
    name in parentheses may itself hold spaces and parentheses, so fields are counted
    after its last ``)``."""
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[19])


def parse_status_uid(text):
    """The real UID from /proc/<pid>/status, or None."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def parse_cmdline(raw):
    """argv from /proc/<pid>/cmdline (NUL-separated bytes)."""
    return [part.decode("utf-8", "backslashreplace") for part in raw.split(b"\0") if part] if raw else []


def exe_deleted(link):
    """True when a /proc/<pid>/exe link says its binary was removed from disk."""
    return link.endswith(" (deleted)")


def parse_proc_net(text, protocol):
    """Sockets of /proc/net/{tcp,tcp6,udp,udp6}: [{protocol, local, remote, state, uid, inode}]."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote = fields[1].rsplit(":", 1), fields[2].rsplit(":", 1)
        state = TCP_STATES.get(fields[3].upper(), fields[3])
        if protocol.startswith("udp"):
            state = "UNCONN" if state == "CLOSE" else state
        rows.append({"protocol": protocol, "local": "%s:%d" % (_proc_address(local[0]), int(local[1], 16)),
                     "remote": "%s:%d" % (_proc_address(remote[0]), int(remote[1], 16)),
                     "state": state, "uid": int(fields[7]), "inode": int(fields[9])})
    return rows


def parse_proc_unix(text):
    """Unix sockets of /proc/net/unix: [{path, inode, state}] (path empty when unnamed)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 7:
            continue
        rows.append({"inode": int(fields[6]), "state": fields[5], "path": fields[7] if len(fields) > 7 else ""})
    return rows


def recent(st, cutoff):
    """Modified or changed (metadata) at or after ``cutoff`` (seconds since the epoch)."""
    return st.st_mtime >= cutoff or st.st_ctime >= cutoff


# --- reading on the host ----------------------------------------------------------------


def read_capped(path, cap, dir_fd=None):
    """(bytes, truncated) of a regular file, or (None, reason). Never follows a symlink at
    the last component; a FIFO or device is not read (O_NONBLOCK keeps the open from
    hanging on a FIFO); O_NOATIME when the kernel allows it."""
    fd = None
    for flags in (READ_FLAGS | NOATIME, READ_FLAGS):
        try:
            fd = os.open(path, flags, dir_fd=dir_fd)
            break
        except PermissionError:
            continue  # O_NOATIME refused (not the owner, no CAP_FOWNER): open without it
        except OSError as exc:
            return None, exc.strerror or str(exc)
    if fd is None:
        return None, "permission denied"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, "not a regular file"
        chunks, size = [], 0
        while size < cap:
            chunk = os.read(fd, min(MIB, cap - size))
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), bool(os.read(fd, 1))
    finally:
        os.close(fd)


def hash_fd_path(path, cap):
    """(sha256 hex, truncated) of what ``path`` opens (used on /proc/<pid>/exe, which opens
    the running binary even after it was deleted), or (None, reason)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return None, exc.strerror or str(exc)
    digest, size = hashlib.sha256(), 0
    try:
        while size < cap:
            chunk = os.read(fd, min(MIB, cap - size))
            if not chunk:
                return digest.hexdigest(), False
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), bool(os.read(fd, 1))
    finally:
        os.close(fd)


def open_below(home, relative):
    """A descriptor of the file ``relative`` below the directory ``home``, each component
    opened relative to the last with O_NOFOLLOW, so that a symlink an account plants in its
    home (~/.ssh -> /root/.ssh) is never followed out of it; None when it cannot be."""
    try:
        current = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    parts = [part for part in relative.split("/") if part and part != "."]
    if not parts or ".." in parts:
        os.close(current)
        return None
    try:
        for part in parts[:-1]:
            following = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
            os.close(current)
            current = following
    except OSError:
        os.close(current)
        return None
    return current, parts[-1]


class Bundle(object):
    """The tarball being written in the staging directory, with what each step took and
    what was cut short."""

    def __init__(self, path, caps):
        self.path = path
        self.caps = caps
        self.tar = tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT)
        self.members = {}
        self.truncated = []
        self.errors = []
        self.timings = []
        self.total = 0
        self.deleted = []

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if self.total + len(data) > self.caps["bundle_bytes"]:
            self.truncated.append({"member": name, "reason": "bundle size cap reached; not added"})
            return
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
        self.tar.addfile(info, io.BytesIO(data))
        self.members[name] = hashlib.sha256(data).hexdigest()
        self.total += len(data)

    def add_json(self, name, value):
        self.add(name, json.dumps(value, indent=1, sort_keys=True, default=str) + "\n")

    def add_file(self, name, path, cap=None, dir_fd=None):
        data, truncated = read_capped(path, cap or self.caps["file_bytes"], dir_fd=dir_fd)
        if data is None:
            self.errors.append({"member": name, "path": path, "error": truncated})
            return False
        if truncated:
            self.truncated.append({"member": name, "path": path, "reason": "read the first %d bytes" % len(data)})
        self.add(name, data)
        return True

    def step(self, name, function, *args):
        started = time.monotonic()
        try:
            function(self, *args)
        except Exception as exc:  # one failing step must not lose the others' evidence
            self.errors.append({"step": name, "error": "%s: %s" % (type(exc).__name__, exc)})
        self.timings.append({"step": name, "seconds": round(time.monotonic() - started, 3)})

    def close(self):
        self.tar.close()


def _proc_text(pid, name):
    data, _truncated = read_capped("/proc/%s/%s" % (pid, name), MIB)
    return (data or b"").decode("utf-8", "replace")


def collect_processes(bundle, proc="/proc"):
    """1. Processes: pid, ppid, uid, argv, exe link, start time, and the SHA-256 of every
    distinct binary read through /proc/<pid>/exe (a deleted one too; flagged)."""
    processes, hashes = [], {}
    for pid in sorted((name for name in os.listdir(proc) if name.isdigit()), key=int):
        try:
            ppid, start = parse_proc_stat(_proc_text(pid, "stat"))
        except (ValueError, IndexError):
            continue  # exited while listed
        try:
            exe = os.readlink("%s/%s/exe" % (proc, pid))
        except OSError:
            exe = None  # a kernel thread
        raw, _truncated = read_capped("%s/%s/cmdline" % (proc, pid), MIB)
        entry = {"pid": int(pid), "ppid": ppid, "uid": parse_status_uid(_proc_text(pid, "status")),
                 "cmdline": parse_cmdline(raw or b""), "exe": exe, "start_ticks": start,
                 "deleted": bool(exe and exe_deleted(exe))}
        if exe:
            try:
                target = os.stat("%s/%s/exe" % (proc, pid))
                key = (target.st_dev, target.st_ino, exe)
            except OSError:
                key = None
            if key is not None and key not in hashes:
                hashes[key] = hash_fd_path("%s/%s/exe" % (proc, pid), bundle.caps["hash_bytes"])
                if hashes[key][1] is True:
                    bundle.truncated.append({"member": "processes", "path": exe,
                                             "reason": "hashed the first %d bytes" % bundle.caps["hash_bytes"]})
            if key is not None and hashes[key][0]:
                entry["sha256"] = hashes[key][0]
        processes.append(entry)
    bundle.add_json("01-processes/processes.json", processes)
    bundle.deleted = [item for item in processes if item["deleted"]]
    bundle.add_json("01-processes/deleted_binaries.json", bundle.deleted)


def collect_sockets(bundle, run):
    """2. Sockets: /proc/net/{tcp,tcp6,udp,udp6,unix} parsed, and `ss -tunap` when present."""
    sockets = []
    for name in PROC_NET:
        data, _truncated = read_capped("/proc/net/%s" % name, 16 * MIB)
        sockets.extend(parse_proc_net((data or b"").decode("ascii", "replace"), name))
    bundle.add_json("02-sockets/inet.json", sockets)
    data, _truncated = read_capped("/proc/net/unix", 16 * MIB)
    bundle.add_json("02-sockets/unix.json", parse_proc_unix((data or b"").decode("utf-8", "replace")))
    run(bundle, "02-sockets/ss-tunap.txt", ["ss", "-tunap"])


def collect_sessions(bundle, run):
    """3. Sessions: who is logged in now (utmp), recent logins (wtmp), last logins."""
    run(bundle, "03-sessions/who.txt", ["who", "--ips", "--all"])
    run(bundle, "03-sessions/last.txt", ["last", "-F", "-w", "-n", "50"])
    run(bundle, "03-sessions/lastb.txt", ["lastb", "-F", "-w", "-n", "50"])
    run(bundle, "03-sessions/lastlog.txt", ["lastlog"])
    for path in ("/var/run/utmp", "/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog"):
        if os.path.lexists(path):
            bundle.add_file("03-sessions/raw" + path, path)


def collect_logs(bundle, run, since_days):
    """4. Authentication logs: /var/log/auth.log* (rotated and compressed too, each capped)
    and the journal of sshd over the window."""
    try:
        names = sorted(os.listdir(AUTH_LOGS))
    except OSError:
        names = []
    for name in names:
        if name.startswith(AUTH_LOG_PREFIXES):
            bundle.add_file("04-logs/" + name, os.path.join(AUTH_LOGS, name), cap=bundle.caps["log_bytes"])
    run(bundle, "04-logs/journal-ssh.txt",
        ["journalctl", "--no-pager", "-o", "short-iso-precise", "-n", str(JOURNAL_LINES), "-u", "ssh", "-u", "sshd",
         "--since", "-%dd" % since_days], cap=bundle.caps["log_bytes"])
    run(bundle, "04-logs/journal-auth.txt",
        ["journalctl", "--no-pager", "-o", "short-iso-precise", "-n", str(JOURNAL_LINES),
         "SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10",
         "--since", "-%dd" % since_days], cap=bundle.caps["log_bytes"])


def _copy_tree(bundle, prefix, top, report):
    """Every regular file below ``top`` (or ``top`` itself) into the bundle, by the safe walk."""
    try:
        top_stat = os.lstat(top)
    except OSError:
        return
    if stat.S_ISREG(top_stat.st_mode):
        bundle.add_file(prefix + top, top)
        return
    for path, st in walk(top, report=report):
        if stat.S_ISREG(st.st_mode):
            bundle.add_file(prefix + path, path)


def collect_persistence(bundle, run, accounts):
    """5. Cron, systemd timers and units, loaded kernel modules, SSH authorized keys."""
    report = {}
    for top in CRON_PATHS:
        _copy_tree(bundle, "05-persistence/cron", top, report)
    run(bundle, "05-persistence/systemd-timers.txt", ["systemctl", "list-timers", "--all", "--no-pager"])
    run(bundle, "05-persistence/systemd-unit-files.txt", ["systemctl", "list-unit-files", "--no-pager"])
    run(bundle, "05-persistence/systemd-units.txt", ["systemctl", "list-units", "--all", "--no-pager"])
    for top in ("/etc/systemd/system", "/run/systemd/system"):
        _copy_tree(bundle, "05-persistence/units", top, report)
    bundle.add_file("05-persistence/proc-modules.txt", "/proc/modules")
    keys = []
    for acct in accounts:
        if not acct.home.startswith("/"):
            continue
        for path in authorized_keys_paths({"authorizedkeysfile": [DEFAULTS["authorizedkeysfile"]]},
                                          acct.name, acct.home, acct.uid):
            relative = os.path.relpath(path, acct.home)
            opened = open_below(acct.home, relative)
            if opened is None:
                continue
            dir_fd, leaf = opened
            try:
                member = "05-persistence/authorized_keys/%s/%s" % (acct.name, relative.replace("/", "_"))
                data, why = read_capped(leaf, bundle.caps["file_bytes"], dir_fd=dir_fd)
                if data is not None:
                    bundle.add(member, data)
                    keys.append({"account": acct.name, "path": path, "member": member,
                                 "keys": sum(1 for line in data.splitlines()
                                             if line.strip() and not line.strip().startswith(b"#"))})
                elif why not in ("No such file or directory",):
                    keys.append({"account": acct.name, "path": path, "error": why})
            finally:
                os.close(dir_fd)
    bundle.add_json("05-persistence/authorized_keys.json", keys)
    bundle.add_json("05-persistence/walk.json", report)


def _dot_entries(accounts):
    """(path, lstat) of every dot-file and dot-directory at the top of each home, once."""
    seen = set()
    for acct in accounts:
        home = acct.home
        if not home.startswith("/") or home in seen or home == "/":
            continue
        seen.add(home)
        try:
            names = sorted(os.listdir(home))
        except OSError:
            continue
        for name in names:
            if name.startswith(".") and name not in (".", ".."):
                path = os.path.join(home, name)
                try:
                    yield path, os.lstat(path)
                except OSError:
                    continue


def _dot_walk(accounts, report):
    for path, st in _dot_entries(accounts):
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(path, report=report)


def collect_recent(bundle, accounts, since_days, now):
    """6. Files changed (mtime or ctime) in the last ``since_days`` days under /etc and in
    the homes' dot-files: listed, and the regular ones copied (each capped)."""
    cutoff, report, listed = now - since_days * 86400, {}, []
    entries = list(walk("/etc", report=report))
    entries.extend(_dot_walk(accounts, report))
    for path, st in entries:
        if not recent(st, cutoff):
            continue
        item = {"path": path, "mode": stat.filemode(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                "size": st.st_size, "mtime": int(st.st_mtime), "ctime": int(st.st_ctime)}
        if len(listed) >= bundle.caps["recent_files"]:
            bundle.truncated.append({"member": "06-recent", "reason": "more than %d recent files"
                                     % bundle.caps["recent_files"]})
            break
        if stat.S_ISREG(st.st_mode) and bundle.add_file("06-recent/files" + path, path):
            item["member"] = "06-recent/files" + path
        listed.append(item)
    bundle.add_json("06-recent/changed.json", {"since_days": since_days, "cutoff": int(cutoff), "files": listed})
    bundle.add_json("06-recent/walk.json", report)


def collect_timeline(bundle, accounts):
    """7. A bodyfile (TSK 3.x, for mactime) of system paths and the homes' dot-files."""
    lines, report, limit = [], {}, bundle.caps["timeline_entries"]
    sources = [walk(top, report=report) for top in TIMELINE_PATHS if not os.path.islink(top)]
    sources.append(_dot_walk(accounts, report))
    for source in sources:
        for path, st in source:
            if len(lines) >= limit:
                bundle.truncated.append({"member": "07-timeline/bodyfile.txt",
                                         "reason": "stopped at %d entries" % limit})
                break
            lines.append(bodyfile_line(path, st))
        if len(lines) >= limit:
            break
    bundle.add("07-timeline/bodyfile.txt", "\n".join(lines) + "\n")
    bundle.add_json("07-timeline/walk.json", report)


def collect(staging, since_days, caps, run, now=None, passwd="/etc/passwd"):
    """Collect every step in order of volatility into ``<staging>/bundle.tar.gz``; returns
    the bundle (closed). ``run(bundle, member, argv, cap=None)`` runs a command into a member."""
    now = time.time() if now is None else now
    bundle = Bundle(os.path.join(staging, "bundle.tar.gz"), caps)
    try:
        data, _truncated = read_capped(passwd, 16 * MIB)
        accounts = _hostfiles.parse_passwd((data or b"").decode("utf-8", "surrogateescape"))
        bundle.step("processes", collect_processes)
        bundle.step("sockets", collect_sockets, run)
        bundle.step("sessions", collect_sessions, run)
        bundle.step("logs", collect_logs, run, since_days)
        bundle.step("persistence", collect_persistence, run, accounts)
        bundle.step("recent_files", collect_recent, accounts, since_days, now)
        bundle.step("timeline", collect_timeline, accounts)
        bundle.add_json("collection.json", {"timings": bundle.timings, "truncated": bundle.truncated,
                                            "errors": bundle.errors, "since_days": since_days,
                                            "collected_at": int(now), "caps": caps})
    finally:
        bundle.close()
    return bundle


def make_staging(parent):
    """The private staging directory (0700), made by mkdtemp."""
    return tempfile.mkdtemp(prefix="yoroi-evidence-", dir=parent)


def remove_staging(path):
    shutil.rmtree(path, ignore_errors=True)
