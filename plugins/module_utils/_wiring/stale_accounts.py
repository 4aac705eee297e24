# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.stale_accounts: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/stale_accounts.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import sqlite3
import tarfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _accounts as acc
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils._files import read_text

PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"
LOGIN_DEFS = "/etc/login.defs"
SHELLS = "/etc/shells"
LASTLOG = "/var/log/lastlog"
WTMP = "/var/log/wtmp"
LASTLOG2_DB = "/var/lib/lastlog/lastlog2.db"
WTMPDB_DB = "/var/lib/wtmpdb/wtmp.db"
CRONTABS = "/var/spool/cron/crontabs"
MAIL = "/var/mail"
ACCOUNT_DATABASES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")


def _read_wtmp(path):
    try:
        with open(path, "rb") as handle:
            return acc.read_wtmp(handle)
    except (FileNotFoundError, PermissionError):
        return {}


def _read_lastlog(path, uids):
    """{uid: (epoch, evidence)} for the UIDs asked, read by seeking (lastlog is sparse)."""
    try:
        with open(path, "rb") as handle:
            return acc.read_lastlog(handle, uids, os.fstat(handle.fileno()).st_size)
    except (FileNotFoundError, PermissionError):
        return {}


def _sqlite_logins(path, query, scale):
    """{user: (epoch, evidence)} from a login database, read-only; {} when absent.

    lastlog2: Lastlog2(Name, Time in seconds). wtmpdb: wtmp(Type, User, Login in
    microseconds), where Type 3 is a user login and Type 1 a boot.
    """
    if not os.path.exists(path):
        return {}
    logins = {}
    try:
        connection = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            for user, when in connection.execute(query):
                if user and when:
                    logins[user] = (int(when) // scale, "%s" % os.path.basename(path))
        finally:
            connection.close()
    except sqlite3.Error:
        return {}
    return logins


def read_state(module):
    shadow_text = read_text(SHADOW)
    if shadow_text is None or not os.access(SHADOW, os.R_OK):
        module.fail_json(msg="cannot read %s: run as root (become: true)" % SHADOW, findings=[])
    accounts = acc.join_shadow(acc.parse_passwd(read_text(PASSWD, "")), acc.parse_shadow(shadow_text))
    login_defs = acc.parse_login_defs(read_text(LOGIN_DEFS, ""))
    shells = acc.parse_shells(read_text(SHELLS, ""))
    by_uid = _read_lastlog(LASTLOG, [a.uid for a in accounts])
    sources = [
        _read_wtmp(WTMP),
        _sqlite_logins(LASTLOG2_DB, "SELECT Name, Time FROM Lastlog2", 1),
        _sqlite_logins(WTMPDB_DB, "SELECT User, MAX(Login) FROM wtmp WHERE Type = 3 GROUP BY User", 1000000),
    ]
    logins = acc.merge_logins(accounts, by_uid, sources)
    return accounts, login_defs, shells, logins


def _journal(module, argv):
    journalctl = module.get_bin_path("journalctl")
    if journalctl is None:
        return None, ""
    rc, out, err = module.run_command([journalctl, "-q", "--no-pager", "-o", "short-unix"] + argv, environ_update={"LC_ALL": "C"})
    return rc, out if rc == 0 else (err or "")


def read_sshd_log(module, since):
    """({user: (epoch, evidence)} of sshd's logins since ``since``, does the journal reach back that far).

    sshd logs every login, with or without a terminal; lastlog and wtmp only those with one.
    """
    rc, text = _journal(module, ["--until", "@%d" % since, "-n", "1"])
    covers = rc == 0 and any(line[:1].isdigit() for line in text.splitlines())
    matches = ["--since", "@%d" % since, "_COMM=sshd", "_COMM=sshd-session"]
    rc, text = _journal(module, matches + ["--grep", "^Accepted "])
    if rc not in (0, None) and "pattern" in text.lower():
        rc, text = _journal(module, matches)  # a journalctl built without PCRE2
    return acc.parse_sshd_accepted(text if rc == 0 else ""), covers


def archive_account(module, account, archive_dir):
    """Archive home, crontab and mail of an account; return the archive path."""
    if not os.path.isdir(archive_dir):
        os.makedirs(archive_dir, mode=0o700)
    os.chmod(archive_dir, 0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = os.path.join(archive_dir, "%s-%s.tar.gz" % (account.name, stamp))
    # Written under a temporary name and renamed once read back: an interrupted run
    # leaves no archive that looks complete.
    partial = path + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            if account.home and account.home != "/" and os.path.isdir(account.home):
                tar.add(account.home, arcname="home")
            for label, spool in (("crontab", CRONTABS), ("mail", MAIL)):
                candidate = os.path.join(spool, account.name)
                if os.path.isfile(candidate):
                    tar.add(candidate, arcname=label)
        with tarfile.open(partial, "r:gz") as tar:
            tar.getmembers()
        os.rename(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


def prepare_archives(module, accounts, archive_dir):
    """Archive every account that is to be removed: {name: (archive path, None) or (None, error)}.

    Runs before the lockout guard is armed: archiving takes as long as the homes are big,
    and the guard's timer must not be running (and able to put /etc/passwd back) while
    the accounts are not yet being changed.
    """
    prepared = {}
    for account in accounts:
        if account.name in prepared:
            continue
        try:
            prepared[account.name] = (archive_account(module, account, archive_dir), None)
        except (OSError, tarfile.TarError) as exc:
            prepared[account.name] = (None, str(exc))
    return prepared


def carry_out(module, action, account, archive_dir, nologin_shell, prepared=None):
    """Run one action; return (ok, evidence, archive_path).

    A removal uses the archive ``prepared`` for it (see prepare_archives), or writes one.
    """
    if action == "remove":
        archive, error = (prepared or {}).get(account.name) or (None, None)
        if archive is None and error is None:
            archive, error = prepare_archives(module, [account], archive_dir)[account.name]
        if error is not None:
            return False, "archive failed, account kept: %s" % error, None
        rc, out, err = module.run_command(
            [module.get_bin_path("userdel", required=True), "--remove", account.name],
            environ_update={"LC_ALL": "C"},
        )
        # userdel exits 12 when only the home could not be removed; the account is gone.
        if rc not in (0, 12):
            return False, "userdel failed (rc=%d): %s; archive kept at %s" % (rc, (err or out).strip(), archive), archive
        crontab = os.path.join(CRONTABS, account.name)
        if os.path.exists(crontab):
            os.unlink(crontab)
        return True, "removed; home, crontab and mail archived to %s" % archive, archive
    for argv in acc.commands_for(action, account, nologin_shell):
        argv = [module.get_bin_path(argv[0], required=True)] + argv[1:]
        rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            return False, "%s failed (rc=%d): %s" % (argv[0], rc, (err or out).strip()), None
    return True, {"lock": "locked and expired", "expire": "expired", "nologin": "shell set to %s" % nologin_shell}[action], None


def main():
    policy_options = dict(
        (kind, dict(type="str", choices=list(choices), default=acc.DEFAULT_POLICY[kind]))
        for kind, choices in acc.ACTIONS.items()
    )
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            max_inactive_days=dict(type="int", default=90),
            policy=dict(type="dict", default={}, options=policy_options),
            archive_dir=dict(type="path", default="/var/backups/yoroi/accounts"),
            nologin_shell=dict(type="path", default="/usr/sbin/nologin"),
        ), guard_timeout=120),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "stale_accounts", dict(
        (control, acc.EXPECTED[kind].format(days=params["max_inactive_days"])) for kind, control in acc.CONTROLS.items()), change="accounts")
    if params["max_inactive_days"] < 1:
        concern.refuse("max_inactive_days must be 1 or more, got %d" % params["max_inactive_days"])
    protected = set(concern.protected)

    accounts, login_defs, shells, logins = read_state(module)
    uid_min, uid_max = acc.uid_range(login_defs)
    now = time.time()
    today = int(now // acc.DAY)
    since = int(now - params["max_inactive_days"] * acc.DAY)
    sshd_logins, log_covers_window = read_sshd_log(module, since)
    logins = acc.merge_logins(accounts, {}, [logins, sshd_logins])
    offences = acc.classify(accounts, logins, now, params["max_inactive_days"], uid_min, uid_max, shells)
    decisions = acc.plan(offences, params["policy"], protected, now)
    unseen = [account for kind, account, _d, _a, _s in decisions if kind in ("stale", "never_used")]
    decisions = acc.spare_key_holders(decisions, acc.key_holders(unseen, read_text), log_covers_window, params["max_inactive_days"])

    outcomes = {}
    archives = {}
    before_lines, after_lines = [], []
    done = {}
    result = dict(archives=archives, protected=sorted(protected))
    to_change = [d for d in decisions if d[4] == acc.FAIL and d[3] != "report"]
    with concern.changing(needed=bool(to_change)):
        # Archives first: the guard must never restore /etc/passwd while a removal is
        # half-way (its home archived, the account not yet removed).
        prepared = {}
        if not module.check_mode:
            prepared = prepare_archives(module, [d[1] for d in to_change if d[3] == "remove"], params["archive_dir"])
        # A lock of the wrong account would cut access: unless a fresh login confirms
        # the change, the host restores the account databases (DESIGN invariant 5).
        if to_change:
            result.update(concern.arm_guard(ACCOUNT_DATABASES, [], params["guard_timeout"]))
        for kind, account, detail, action, status in decisions:
            if status != acc.FAIL or action == "report":
                continue
            before_lines.append("%s: %s, shell %s" % (account.name, account.state(today), account.shell))
            after_lines.append("%s: %s" % (account.name, acc.after_state(action, account)))
            if module.check_mode:
                continue
            # One account can offend twice (empty password and never used): act once.
            key = (account.name, action)
            if key not in done:
                done[key] = carry_out(module, action, account, params["archive_dir"], params["nologin_shell"], prepared)
            ok, note, archive = done[key]
            outcomes[(kind, account.name)] = (ok, note)
            if archive:
                archives[account.name] = archive

    human_count = len([a for a in accounts if uid_min <= a.uid <= uid_max])
    findings = acc.build_findings(decisions, outcomes, module.check_mode, params["max_inactive_days"], human_count, today)
    changed = bool(before_lines)
    diff = None
    if changed:
        diff = {
            "before_header": "accounts",
            "after_header": "accounts",
            "before": "\n".join(sorted(set(before_lines))) + "\n",
            "after": "\n".join(sorted(set(after_lines))) + "\n",
        }
    if any(f["status"] == acc.ERROR for f in findings):
        result["msg"] = "some accounts could not be changed; see findings"
    concern.exit(findings, changed, diff, **result)
