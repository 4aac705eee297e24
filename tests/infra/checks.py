"""End-state checks of the Yoroi baseline, by independent means (DESIGN invariant 7).

Each ``check_*`` function looks at one host after the fact and raises AssertionError,
with a message saying what is wrong, when the host does not meet the baseline. It
imports nothing from the roles, modules or module_utils: it logs in for real over SSH
(paramiko, from this machine to the host's port on 127.0.0.1), changes a password
through the real PAM stack (``chpasswd``), runs ``su`` as an unprivileged user, and
reads files with the distribution's own tools.

The same functions are used by the pytest suites in tests/infra (against lab hosts,
once unhardened where they must fail and once hardened where they must pass) and by
Molecule's verifier (molecule/*/tests), so there is one definition of "hardened".

``host`` is a testinfra host (any backend: the podman one is used here); ``ssh`` is an
:class:`SSHTarget` for real logins. Expected values are the baseline's documented
ones, written here on purpose rather than read from the roles' defaults.
"""

from __future__ import annotations

import shlex
import socket
import time
from dataclasses import dataclass

import paramiko

# The lab's seed data is the ground truth of what a neglected host holds (accounts,
# their lab-only passwords, bob's files and crontab). yoroi.lab.seed is the lab, not the
# collection: nothing of the roles or modules is imported.
from yoroi.lab.seed import BOB_CRONTAB, BOB_FILES, PASSWORDS  # noqa: E402

BOB_CRON_LINE = [line for line in BOB_CRONTAB.splitlines() if line and not line.startswith("#")][0]

ARCHIVE_DIR = "/var/backups/yoroi/accounts"
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")

# The baseline (README / role documentation), stated independently of the roles.
BASELINE = {
    "minlen": 14,
    "faillock_deny": 5,
    "faillock_unlock_time": 900,
    "pass_max_days": 365,
    "pass_min_days": 1,
    "pass_warn_age": 7,
    "encrypt_method": "YESCRYPT",
}


@dataclass(frozen=True)
class SSHTarget:
    """Where a host's sshd answers (a port published on loopback) and the key of the
    automation account."""

    address: str
    port: int
    key: str | None = None
    automation_user: str = "yoroi"


# --- real logins ------------------------------------------------------------------


def _login(ssh: SSHTarget, user: str, password: str | None = None, key: str | None = None) -> str | None:
    """Log in over SSH and run ``id -un``; the name printed, or None if refused.

    Only authentication/session refusals count as "refused"; a host that does not
    answer at all raises, so a dead sshd can never pass for a locked account.
    """
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            ssh.address, port=ssh.port, username=user, password=password, key_filename=key,
            look_for_keys=False, allow_agent=False, timeout=15, auth_timeout=30, banner_timeout=30,
        )
        _stdin, stdout, _stderr = client.exec_command("id -un", timeout=30)
        name = stdout.read().decode().strip()
        return name if stdout.channel.recv_exit_status() == 0 else None
    except paramiko.AuthenticationException:
        return None
    except paramiko.SSHException as exc:
        # sshd closing the session after auth (account expired, PAM account phase) is a
        # refusal; a banner/transport failure before auth is not.
        if client.get_transport() is not None and client.get_transport().remote_version:
            return None
        raise AssertionError("sshd at %s:%d did not answer: %s" % (ssh.address, ssh.port, exc))
    except (socket.error, EOFError) as exc:
        raise AssertionError("sshd at %s:%d did not answer: %s" % (ssh.address, ssh.port, exc))
    finally:
        client.close()


def password_login(ssh: SSHTarget, user: str, password: str) -> bool:
    return _login(ssh, user, password=password) == user


def key_login(ssh: SSHTarget) -> bool:
    return _login(ssh, ssh.automation_user, key=ssh.key) == ssh.automation_user


def su_login(host, user: str, password: str | None) -> bool:
    """``su USER`` started by an unprivileged user (nobody): PAM auth + account phases,
    the password read from stdin. True when the account's shell ran."""
    feed = "printf '%%s\\n' %s" % shlex.quote(password) if password is not None else "true"
    cmd = "%s | runuser -u nobody -- su -s /bin/sh %s -c 'echo su-ok'" % (feed, shlex.quote(user))
    return "su-ok" in host.run(cmd).stdout


def _shadow(host, user: str) -> list[str] | None:
    res = host.run("getent shadow %s", user)
    return res.stdout.strip().split(":") if res.rc == 0 else None


def password_matches(host, user: str, password: str) -> bool:
    """The account's stored hash (ignoring a lock mark) is the hash of ``password``:
    a refused login is then refused by a lock, not by a wrong password."""
    fields = _shadow(host, user)
    if not fields:
        return False
    script = 'my ($h,$p)=@ARGV; $h =~ s/^!+//; print((length($h) && crypt($p,$h) eq $h) ? "yes" : "no")'
    return host.run("perl -e %s %s %s", script, fields[1], password).stdout == "yes"


# --- accounts (ACC-001..005) -----------------------------------------------------


def _nobody_locked_out(host, ssh: SSHTarget, active: str = "alice") -> None:
    assert key_login(ssh), "the automation account %s cannot log in with its key" % ssh.automation_user
    assert password_login(ssh, active, PASSWORDS[active]), \
        "active account %s cannot log in over SSH with its password" % active


def check_stale_account_locked(host, ssh: SSHTarget, stale: str = "bob", active: str = "alice") -> None:
    """ACC-001 with policy lock: the stale account cannot log in with its right
    password, active and automation accounts still can, and nothing of it is lost."""
    _nobody_locked_out(host, ssh, active)
    assert host.user(stale).exists, "stale account %s was removed, but the policy is lock" % stale
    assert password_matches(host, stale, PASSWORDS[stale]), \
        "%s's stored password is not the seeded one: a refused login would prove nothing" % stale
    assert not password_login(ssh, stale, PASSWORDS[stale]), \
        "stale account %s still logs in over SSH with its password" % stale
    home = host.user(stale).home
    for rel, text in BOB_FILES.items():
        f = host.file("%s/%s" % (home, rel))
        assert f.exists and f.content_string == text, "%s's file %s was lost" % (stale, rel)
    assert BOB_CRON_LINE in host.run("crontab -u %s -l", stale).stdout, "%s's crontab was lost" % stale
    assert host.run("ls %s/%s-* 2>/dev/null" % (ARCHIVE_DIR, stale)).stdout.strip() == "", \
        "an archive of %s exists although the policy is lock" % stale


def check_stale_account_removed_with_archive(host, stale: str = "bob", archive_dir: str = ARCHIVE_DIR) -> None:
    """ACC-001 with policy remove: the account is gone, and one 0600 archive holds its
    home files and its crontab (extracted and compared on the host)."""
    listing = host.run("ls -1 %s/%s-* 2>/dev/null" % (shlex.quote(archive_dir), stale)).stdout.split()
    assert len(listing) == 1, "expected one archive of %s in %s, found %r" % (stale, archive_dir, listing)
    archive = listing[0]
    f = host.file(archive)
    assert f.mode == 0o600 and f.user == "root", "archive %s is mode %o owner %s" % (archive, f.mode, f.user)
    assert host.file(archive_dir).mode & 0o077 == 0, "archive dir %s is readable by others" % archive_dir
    assert not host.user(stale).exists, "%s still exists after removal" % stale
    assert not host.file("/home/%s" % stale).exists, "/home/%s is still there" % stale
    assert host.run("crontab -u %s -l", stale).rc != 0 or BOB_CRON_LINE not in host.run("crontab -u %s -l", stale).stdout
    tmp = host.run("mktemp -d").stdout.strip()
    try:
        res = host.run("tar -xzf %s -C %s", archive, tmp)
        assert res.rc == 0, "archive %s does not extract: %s" % (archive, res.stderr)
        for rel, text in BOB_FILES.items():
            found = host.run("find %s -type f -path %s", tmp, "*/" + rel).stdout.split()
            assert found, "archive %s lacks %s's %s" % (archive, stale, rel)
            assert host.file(found[0]).content_string == text, "archived %s differs" % rel
        cron = host.run("grep -rlF %s %s", BOB_CRON_LINE, tmp).stdout.split()
        assert cron, "archive %s lacks %s's crontab" % (archive, stale)
    finally:
        host.run("rm -rf %s", tmp)


def check_never_used_locked_breakglass_exempt(host, ssh: SSHTarget, unused: str = "carol",
                                              breakglass: str = "breakglass") -> None:
    """ACC-002: an old never-used account cannot log in; the break-glass account (also
    never used) is untouched: it logs in over SSH, its password is neither locked nor
    expired, and it keeps sudo."""
    _nobody_locked_out(host, ssh)
    fields = _shadow(host, breakglass)
    assert fields and not fields[1].startswith("!"), "break-glass account %s is locked" % breakglass
    assert fields[7] == "", "break-glass account %s has an expiry date (%s)" % (breakglass, fields[7])
    assert password_login(ssh, breakglass, PASSWORDS[breakglass]), \
        "break-glass account %s cannot log in over SSH" % breakglass
    assert "sudo" in host.user(breakglass).groups, "break-glass account %s lost sudo" % breakglass
    assert password_matches(host, unused, PASSWORDS[unused])
    assert not password_login(ssh, unused, PASSWORDS[unused]), \
        "never-used account %s still logs in over SSH" % unused


def check_empty_password_refused(host, user: str = "dave") -> None:
    """ACC-003: no login with an empty password (``su`` as nobody, empty input; sshd
    refuses empty passwords by itself, so SSH would prove nothing)."""
    fields = _shadow(host, user)
    assert fields is None or fields[1] != "", "%s has an empty password field" % user
    assert not su_login(host, user, None), "%s logs in (su) with an empty password" % user


def check_extra_uid0_locked(host, user: str = "toor") -> None:
    """ACC-004: a second UID 0 account cannot log in (su with its right password)."""
    assert password_matches(host, user, PASSWORDS[user])
    assert not su_login(host, user, PASSWORDS[user]), "UID 0 account %s logs in (su) with its password" % user


def check_system_account_no_shell(host, user: str = "backupsvc") -> None:
    """ACC-005: a system account has a non-login shell, so ``su USER -c`` runs nothing."""
    shell = host.user(user).shell
    assert shell in NOLOGIN_SHELLS, "system account %s has login shell %s" % (user, shell)
    assert "shell-ok" not in host.run("su %s -c 'echo shell-ok'", user).stdout, \
        "su %s -c runs a command" % user


# --- key-only users (ACC-002, PWD-013 and what the lockout guard cannot see) ---------


def add_key_user(host, user: str, password: str | None = None, last_change: str = "2019-03-01",
                 max_days: int = 99999) -> None:
    """An account that logs in with the lab's key (the automation account's authorized_keys),
    as an admin creates one: ``useradd`` leaves the password field ``!`` unless a password
    is given. ``last_change`` and ``max_days`` are its shadow aging (``chage``)."""
    assert host.run("id %s || useradd -m -s /bin/bash %s", user, user).rc == 0
    if password is not None:
        assert host.run("printf '%%s\\n' %s | chpasswd" % shlex.quote("%s:%s" % (user, password))).rc == 0
    home = host.user(user).home
    script = ("install -d -m 700 -o {u} -g {u} {h}/.ssh && "
              "install -m 600 -o {u} -g {u} /home/yoroi/.ssh/authorized_keys {h}/.ssh/authorized_keys && "
              "chage -d {d} -M {m} {u}").format(u=shlex.quote(user), h=shlex.quote(home), d=last_change, m=max_days)
    res = host.run(script)
    assert res.rc == 0, res.stderr


def user_key_login(ssh: SSHTarget, user: str) -> bool:
    """A key login of ``user`` running one command, without a terminal (as scp, rsync, git
    and scripts log in): True when the command ran."""
    return _login(ssh, user, key=ssh.key) == user


def check_key_user_keeps_access(ssh: SSHTarget, user: str) -> None:
    assert user_key_login(ssh, user), "%s can no longer log in with its SSH key" % user


# --- password policy (PWD-001..013) ----------------------------------------------


def _chpasswd(host, user: str, password: str):
    """A real PAM password change (chpasswd runs the common-password stack as root)."""
    return host.run("printf '%%s\\n' %s | chpasswd" % shlex.quote("%s:%s" % (user, password)))


class _KeepPassword:
    """Put the account's hash back afterwards (usermod -p bypasses PAM), so a check
    leaves the seeded password in place for the next one."""

    def __init__(self, host, user: str):
        self.host, self.user = host, user

    def __enter__(self):
        self.hash = _shadow(self.host, self.user)[1]
        return self

    def __exit__(self, *exc):
        self.host.run("usermod -p %s %s", self.hash, self.user)
        return False


# Strong-looking passwords that are in no dictionary; cut to length where needed.
_STRONG = "Tq7#vLp2!mRz9xWk4%Ns"
_STRONG_2 = "Hb3$yRd8@uQw5eJc6&Gt"


def check_weak_password_refused(host, user: str = "alice", minlen: int = BASELINE["minlen"]) -> None:
    """PWD-001..005: chpasswd (as root, so enforce_for_root is exercised) refuses a weak
    password and a mixed one of minlen-1 characters, and accepts a mixed one of minlen."""
    with _KeepPassword(host, user):
        res = _chpasswd(host, user, "abc12")
        assert res.rc != 0, "the weak password 'abc12' was accepted for %s" % user
        res = _chpasswd(host, user, "password12345678")
        assert res.rc != 0, "a dictionary password was accepted for %s" % user
        res = _chpasswd(host, user, _STRONG[: minlen - 1])
        assert res.rc != 0, "a %d-character password was accepted (minlen %d)" % (minlen - 1, minlen)
        res = _chpasswd(host, user, _STRONG[:minlen])
        assert res.rc == 0, "a strong %d-character password was refused: %s" % (minlen, res.stderr.strip())


def check_password_reuse_refused(host, user: str = "alice") -> None:
    """PWD-006: a password used recently cannot be set again."""
    with _KeepPassword(host, user):
        for password in (_STRONG, _STRONG_2):
            res = _chpasswd(host, user, password)
            assert res.rc == 0, "a strong password was refused: %s" % res.stderr.strip()
        res = _chpasswd(host, user, _STRONG)
        assert res.rc != 0, "%s could set a password used two changes ago again" % user


def check_faillock(host, ssh: SSHTarget, user: str = "alice", deny: int = BASELINE["faillock_deny"],
                   unlock_time: int = BASELINE["faillock_unlock_time"], wait_for_unlock: bool = True) -> None:
    """PWD-007/008: after ``deny`` wrong SSH passwords the right one is refused, faillock
    lists the failures, and (when waited for) the account unlocks after unlock_time."""
    password = PASSWORDS[user]
    host.run("faillock --user %s --reset", user)
    try:
        assert password_login(ssh, user, password), "%s cannot log in before the test" % user
        for dummy in range(deny):
            assert not password_login(ssh, user, password + "-wrong")
        assert not password_login(ssh, user, password), \
            "%s still logs in with the right password after %d failed logins" % (user, deny)
        refused_at = time.monotonic()
        tally = host.run("faillock --user %s", user).stdout
        failures = [line for line in tally.splitlines() if line.strip().endswith(" V")]
        assert len(failures) >= deny, "faillock lists %d failures for %s:\n%s" % (len(failures), user, tally)
        if wait_for_unlock:
            time.sleep(max(0.0, unlock_time + 2 - (time.monotonic() - refused_at)))
            assert password_login(ssh, user, password), \
                "%s is still locked %d s after the last failure (unlock_time %d)" % (user, unlock_time + 2, unlock_time)
    finally:
        host.run("faillock --user %s --reset", user)


def check_faillock_spares_breakglass(host, ssh: SSHTarget, breakglass: str = "breakglass", user: str = "alice",
                                     deny: int = BASELINE["faillock_deny"]) -> None:
    """PWD-007 and the break-glass account: more than ``deny`` wrong SSH passwords for the
    break-glass account do not lock it (its right password still logs in, faillock holds
    no failure for it), while the same number locks an ordinary account, so faillock is
    live on the host."""
    for name in (breakglass, user):
        host.run("faillock --user %s --reset", name)
    try:
        for dummy in range(deny + 1):
            assert not password_login(ssh, breakglass, PASSWORDS[breakglass] + "-wrong")
        # the tally, not only the next login: a short unlock_time could end a lock early
        tally = host.run("faillock --user %s", breakglass).stdout
        counted = [line for line in tally.splitlines() if line.strip().endswith(" V")]
        assert not counted, "faillock counted %d wrong passwords of break-glass account %s (it can be locked out):\n%s" % (
            len(counted), breakglass, tally)
        assert password_login(ssh, breakglass, PASSWORDS[breakglass]), \
            "break-glass account %s is locked out after %d wrong passwords" % (breakglass, deny + 1)
        for dummy in range(deny):
            assert not password_login(ssh, user, PASSWORDS[user] + "-wrong")
        assert not password_login(ssh, user, PASSWORDS[user]), \
            "%s still logs in with the right password after %d failed logins" % (user, deny)
    finally:
        for name in (breakglass, user):
            host.run("faillock --user %s --reset", name)


def _login_defs(host) -> dict:
    values = {}
    for line in host.file("/etc/login.defs").content_string.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and len(parts) >= 2:
            values[parts[0]] = parts[1]
    return values


def check_password_aging(host, user: str = "alice", max_days: int = BASELINE["pass_max_days"],
                         min_days: int = BASELINE["pass_min_days"], warn_age: int = BASELINE["pass_warn_age"],
                         encrypt_method: str = BASELINE["encrypt_method"]) -> None:
    """PWD-009..013: login.defs sets the aging for new accounts and the hash method, and
    an existing human account carries the aging too (``chage -l``)."""
    defs = _login_defs(host)
    expected = {"PASS_MAX_DAYS": str(max_days), "PASS_MIN_DAYS": str(min_days),
                "PASS_WARN_AGE": str(warn_age), "ENCRYPT_METHOD": encrypt_method}
    wrong = {k: defs.get(k) for k, v in expected.items() if defs.get(k) != v}
    assert not wrong, "login.defs has %r, expected %r" % (wrong, expected)
    chage = {}
    for line in host.run("LC_ALL=C chage -l %s", user).stdout.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            chage[key.strip()] = value.strip()
    got = (chage.get("Maximum number of days between password change"),
           chage.get("Minimum number of days between password change"),
           chage.get("Number of days of warning before password expires"))
    assert got == (str(max_days), str(min_days), str(warn_age)), \
        "chage -l %s shows max/min/warn %r, expected %r" % (user, got, (max_days, min_days, warn_age))


# --- SSH access and TOTP MFA (SSH-001, SSH-010, MFA-001..003, GRD-001) ---------------


def keyboard_interactive_login(ssh: SSHTarget, user: str, password: str | None = None,
                               code: str | None = None) -> tuple[bool, list[str]]:
    """A real keyboard-interactive login, as a person at a terminal makes it: a prompt
    that asks for a code gets ``code`` (empty when None), any other gets ``password``.
    Returns (authenticated, the prompts sshd/PAM showed)."""
    sock = socket.create_connection((ssh.address, ssh.port), timeout=15)
    transport = paramiko.Transport(sock)
    prompts: list[str] = []

    def answer(_title, _instructions, fields):
        prompts.extend(text.strip() for text, _echo in fields)
        return [(code or "") if "code" in text.lower() else (password or "") for text, _echo in fields]

    try:
        transport.start_client(timeout=15)
        try:
            transport.auth_interactive(user, answer)
        except (paramiko.AuthenticationException, paramiko.BadAuthenticationType):
            return False, prompts
        return transport.is_authenticated(), prompts
    finally:
        transport.close()


def login_banner(ssh: SSHTarget, user: str = "nobody") -> str:
    """The banner sshd sends before authentication ('' when there is none)."""
    sock = socket.create_connection((ssh.address, ssh.port), timeout=15)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=15)
        try:
            transport.auth_none(user)  # the banner comes with the first auth reply
        except (paramiko.AuthenticationException, paramiko.BadAuthenticationType):
            pass
        text = transport.get_banner() or b""
        return text.decode() if isinstance(text, bytes) else text
    finally:
        transport.close()


def check_root_login_refused(host, ssh: SSHTarget, password: str) -> None:
    """SSH-001: root cannot log in over SSH with its right password, while the
    automation account still gets in with its key."""
    assert password_matches(host, "root", password), \
        "root's stored password is not the one tried: a refused login would prove nothing"
    assert key_login(ssh), "the automation account %s cannot log in with its key" % ssh.automation_user
    assert not password_login(ssh, "root", password), "root logs in over SSH with its password"


def check_banner_shows(ssh: SSHTarget, text: str) -> None:
    """SSH-010: the pre-login banner names the site's contact."""
    banner = login_banner(ssh)
    assert text in banner, "the SSH banner does not show %r: %r" % (text, banner)


def check_totp_required(ssh: SSHTarget, user: str, password: str, otpauth_uri: str) -> None:
    """MFA-001..003: ``user`` logs in only with password AND a current TOTP code computed
    from the otpauth URI handed out at enrolment; the password alone is refused, and so is
    a code already used. Three attempts in all: the enrolment's RATE_LIMIT is 3 per 30 s."""
    import pyotp

    totp = pyotp.parse_uri(otpauth_uri)
    # paramiko falls back to keyboard-interactive and gives the password at every prompt
    assert not password_login(ssh, user, password), "%s logs in with the password alone" % user
    # a code that stays valid for a while, so that the replay below meets the same one
    while 30 - time.time() % 30 < 8:
        time.sleep(1)
    code = totp.now()
    ok, prompts = keyboard_interactive_login(ssh, user, password, code)
    assert ok, "%s is refused with password and the right code (prompts %r)" % (user, prompts)
    assert any("code" in p.lower() for p in prompts), "no code was asked: %r" % prompts
    ok, prompts = keyboard_interactive_login(ssh, user, password, code)
    assert not ok, "%s got in again with a code already used" % user


GUARD_DIR = "/var/lib/yoroi/guard"


def check_guards_confirmed(host, guard_dir: str = GUARD_DIR) -> None:
    """GRD-001: every guarded change was confirmed by a fresh login (each guard's state
    file says ``confirmed``), and no guard timer is left to roll anything back."""
    states = host.run("for d in %s/*/; do cat \"$d/state\"; echo; done", guard_dir).stdout.split()
    assert states and set(states) == {"confirmed"}, "lockout guards in %s: %r" % (guard_dir, states)
    timers = host.run("systemctl list-timers --all --no-pager").stdout
    left = [line for line in timers.splitlines() if "yoroi-guard-" in line]
    assert not left, "guard timers left: %r" % left


def ghost_inventory(lab_inventory_path, directory):
    """A copy of a lab's inventory, written to ``directory/inventory.yml``, with a host
    `ghost` at a loopback port nothing listens on (an unreachable host); returns its path."""
    import yaml

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    inventory = yaml.safe_load(lab_inventory_path.read_text())
    hosts = inventory["all"]["children"]["lab"]["hosts"]
    ghost = dict(next(iter(hosts.values())))
    ghost.update(ansible_port=closed_port, yoroi_lab_container="none",
                 ansible_ssh_common_args=ghost["ansible_ssh_common_args"] + " -o ConnectTimeout=5")
    hosts["ghost"] = ghost
    path = directory / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path
