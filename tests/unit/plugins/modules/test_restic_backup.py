"""restic_backup and backup_drill in-process, on a host whose files live in a temporary
directory and whose restic, systemctl, ssh-keygen and dpkg-query are played by a fake
that answers with restic's recorded outputs. Table of runs: unconfigured, bad input, audit
of a bare host, apply, second apply (nothing changes), audit after; and every command's
argv and environment are kept, to show the password is never an argument."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils import _backup as bak
from ansible_collections.yoroi.baseline.plugins.modules import backup_drill, restic_backup

RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "recorded" / "backup"
PASSWORD = "correct horse battery staple 42"
HOST_KEY = "backup1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAGBbG0l/f8OmKFFttxXkSOHnhLLzTy0mqhQe/o9fGxR"
ARGS = {"repository": "sftp:restic@backup1:/srv/restic/web1", "password": PASSWORD, "paths": ["/etc", "/srv/data"],
        "host_keys": [HOST_KEY]}


class FakeHost(object):
    """The commands the modules run, answered from a little state."""

    def __init__(self, root):
        self.root = root
        self.calls = []
        self.repo = False
        self.snapshots = []
        self.enabled = self.active = False

    def run_command(self, argv, environ_update=None, **_kwargs):
        env = dict(environ_update or {})
        self.calls.append((list(argv), env))
        name = os.path.basename(argv[0])
        if name == "dpkg-query":
            return 0, "".join("%s installed\n" % pkg for pkg in argv[3:]), ""
        if name == "ssh-keygen":
            key = argv[argv.index("-f") + 1]
            Path(key).write_text("PRIVATE\n")
            Path(key + ".pub").write_text("ssh-ed25519 AAAAfake yoroi-backup@h\n")
            return 0, "", ""
        if name == "systemctl":
            return self.systemctl(argv[1:])
        if name == "restic":
            return self.restic([a for a in argv[1:] if a not in ("--no-lock", "--no-cache")], env)
        raise AssertionError("unexpected command %r" % argv)

    def systemctl(self, args):
        if args[0] == "is-enabled":
            return (0, "enabled\n", "") if self.enabled else (1, "disabled\n", "")
        if args[0] == "is-active":
            return (0, "active\n", "") if self.active else (3, "inactive\n", "")
        if args[:2] == ["enable", "--now"]:
            self.enabled = self.active = True
            return 0, "", ""
        if args[0] == "daemon-reload":
            return 0, "", ""
        if args == ["start", bak.SERVICE_UNIT]:
            self.backup()
            return 0, "", ""
        raise AssertionError("unexpected systemctl %r" % args)

    def backup(self):
        self.snapshots.insert(0, {"time": time.strftime("%Y-%m-%dT%H:%M:%S.5Z", time.gmtime()), "paths": ["/etc", "/srv/data"],
                                  "hostname": "h", "tags": ["yoroi"], "id": "%064x" % len(self.snapshots),
                                  "short_id": "%08x" % len(self.snapshots)})
        os.makedirs(bak.STATE_DIR, exist_ok=True)
        Path(bak.CHECK_STATE).write_text('{"time": %d, "backup": 0, "forget": 0, "check": 0, "subset": "5%%"}\n' % time.time())

    def restic(self, args, env):
        if args[:2] == ["-o", args[1]] and args[1].startswith("sftp.command="):
            args = args[2:]
        if not self.repo:
            if args[0] == "init":
                self.repo = True
                return 0, "created restic repository\n", ""
            return 1, "", (RECORDED / "no_repo.err").read_text()
        if args[:2] == ["snapshots", "--json"]:
            assert args[2:] == ["--host", os.uname()[1]], args
            return 0, json.dumps(self.snapshots), ""
        if args[0] == "check":
            return 0, (RECORDED / "check_ok.out").read_text(), ""
        raise AssertionError("unexpected restic %r" % args)


@pytest.fixture
def host(tmp_path, monkeypatch):
    for name in ("PASSWORD_FILE", "ENV_FILE", "PATHS_FILE", "EXCLUDE_FILE", "KNOWN_HOSTS", "SCRIPT"):
        monkeypatch.setattr(bak, name, str(tmp_path / "etc-yoroi-backup" / os.path.basename(getattr(bak, name))))
    monkeypatch.setattr(bak, "CONFIG_DIR", str(tmp_path / "etc-yoroi-backup"))
    monkeypatch.setattr(bak, "SERVICE", str(tmp_path / "systemd" / "yoroi-backup.service"))
    monkeypatch.setattr(bak, "TIMER", str(tmp_path / "systemd" / "yoroi-backup.timer"))
    monkeypatch.setattr(bak, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(bak, "CHECK_STATE", str(tmp_path / "state" / "check.json"))
    monkeypatch.setattr(bak, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bak, "SSH_KEY", str(tmp_path / "root-ssh" / "yoroi_backup"))
    fake = FakeHost(tmp_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: fake.run_command(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    monkeypatch.setattr(basic.AnsibleModule, "backup_local", lambda self, path: path + ".bak")
    return fake


def statuses(result):
    return sorted(((f["control"], f.get("subject"), f["status"]) for f in result["findings"]), key=lambda t: (t[0], t[1] or ""))


def no_password_anywhere(host, result):
    assert PASSWORD not in json.dumps(result)
    for argv, env in host.calls:
        assert PASSWORD not in " ".join(argv) and PASSWORD not in json.dumps(env), argv


def test_unconfigured_fails_every_control_and_touches_nothing(run_module, host, tmp_path):
    for args in ({}, {"repository": "/srv/backup"}, {"password": PASSWORD}):
        result, failed = run_module(restic_backup, args)
        assert not failed and result["changed"] is False
        assert statuses(result) == [(c, None, "fail") for c in ("BAK-001", "BAK-002", "BAK-003", "BAK-004")]
        assert all(f["actual"] == bak.NOT_CONFIGURED for f in result["findings"])
    assert host.calls == [] and not os.path.exists(bak.CONFIG_DIR)


def test_bad_input_is_refused_before_any_change(run_module, host):
    result, failed = run_module(restic_backup, dict(ARGS, repository="sftp:restic@backup1:/srv/$(reboot)"))
    assert failed and result["msg"].startswith("refused: repository")
    assert set(f["status"] for f in result["findings"]) == {"error"}
    assert host.calls == [] and not os.path.exists(bak.CONFIG_DIR)
    result, failed = run_module(restic_backup, dict(ARGS, host_keys=[]))
    assert failed and "host_keys" in result["msg"]
    no_password_anywhere(host, result)


def test_audit_apply_second_apply_audit(run_module, host):
    # 1. audit of a bare host: every control fails, nothing is written or initialized
    audit, failed = run_module(restic_backup, ARGS, check_mode=True, diff=True)
    assert not failed and audit["changed"] is False
    assert statuses(audit) == [("BAK-001", "/etc", "fail"), ("BAK-001", "/srv/data", "fail"), ("BAK-002", None, "fail"),
                               ("BAK-003", None, "fail"), ("BAK-004", None, "fail")]
    assert not os.path.exists(bak.CONFIG_DIR) and not host.repo
    assert bak.PASSWORD_FILE not in [d["after_header"] for d in audit["diff"]]
    no_password_anywhere(host, audit)

    # 2. apply: files, key, init, timer, first backup; each control fixed
    applied, failed = run_module(restic_backup, ARGS, diff=True)
    assert not failed and applied["changed"] is True, applied
    assert set(s for _c, _p, s in statuses(applied)) == {"fixed"}
    assert host.repo and host.enabled and host.active and len(host.snapshots) == 1
    assert Path(bak.PASSWORD_FILE).read_text() == PASSWORD + "\n"
    for path, mode in ((bak.PASSWORD_FILE, 0o600), (bak.ENV_FILE, 0o600), (bak.SCRIPT, 0o700), (bak.CONFIG_DIR, 0o700),
                       (bak.SSH_KEY, 0o600)):
        assert os.stat(path).st_mode & 0o777 == mode, path
    assert applied["public_key"].startswith("ssh-ed25519 ") and applied["sftp_user"] == "restic"
    assert HOST_KEY + "\n" == Path(bak.KNOWN_HOSTS).read_text()
    restic_calls = [(argv, env) for argv, env in host.calls if argv[0].endswith("restic")]
    assert restic_calls and all(env["RESTIC_PASSWORD_FILE"] == bak.PASSWORD_FILE for _a, env in restic_calls)
    no_password_anywhere(host, applied)

    # 3. a second apply changes nothing: no write (mtimes kept), no init, no backup run
    mtimes = dict((p, os.stat(p).st_mtime_ns) for p, _c, _m in bak.wanted_files(ARGS_FULL()))
    host.calls[:] = []
    second, failed = run_module(restic_backup, ARGS)
    assert not failed and second["changed"] is False
    assert set(s for _c, _p, s in statuses(second)) == {"pass"}
    assert dict((p, os.stat(p).st_mtime_ns) for p in mtimes) == mtimes
    assert not [argv for argv, _env in host.calls if argv[-1] in ("init", bak.SERVICE_UNIT) or "--now" in argv]

    # 4. the audit agrees
    again, _failed = run_module(restic_backup, ARGS, check_mode=True)
    assert statuses(again) == statuses(second)


def ARGS_FULL():
    return dict(ARGS, exclude=[], environment={}, schedule="daily", keep_daily=7, keep_weekly=4, keep_monthly=6,
                check_subset="5%")


def test_a_loose_password_file_fails_the_audit_and_apply_narrows_it(run_module, host):
    run_module(restic_backup, ARGS)
    os.chmod(bak.PASSWORD_FILE, 0o644)
    audit, _failed = run_module(restic_backup, ARGS, check_mode=True)
    assert ("BAK-004", None, "fail") in statuses(audit)
    assert "mode 0644" in [f for f in audit["findings"] if f["control"] == "BAK-004"][0]["actual"]
    fixed, _failed = run_module(restic_backup, ARGS)
    assert ("BAK-004", None, "fixed") in statuses(fixed)
    assert os.stat(bak.PASSWORD_FILE).st_mode & 0o777 == 0o600


def test_another_password_on_the_host_is_drift_without_showing_either(run_module, host):
    run_module(restic_backup, ARGS)
    audit, _failed = run_module(restic_backup, dict(ARGS, password="another one"), check_mode=True)
    item = [f for f in audit["findings"] if f["control"] == "BAK-004"][0]
    assert item["status"] == "fail" and "does not hold the configured password" in item["actual"]
    assert "another one" not in json.dumps(audit) and PASSWORD not in json.dumps(audit)


def test_key_only_makes_the_key_and_returns_it(run_module, host):
    checked, _failed = run_module(restic_backup, dict(ARGS, key_only=True), check_mode=True)
    assert checked["findings"] == [] and "public_key" not in checked and not os.path.exists(bak.SSH_KEY)
    made, _failed = run_module(restic_backup, dict(ARGS, key_only=True))
    assert made["changed"] is True and made["public_key"].startswith("ssh-ed25519 ") and made["sftp_user"] == "restic"
    again, _failed = run_module(restic_backup, dict(ARGS, key_only=True))
    assert again["changed"] is False
    assert not os.path.exists(bak.PASSWORD_FILE)


def test_drill_without_configuration_fails_every_control(run_module, host):
    result, failed = run_module(backup_drill, {})
    assert not failed
    assert statuses(result) == [("DRL-001", None, "fail"), ("DRL-002", None, "fail"), ("DRL-003", None, "fail")]
    assert "no backup configured" in result["findings"][0]["actual"]


class FakeRepository(object):
    """restic for the drill: a snapshot of the files of ``live`` as they are now; restore
    writes them (``corrupt`` ones with other bytes, ``lost`` ones not at all)."""

    def __init__(self, live):
        self.live = live
        self.time = time.time()
        self.files = dict((str(p), p.read_bytes()) for p in sorted(live.rglob("*")) if p.is_file())
        self.mtimes = dict((path, os.stat(path).st_mtime_ns) for path in self.files)
        self.corrupt, self.lost, self.check_ok = set(), set(), True
        self.scratch = []

    def run_child(self, argv, env, stdout=None):
        """restic restore and dump, run by the drill as its own child process."""
        if argv[-2:-1] != ["--target"]:  # restic dump SNAPSHOT PATH
            assert env["RESTIC_PASSWORD_FILE"] == bak.PASSWORD_FILE and PASSWORD not in " ".join(argv)
            stdout.write(self.files[argv[-1]])
            return 0, "", ""
        return self.run_command(argv, environ_update=env)

    def node(self, path):
        ns = self.mtimes[path]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)
        return json.dumps({"name": os.path.basename(path), "type": "file", "path": path, "size": len(self.files[path]),
                           "mtime": stamp, "struct_type": "node"})

    def run_command(self, argv, environ_update=None, **_kwargs):
        assert environ_update["RESTIC_PASSWORD_FILE"] == bak.PASSWORD_FILE and PASSWORD not in " ".join(argv)
        args = [a for a in argv[1:] if a not in ("--no-lock", "--no-cache")]
        if args[0] == "check":
            if self.check_ok:
                return 0, (RECORDED / "check_ok.out").read_text(), ""
            return 1, (RECORDED / "check_tampered_full.out").read_text(), (RECORDED / "check_tampered_full.err").read_text()
        if args[:2] == ["snapshots", "--json"]:
            assert args[2:] == ["--host", os.uname()[1]], args
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time)) + ".%06dZ" % (self.time % 1 * 10**6)
            return 0, json.dumps([{"time": stamp, "paths": [str(self.live)],
                                   "hostname": "h", "id": "ab" * 32, "short_id": "abababab"}]), ""
        if args[0] == "ls":
            return 0, "\n".join(self.node(path) for path in self.files) + "\n", ""
        if args[0] == "restore":
            scratch = args[args.index("--target") + 1]
            self.scratch.append(scratch)
            assert os.stat(scratch).st_mode & 0o777 == 0o700
            for path, data in self.files.items():
                if path in self.lost:
                    continue
                target = Path(scratch + path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"X" + data[1:] if path in self.corrupt else data)
                os.utime(target, ns=(self.mtimes[path], self.mtimes[path]))
            return (1, "", "ignoring error: ciphertext verification failed\nFatal: There were 1 errors\n") if self.lost else (0, "", "")
        raise AssertionError("unexpected restic %r" % args)


@pytest.fixture
def drill_host(host, tmp_path, monkeypatch):
    os.makedirs(bak.CONFIG_DIR, 0o700)
    Path(bak.ENV_FILE).write_text(bak.render_env("/srv/backup/web1"))
    Path(bak.PASSWORD_FILE).write_text(PASSWORD + "\n")
    live = tmp_path / "live"
    (live / "sub").mkdir(parents=True)
    for name, data in (("a.txt", b"hello\n"), ("sub/b.bin", os.urandom(4096)), ("new\nline", b"x"), ("notes", b"notes\n")):
        (live / name).write_bytes(data)
    repo = FakeRepository(live)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: repo.run_command(argv, **kw))
    monkeypatch.setattr(bak, "run_child", repo.run_child)
    return repo


def drill(run_module, repo, tmp_path, **args):
    scratch_parent = tmp_path / "scratch-parent"
    scratch_parent.mkdir(exist_ok=True)
    result, failed = run_module(backup_drill, dict(args, scratch_parent=str(scratch_parent)))
    assert not failed, result
    assert list(scratch_parent.iterdir()) == [], "the scratch directory was left behind"
    return result


def test_drill_passes_and_reports_changes_apart(run_module, drill_host, tmp_path):
    live = drill_host.live
    (live / "a.txt").write_bytes(b"edited after the snapshot\n")
    (live / "notes").unlink()
    os.symlink("/etc/shadow", live / "notes")  # a link swapped in: never followed
    (live / "new\nline").unlink()
    result = drill(run_module, drill_host, tmp_path)
    assert statuses(result) == [("DRL-001", None, "pass"), ("DRL-002", None, "pass"), ("DRL-003", None, "pass")]
    assert result["drill"]["counts"] == {"match": 1, "changed since snapshot": 2, "restorable but deleted": 1,
                                         "mismatch": 0, "not restored": 0}
    assert result["drill"]["seconds"] >= result["drill"]["restore_seconds"] >= 0
    assert all("seconds" in f for f in result["findings"])
    state = json.loads(Path(bak.CHECK_STATE).read_text())
    assert state["check"] == 0 and state["source"] == "restore drill"


def test_drill_fails_on_corruption_and_on_a_tampered_pack(run_module, drill_host, tmp_path):
    drill_host.corrupt.add(str(drill_host.live / "a.txt"))
    corrupt = drill(run_module, drill_host, tmp_path)
    assert ("DRL-002", str(drill_host.live / "a.txt"), "fail") in statuses(corrupt)
    drill_host.corrupt.clear()
    drill_host.lost.add(str(drill_host.live / "sub" / "b.bin"))
    drill_host.check_ok = False
    tampered = drill(run_module, drill_host, tmp_path)
    assert ("DRL-001", None, "fail") in statuses(tampered)
    assert ("DRL-002", str(drill_host.live / "sub" / "b.bin"), "fail") in statuses(tampered)
    assert json.loads(Path(bak.CHECK_STATE).read_text())["check"] == 1


def test_drill_in_check_mode_records_nothing(run_module, drill_host, tmp_path):
    scratch_parent = tmp_path / "scratch-parent"
    scratch_parent.mkdir()
    result, _failed = run_module(backup_drill, {"scratch_parent": str(scratch_parent)}, check_mode=True)
    assert set(s for _c, _p, s in statuses(result)) == {"pass"}
    assert not os.path.exists(bak.CHECK_STATE) and list(scratch_parent.iterdir()) == []


def test_drill_sample_dumps_chosen_files(run_module, drill_host, tmp_path):
    result = drill(run_module, drill_host, tmp_path, sample_files=2)
    assert result["drill"]["mode"] == "2 sampled file(s)" and result["drill"]["counts"]["match"] == 2
    assert set(s for _c, _p, s in statuses(result)) == {"pass"}


def test_a_drill_stopped_by_a_signal_leaves_no_scratch_directory(run_module, drill_host, tmp_path, monkeypatch):
    """SIGTERM (a cancelled run) or Ctrl-C in the middle of the restore: the scratch
    directory is removed and the drill fails, saying so."""
    import signal

    original = drill_host.run_child

    def interrupted(argv, env, stdout=None):
        original(argv, env, stdout)  # the files are written, then the run is cancelled
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal did not stop the drill")
    monkeypatch.setattr(bak, "run_child", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    result = drill(run_module, drill_host, tmp_path)
    item = [f for f in result["findings"] if f["control"] == "DRL-002"][0]
    assert item["status"] == "fail" and "interrupted" in item["actual"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_interrupted_child_is_killed_before_the_scratch_directory_goes(tmp_path):
    """run_child on a real process: a signal while restic runs kills it and is passed on."""
    import signal
    import threading

    previous = signal.signal(signal.SIGALRM, backup_drill._interrupted)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGALRM)).start()
    started = time.monotonic()
    try:
        with pytest.raises(backup_drill.Interrupted):
            bak.run_child(["sleep", "30"], {})
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10
    assert bak.run_child(["sh", "-c", "echo out; echo err >&2; exit 3"], {}) == (3, "out\n", "err\n")
