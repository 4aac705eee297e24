"""Seed a lab host so that it looks like a neglected real Debian server.

This module is standard-library only and runs *inside* the container: the
controller pipes this file's source, followed by a call to :func:`main` with a
JSON config, into ``podman exec -i CONTAINER python3 -``. Nothing here is baked
into the image, so every ``yoroi lab up`` gives a fresh neglected host. The
record encoders are plain functions so that unit tests run them on the
controller too.

Accounts (passwords are lab-only and public)
--------------------------------------------
=============  ===========================================================
yoroi          automation account Ansible connects as: UID >= 1000,
               /bin/bash, password field ``*`` (no password, not locked
               for sshd), the lab's public key in ~/.ssh/authorized_keys,
               ``/etc/sudoers.d/yoroi`` (0440): ``NOPASSWD: ALL``.
breakglass     human, password ``Breakglass-Lab-2026!``, group ``sudo``.
alice          human, ``Alice-Lab-2026!``, last login 2 days ago (and one
               30 days ago).
bob            human, ``Bob-Lab-2026!``, last login 400 days ago (and one
               430 days ago); files in ~bob (notes.txt, projects/report.csv,
               bin/sync.sh) and a crontab (``crontab -u bob -l``).
carol          human, ``Carol-Lab-2026!``, never logged in: no login record
               anywhere; password last changed 2019-03-01 (``chage -d``).
dave           human, EMPTY password field in /etc/shadow (``passwd -d``).
toor           second UID 0 account (``useradd -o -u 0 -g 0``), password
               ``Toor-Lab-2026!``, home /root.
backupsvc      system account (``useradd --system``, UID < 1000) with login
               shell /bin/bash.
mfa-users      an empty group: an MFA rollout decided on, nobody enrolled yet
               (the mfa role reports a missing MFA group as drift).
=============  ===========================================================

Debian's password settings are left alone: no libpam-pwquality, login.defs
and /etc/pam.d untouched, sshd_config untouched (password logins allowed).

Login records: which files, which formats
-----------------------------------------
Times are seeded relative to the container's clock (which is the host's).

bookworm (Debian 12)
    ``/var/log/lastlog`` -- binary, sparse, one ``struct lastlog`` per UID at
    offset ``uid * 292``, little-endian on x86_64::

        int32_t ll_time;        /* seconds since the epoch, 0 = never */
        char    ll_line[32];    /* e.g. "pts/0" */
        char    ll_host[256];   /* remote host */

    Read by ``lastlog`` (package ``login``); written by sshd and pam_lastlog.

    ``/var/log/wtmp`` -- binary, append-only sequence of ``struct utmp``
    (384 bytes on x86_64, glibc ``<utmp.h>``)::

        int16_t ut_type;        /* 7 USER_PROCESS, 8 DEAD_PROCESS, 2 BOOT_TIME, 1 RUN_LVL */
        int16_t pad;
        int32_t ut_pid;
        char    ut_line[32];    /* "pts/0" */
        char    ut_id[4];       /* "ts/0" */
        char    ut_user[32];
        char    ut_host[256];
        int16_t e_termination, e_exit;
        int32_t ut_session;
        int32_t tv_sec, tv_usec;   /* ut_tv */
        int32_t ut_addr_v6[4];     /* IPv4 in [0], network byte order */
        char    unused[20];

    Read by ``last -f /var/log/wtmp`` (util-linux). The seeded sessions are
    USER_PROCESS + DEAD_PROCESS pairs, placed before the boot records so the
    file stays in time order.

trixie (Debian 13)
    ``/var/lib/lastlog/lastlog2.db`` -- SQLite, written by ``pam_lastlog2``
    (package ``libpam-lastlog2``, in common-session), read by ``lastlog2``
    (package ``lastlog2``). The old ``/var/log/lastlog`` is renamed
    ``/var/log/lastlog.migrated`` by ``lastlog2-import.service``. Schema (as
    created by the real PAM module)::

        CREATE TABLE Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER,
                              TTY TEXT, RemoteHost TEXT, Service TEXT)

    ``Time`` is seconds since the epoch; an sshd login stores TTY ``ssh``,
    RemoteHost the client address and Service ``sshd``. A user with no row
    has never logged in.

    ``/var/log/wtmp.db`` (``/var/lib/wtmpdb/wtmp.db`` is a symlink to it) --
    SQLite, written by sshd (linked with libwtmpdb0) and by ``pam_wtmpdb``
    (``skip_if=sshd``), read by ``wtmpdb last`` and ``last`` (which on trixie
    is wtmpdb's, util-linux's last is gone). Schema (as created by wtmpdb)::

        CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, Type INTEGER,
                          User TEXT NOT NULL, Login INTEGER, Logout INTEGER,
                          TTY TEXT, RemoteHost TEXT, Service TEXT) STRICT

    ``Type`` 1 = BOOT_TIME (User ``reboot``), 3 = USER_PROCESS; ``Login`` and
    ``Logout`` are MICROseconds since the epoch (Logout NULL = still
    running). sshd rows have TTY ``pts/N`` and Service NULL.

    ``/var/log/wtmp`` (utmp format, as on bookworm) still exists and sshd
    still appends to it, but no trixie tool reads it; it is seeded with the
    same sessions so both views agree.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time

DAY = 86400

# --- record formats ---------------------------------------------------------

LASTLOG_FORMAT = "<i32s256s"
LASTLOG_SIZE = struct.calcsize(LASTLOG_FORMAT)  # 292
UTMP_FORMAT = "<hhi32s4s32s256shhiii4i20s"
UTMP_SIZE = struct.calcsize(UTMP_FORMAT)  # 384

EMPTY, RUN_LVL, BOOT_TIME, NEW_TIME, OLD_TIME = 0, 1, 2, 3, 4
INIT_PROCESS, LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS = 5, 6, 7, 8

WTMPDB_BOOT_TIME, WTMPDB_USER_PROCESS = 1, 3

LASTLOG_PATH = "/var/log/lastlog"
WTMP_PATH = "/var/log/wtmp"
LASTLOG2_DB = "/var/lib/lastlog/lastlog2.db"
WTMPDB_DB = "/var/log/wtmp.db"
WTMPDB_LINK = "/var/lib/wtmpdb/wtmp.db"

LASTLOG2_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, "
    "TTY TEXT, RemoteHost TEXT, Service TEXT)"
)
WTMPDB_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, "
    "User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY TEXT, "
    "RemoteHost TEXT, Service TEXT) STRICT"
)

# --- what gets seeded -------------------------------------------------------

PASSWORDS = {
    "breakglass": "Breakglass-Lab-2026!",
    "alice": "Alice-Lab-2026!",
    "bob": "Bob-Lab-2026!",
    "carol": "Carol-Lab-2026!",
    "toor": "Toor-Lab-2026!",
}

# (user, days ago, session length in minutes, tty, remote host). The hosts
# are documentation addresses (RFC 5737): strings in records, never contacted.
SESSIONS = (
    ("bob", 430, 25, "pts/0", "198.51.100.23"),
    ("bob", 400, 40, "pts/0", "198.51.100.23"),
    ("alice", 30, 55, "pts/1", "198.51.100.42"),
    ("alice", 2, 35, "pts/0", "198.51.100.42"),
)
LAST_LOGIN_DAYS = {"alice": 2, "bob": 400}
NEVER_LOGGED_IN = ("carol", "dave", "breakglass", "toor", "backupsvc")
CAROL_LAST_CHANGE = "2019-03-01"
PASSWORD_CHANGED_DAYS_AGO = {"alice": 120, "bob": 610, "breakglass": 300}

BOB_FILES = {
    "notes.txt": "Q3 migration: move reports to the new share.\nAsk alice about the VPN.\n",
    "projects/report.csv": "date,host,status\n2024-09-01,web1,ok\n2024-09-02,web2,failed\n",
    "bin/sync.sh": "#!/bin/sh\n# nightly copy of bob's reports\ncp -a \"$HOME/projects\" /tmp/bob-projects-copy\n",
}
BOB_CRONTAB = "# m h dom mon dow command\n15 3 * * * /home/bob/bin/sync.sh >/dev/null 2>&1\n"


def _fixed(text: str, size: int) -> bytes:
    return text.encode()[:size].ljust(size, b"\0")


def encode_lastlog(ll_time: int, line: str = "", host: str = "") -> bytes:
    """One ``struct lastlog`` record (292 bytes)."""
    return struct.pack(LASTLOG_FORMAT, int(ll_time), _fixed(line, 32), _fixed(host, 256))


def decode_lastlog(data: bytes) -> tuple[int, str, str]:
    t, line, host = struct.unpack(LASTLOG_FORMAT, data[:LASTLOG_SIZE])
    return t, line.rstrip(b"\0").decode(), host.rstrip(b"\0").decode()


def _ipv4_words(host: str) -> tuple[int, int, int, int]:
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return (0, 0, 0, 0)
    return (struct.unpack("<i", packed)[0], 0, 0, 0)


def encode_utmp(
    ut_type: int,
    user: str,
    line: str,
    host: str,
    tv_sec: int,
    pid: int = 0,
    tv_usec: int = 0,
    ut_id: str | None = None,
) -> bytes:
    """One ``struct utmp`` record (384 bytes, x86_64 layout)."""
    if ut_id is None:
        ut_id = line[-4:]  # what login/sshd use: "pts/0" -> "ts/0"
    return struct.pack(
        UTMP_FORMAT,
        ut_type, 0, pid,
        _fixed(line, 32), _fixed(ut_id, 4), _fixed(user, 32), _fixed(host, 256),
        0, 0, 0,
        int(tv_sec), int(tv_usec),
        *_ipv4_words(host),
        b"\0" * 20,
    )


def decode_utmp(data: bytes) -> dict:
    f = struct.unpack(UTMP_FORMAT, data[:UTMP_SIZE])

    def s(raw):
        return raw.rstrip(b"\0").decode(errors="replace")
    return {
        "type": f[0], "pid": f[2], "line": s(f[3]), "id": s(f[4]), "user": s(f[5]),
        "host": s(f[6]), "tv_sec": f[10], "tv_usec": f[11],
    }


def session_times(now: float, days_ago: int, minutes: int) -> tuple[int, int]:
    login = int(now) - days_ago * DAY
    login -= login % 60  # whole minutes read better in `last`
    return login, login + minutes * 60


def wtmp_records(now: float, sessions=SESSIONS, pid_base: int = 2000) -> bytes:
    """USER_PROCESS/DEAD_PROCESS pairs for ``sessions``, oldest first."""
    out = []
    for i, (user, days, minutes, tty, host) in enumerate(
        sorted(sessions, key=lambda s: -s[1])
    ):
        login, logout = session_times(now, days, minutes)
        pid = pid_base + i
        out.append(encode_utmp(USER_PROCESS, user, tty, host, login, pid=pid))
        out.append(encode_utmp(DEAD_PROCESS, "", tty, "", logout, pid=pid))
    return b"".join(out)


def latest_sessions(now: float, sessions=SESSIONS) -> dict[str, tuple[int, str, str]]:
    """user -> (login time, tty, host) of the most recent seeded session."""
    latest: dict[str, tuple[int, str, str]] = {}
    for user, days, minutes, tty, host in sessions:
        login = session_times(now, days, minutes)[0]
        if user not in latest or login > latest[user][0]:
            latest[user] = (login, tty, host)
    return latest


def wtmpdb_rows(now: float, sessions=SESSIONS) -> list[tuple]:
    """(Type, User, Login us, Logout us, TTY, RemoteHost, Service) rows."""
    rows = []
    for user, days, minutes, tty, host in sorted(sessions, key=lambda s: -s[1]):
        login, logout = session_times(now, days, minutes)
        rows.append((WTMPDB_USER_PROCESS, user, login * 10**6, logout * 10**6, tty, host, None))
    return rows


def lastlog2_rows(now: float, sessions=SESSIONS) -> list[tuple]:
    """(Name, Time s, TTY, RemoteHost, Service) rows, as pam_lastlog2 writes for sshd."""
    return [
        (user, login, "ssh", host, "sshd")
        for user, (login, _tty, host) in sorted(latest_sessions(now, sessions).items())
    ]


# --- running inside the container -------------------------------------------


def _run(*argv: str, input: str | None = None) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _useradd(name: str, *opts: str) -> None:
    if not _user_exists(name):
        _run("useradd", *opts, name)


def _chown_tree(path: str, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)


def _age_tree(path: str, when: int) -> None:
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (when, when), follow_symlinks=False)
    os.utime(path, (when, when))


def create_accounts(pubkey: str, now: float) -> None:
    import pwd

    _useradd("breakglass", "-m", "-s", "/bin/bash", "-c", "Break-glass admin", "-G", "sudo")
    _useradd("alice", "-m", "-s", "/bin/bash", "-c", "Alice Example")
    _useradd("bob", "-m", "-s", "/bin/bash", "-c", "Bob Example")
    _useradd("carol", "-m", "-s", "/bin/bash", "-c", "Carol Example")
    _useradd("dave", "-m", "-s", "/bin/bash", "-c", "Dave Example")
    _useradd("backupsvc", "--system", "-m", "-d", "/var/lib/backupsvc", "-s", "/bin/bash",
             "-c", "backup service")
    _useradd("toor", "-o", "-u", "0", "-g", "0", "-M", "-d", "/root", "-s", "/bin/bash",
             "-c", "toor")
    _useradd("yoroi", "-m", "-s", "/bin/bash", "-c", "Yoroi automation")
    if subprocess.run(["getent", "group", "mfa-users"], capture_output=True, check=False).returncode != 0:
        _run("groupadd", "mfa-users")

    _run("chpasswd", input="".join(f"{u}:{p}\n" for u, p in PASSWORDS.items()))
    _run("passwd", "-d", "dave")
    _run("usermod", "-p", "*", "yoroi")
    _run("chage", "-d", CAROL_LAST_CHANGE, "carol")
    for user, days in PASSWORD_CHANGED_DAYS_AGO.items():
        _run("chage", "-d", time.strftime("%Y-%m-%d", time.gmtime(now - days * DAY)), user)

    # yoroi: key login + passwordless sudo
    y = pwd.getpwnam("yoroi")
    ssh_dir = os.path.join(y.pw_dir, ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    ak = os.path.join(ssh_dir, "authorized_keys")
    with open(ak, "w") as fh:
        fh.write(pubkey.strip() + "\n")
    os.chmod(ssh_dir, 0o700)
    os.chmod(ak, 0o600)
    _chown_tree(ssh_dir, y.pw_uid, y.pw_gid)
    sudoers = "/etc/sudoers.d/yoroi"
    tmp = sudoers + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("# yoroi automation account (lab)\nyoroi ALL=(ALL:ALL) NOPASSWD: ALL\n")
    os.chmod(tmp, 0o440)
    _run("visudo", "-c", "-q", "-f", tmp)
    os.rename(tmp, sudoers)

    # bob: files to archive and a crontab
    b = pwd.getpwnam("bob")
    for rel, text in BOB_FILES.items():
        path = os.path.join(b.pw_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
        if rel.startswith("bin/"):
            os.chmod(path, 0o755)
    _chown_tree(b.pw_dir, b.pw_uid, b.pw_gid)
    _run("crontab", "-u", "bob", "-", input=BOB_CRONTAB)
    _age_tree(b.pw_dir, int(now) - 405 * DAY)


def seed_wtmp(now: float) -> None:
    """Put the seeded sessions before whatever the boot already wrote."""
    existing = b""
    if os.path.exists(WTMP_PATH):
        with open(WTMP_PATH, "rb") as fh:
            existing = fh.read()
    with open(WTMP_PATH + ".yoroi-tmp", "wb") as fh:
        fh.write(wtmp_records(now) + existing)
    os.chmod(WTMP_PATH + ".yoroi-tmp", 0o664)
    _chown_utmp(WTMP_PATH + ".yoroi-tmp")
    os.rename(WTMP_PATH + ".yoroi-tmp", WTMP_PATH)


def _chown_utmp(path: str) -> None:
    import grp

    try:
        os.chown(path, 0, grp.getgrnam("utmp").gr_gid)
    except KeyError:
        pass


def seed_lastlog(now: float) -> None:
    import pwd

    fd = os.open(LASTLOG_PATH, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        for user, (login, tty, host) in latest_sessions(now).items():
            uid = pwd.getpwnam(user).pw_uid
            os.pwrite(fd, encode_lastlog(login, tty, host), uid * LASTLOG_SIZE)
    finally:
        os.close(fd)
    _chown_utmp(LASTLOG_PATH)


def seed_lastlog2(now: float) -> None:
    import sqlite3

    os.makedirs(os.path.dirname(LASTLOG2_DB), exist_ok=True)
    con = sqlite3.connect(LASTLOG2_DB)
    with con:
        con.execute(LASTLOG2_SCHEMA)
        con.executemany(
            "INSERT OR REPLACE INTO Lastlog2(Name, Time, TTY, RemoteHost, Service) "
            "VALUES (?, ?, ?, ?, ?)",
            lastlog2_rows(now),
        )
    con.close()


def seed_wtmpdb(now: float) -> None:
    import sqlite3

    path = os.path.realpath(WTMPDB_LINK) if os.path.exists(WTMPDB_LINK) else WTMPDB_DB
    con = sqlite3.connect(path)
    with con:
        con.execute(WTMPDB_SCHEMA)
        con.executemany(
            "INSERT INTO wtmp(Type, User, Login, Logout, TTY, RemoteHost, Service) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            wtmpdb_rows(now),
        )
    con.close()


def login_record_style() -> str:
    """``lastlog2`` when the host keeps sqlite login records (trixie), else ``lastlog``."""
    if os.path.exists("/usr/bin/lastlog2") or os.path.exists("/usr/bin/wtmpdb"):
        return "sqlite"
    return "legacy"


def apt_caches() -> None:
    """apt's binary package caches, as a server has them after `apt update` (the image,
    like Debian's container images, has none): without them every apt simulation, the
    patching audit's included, rebuilds them in memory first (0.6 s instead of 0.25)."""
    subprocess.run(["apt-cache", "gencaches"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def main(config: dict) -> dict:
    now = float(config.get("now") or time.time())
    create_accounts(config["pubkey"], now)
    apt_caches()
    style = login_record_style()
    seed_wtmp(now)
    if style == "sqlite":
        seed_lastlog2(now)
        seed_wtmpdb(now)
    else:
        seed_lastlog(now)
    import pwd

    result = {
        "style": style,
        "now": int(now),
        "uids": {u: pwd.getpwnam(u).pw_uid for u in
                 ("yoroi", "breakglass", "alice", "bob", "carol", "dave", "toor", "backupsvc")},
        "last_login": {u: session[0] for u, session in latest_sessions(now).items()},
    }
    return result


def script(config: dict) -> str:
    """The Python program piped into ``python3 -`` inside the container."""
    with open(__file__) as fh:
        source = fh.read()
    return (
        source
        + "\n\nif __name__ == '__main__':\n"
        + f"    print(json.dumps(main(json.loads({json.dumps(json.dumps(config))}))))\n"
    )


if __name__ == "__main__" and len(sys.argv) > 1:  # manual use: seed.py CONFIG.json
    with open(sys.argv[1]) as fh:
        print(json.dumps(main(json.load(fh))))
