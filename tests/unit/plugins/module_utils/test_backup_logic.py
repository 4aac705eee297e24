"""Backups and drills (_backup): parsers on outputs of restic 0.14.0 recorded on bookworm lab
hosts (recorded/backup/README.md), inputs, rendered files, controls, and the comparison of
a restored file with the live one on real files in a temporary directory."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _backup as bak

RECORDED = Path(__file__).resolve().parent / "recorded" / "backup"
SNAPSHOT_TIME = bak.parse_time("2026-11-28T02:25:08.185344185Z")


def recorded(name):
    return (RECORDED / name).read_text()


def params(**over):
    base = {"repository": "sftp:restic@backup1:/srv/restic/web1", "password": "s3cret pass",
            "environment": {}, "paths": ["/etc", "/srv/data"], "exclude": [], "schedule": "daily",
            "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6, "check_subset": "5%",
            "host_keys": ["backup1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAGBbG0l/f8OmKFFttxXkSOHnhLLzTy0mqhQe/o9fGxR"]}
    base.update(over)
    return base


# --- parsers on recorded outputs --------------------------------------------------------


def test_snapshots_recorded():
    snaps = bak.parse_snapshots(recorded("snapshots.json"))
    assert snaps == [{"id": "06397467", "time": SNAPSHOT_TIME, "paths": ["/etc/hostname", "/srv/data"],
                      "tags": ["yoroi"], "hostname": "lab-default-1"}]
    assert bak.parse_snapshots(recorded("snapshots_empty.json")) == []


def test_times_with_offsets_and_nanoseconds():
    assert bak.parse_time("2026-11-28T11:25:08+09:00") == bak.parse_time("2026-11-28T02:25:08Z")
    assert bak.parse_time("2026-11-28T02:25:08.5Z") - bak.parse_time("2026-11-28T02:25:08Z") == pytest.approx(0.5)
    with pytest.raises(ValueError):
        bak.parse_time("yesterday")


@pytest.mark.parametrize("name,kind", [("no_repo.err", "missing"), ("wrongpw.out", "password"),
                                       ("check_tampered_full.err", "other")])
def test_repository_errors_recorded(name, kind):
    assert bak.repository_error(recorded(name)) == kind


def test_check_ok_recorded():
    result = bak.parse_check(0, recorded("check_ok.out"), "")
    assert result == {"ok": True, "summary": "no errors were found (5.0% of data packs)"}


def test_check_tampered_pack_recorded():
    result = bak.parse_check(1, recorded("check_tampered_full.out"), recorded("check_tampered_full.err"))
    assert not result["ok"]
    assert result["summary"].startswith("Pack ID does not match, want 4ad65204")


def test_check_exit_zero_without_the_words_is_not_ok():
    assert not bak.parse_check(0, "load indexes\n", "")["ok"]


def test_ls_recorded_keeps_regular_files_and_odd_names():
    files = dict((item["path"], item) for item in bak.parse_ls(recorded("ls.jsonl")))
    assert set(files) == {"/etc/hostname", "/srv/data/a.txt", "/srv/data/sub/b.bin", "/srv/data/new\nline.txt"}
    assert files["/srv/data/sub/b.bin"]["size"] == 300000
    assert files["/etc/hostname"]["mtime"] == bak.parse_time("2026-11-28T02:24:21.010846454Z")


def test_restore_of_a_tampered_pack_recorded_names_the_file():
    assert "ciphertext verification failed" in recorded("restore_tampered.err")
    assert bak.last_line(recorded("restore_tampered.err")) == "Fatal: There were 2 errors"


def test_version_recorded():
    assert recorded("version.out").startswith("restic 0.14.0 ")


# --- inputs -----------------------------------------------------------------------------

BAD_INPUTS = [
    ({"repository": "sftp:restic@backup1:/srv/a b"}, "repository"),
    ({"repository": "/srv/backup;reboot"}, "repository"),
    ({"repository": "/srv/../etc"}, "repository"),
    ({"repository": "sftp:backup1/srv"}, "repository"),
    ({"repository": "ftp://backup1/x"}, "repository"),
    ({"password": "two\nlines"}, "password must be one line"),
    ({"paths": []}, "at least one path"),
    ({"paths": ["etc"]}, "absolute path"),
    ({"paths": ["/srv/../etc"]}, "normalized"),
    ({"paths": ["/srv/a\nb"]}, "absolute path on one line"),
    ({"paths": ["/srv/"]}, "normalized"),
    ({"exclude": ["a\nb"]}, "exclude"),
    ({"schedule": "daily; rm -rf /"}, "schedule"),
    ({"check_subset": "5"}, "check_subset"),
    ({"check_subset": "150%"}, "check_subset"),
    ({"host_keys": []}, "pins"),
    ({"host_keys": ["backup1 ssh-ed25519 AAAA\nx"]}, "host_keys"),
    ({"environment": {"RESTIC_PASSWORD": "x"}}, "environment"),
    ({"environment": {"AWS_SECRET_ACCESS_KEY": "a\nb"}}, "one line"),
    ({"keep_daily": -1}, "keep_daily"),
]


@pytest.mark.parametrize("over,reason", BAD_INPUTS)
def test_bad_inputs_are_refused_without_quoting_the_password(over, reason):
    with pytest.raises(bak.InputError) as caught:
        bak.check_inputs(params(**over))
    message = str(caught.value)
    assert reason.replace("pins", "needs host_keys") in message
    assert "s3cret" not in message


@pytest.mark.parametrize("repository", ["/srv/backup/web1", "sftp:restic@backup1.example.org:/srv/restic/web1",
                                        "s3:https://s3.example.org/bucket/web1", "rest:https://backup1:8000/web1"])
def test_good_repositories(repository):
    bak.check_inputs(params(repository=repository))


def test_not_configured_without_repository_or_password():
    assert not bak.configured(params(repository=""))
    assert not bak.configured(params(password=""))
    assert bak.configured(params())
    findings = bak.not_configured_findings()
    assert [f["control"] for f in findings] == ["BAK-001", "BAK-002", "BAK-003", "BAK-004"]
    assert all(f["status"] == "fail" and f["actual"] == bak.NOT_CONFIGURED for f in findings)


# --- rendered files ---------------------------------------------------------------------


def test_files_never_carry_the_password_outside_its_file():
    files = dict((path, (content, mode)) for path, content, mode in bak.wanted_files(params()))
    assert files[bak.PASSWORD_FILE] == ("s3cret pass\n", 0o600)
    for path, (content, mode) in files.items():
        if path != bak.PASSWORD_FILE:
            assert "s3cret" not in content, path
    assert "RESTIC_PASSWORD_FILE=%s\n" % bak.PASSWORD_FILE in files[bak.ENV_FILE][0]
    assert files[bak.ENV_FILE][1] == 0o600 and files[bak.SCRIPT][1] == 0o700
    public = [path for path, _c, _m in bak.wanted_files(params(), public=True)]
    assert bak.PASSWORD_FILE not in public and bak.ENV_FILE in public
    with_credentials = [path for path, _c, _m in bak.wanted_files(params(environment={"AWS_SECRET_ACCESS_KEY": "k"}), public=True)]
    assert bak.ENV_FILE not in with_credentials


def test_sftp_pins_the_host_key_and_uses_the_dedicated_key():
    command = bak.sftp_command("sftp:restic@backup1:/srv/restic/web1")
    assert "StrictHostKeyChecking=yes" in command and "StrictHostKeyChecking=no" not in command
    assert "-i %s" % bak.SSH_KEY in command and "UserKnownHostsFile=%s" % bak.KNOWN_HOSTS in command
    assert command.endswith("restic@backup1 -s sftp")
    assert bak.restic_options("/srv/backup") == [] and bak.sftp_command("s3:https://x/b") is None


def test_script_backs_up_forgets_checks_and_records():
    script = bak.render_script("sftp:restic@backup1:/srv/restic/web1", 7, 0, 6, "10%", ["*.tmp"])
    assert "backup --tag yoroi --files-from-verbatim %s --exclude-file %s" % (bak.PATHS_FILE, bak.EXCLUDE_FILE) in script
    assert "forget --prune --tag yoroi --keep-daily 7 --keep-monthly 6\n" in script
    assert "check --read-data-subset=10%" in script and bak.CHECK_STATE in script
    assert '-o "sftp.command=ssh ' in script
    local = bak.render_script("/srv/backup", 0, 0, 0, "5%", [])
    assert "--keep-last 1" in local and "sftp.command" not in local and "--exclude-file" not in local


def test_units():
    assert "EnvironmentFile=%s" % bak.ENV_FILE in bak.render_service()
    assert "ExecStart=%s" % bak.SCRIPT in bak.render_service()
    timer = bak.render_timer("*-*-* 01:30")
    assert "OnCalendar=*-*-* 01:30\n" in timer and "Persistent=true" in timer


def test_environment_file_round_trip():
    text = bak.render_env("s3:https://s3.example.org/b", {"AWS_ACCESS_KEY_ID": "id=1"})
    env = bak.restic_environment(text)
    assert env["RESTIC_REPOSITORY"] == "s3:https://s3.example.org/b" and env["AWS_ACCESS_KEY_ID"] == "id=1"


# --- controls ---------------------------------------------------------------------------

NOW = SNAPSHOT_TIME + 3600
SNAPS = [{"id": "b", "time": NOW - 30 * 3600, "paths": ["/srv/data"], "tags": [], "hostname": "h"},
         {"id": "a", "time": NOW - 3600, "paths": ["/etc", "/srv/old"], "tags": [], "hostname": "h"}]


@pytest.mark.parametrize("path,young", [("/etc", True), ("/srv/data", False), ("/home", False)])
def test_each_path_needs_its_own_fresh_snapshot(path, young):
    snaps = sorted(SNAPS, key=lambda s: s["time"], reverse=True)
    assert bak.fresh_snapshots(snaps, [path], NOW, 26)[path][1] is young


def test_snapshot_findings_one_per_path():
    snaps = sorted(SNAPS, key=lambda s: s["time"], reverse=True)
    findings = bak.snapshot_findings(["/etc", "/srv/data", "/home"], {"state": "ok", "snapshots": snaps}, NOW, 26,
                                     lambda path, ok: "pass" if ok else "fail")
    by = dict((f["subject"], f) for f in findings)
    assert by["/etc"]["status"] == "pass" and "1.0 h old" in by["/etc"]["actual"]
    assert by["/srv/data"]["status"] == "fail" and "30.0 h old" in by["/srv/data"]["actual"]
    assert by["/home"]["actual"] == "no snapshot holds it"
    unread = bak.snapshot_findings(["/etc"], {"state": "missing", "snapshots": [], "error": "no repository yet"}, NOW, 26,
                                   lambda path, ok: "pass" if ok else "fail")
    assert unread[0]["status"] == "fail" and unread[0]["actual"] == "no repository yet"


CHECKS = [
    (None, False, "no repository check has been recorded"),
    ({"time": NOW - 3600, "check": 0, "subset": "5%"}, True, "passed at"),
    ({"time": NOW - 3600, "check": 1, "summary": "Pack ID does not match"}, False, "failed at"),
    ({"time": NOW - 100 * 3600, "check": 0}, False, "older than 50 h"),
]


@pytest.mark.parametrize("state,ok,words", CHECKS)
def test_check_state(state, ok, words):
    result = bak.check_state_ok(state, NOW, 50)
    assert result[0] is ok and words in result[1]


def test_check_state_file_round_trip_and_garbage():
    text = bak.render_check_state(NOW, False, "5%", "Pack ID does not match", "restore drill")
    state = bak.parse_check_state(text)
    assert state["check"] == 1 and state["source"] == "restore drill"
    # the service's own printf line
    assert bak.parse_check_state('{"time": 1764296740, "backup": 0, "forget": 0, "check": 0, "subset": "5%"}\n')["check"] == 0
    assert bak.parse_check_state("garbage") is None and bak.parse_check_state('{"check": 0}') is None


PASSWORD_FILES = [
    ({"exists": False}, True, False, "does not exist"),
    ({"exists": True, "uid": 0, "mode": 0o777, "dir_mode": 0o700, "link": True}, True, False, "is a symbolic link"),
    ({"exists": True, "uid": 0, "mode": 0o600, "dir_mode": 0o700}, True, True, "root, 0600"),
    ({"exists": True, "uid": 0, "mode": 0o644, "dir_mode": 0o700}, True, False, "mode 0644"),
    ({"exists": True, "uid": 1000, "mode": 0o600, "dir_mode": 0o700}, True, False, "owned by uid 1000"),
    ({"exists": True, "uid": 0, "mode": 0o600, "dir_mode": 0o755}, True, False, "has mode 0755"),
    ({"exists": True, "uid": 0, "mode": 0o600, "dir_mode": 0o700}, False, False, "does not hold the configured password"),
]


@pytest.mark.parametrize("info,matches,ok,words", PASSWORD_FILES)
def test_password_file(info, matches, ok, words):
    result = bak.password_file_ok(info, matches)
    assert result[0] is ok and words in result[1]


@pytest.mark.parametrize("enabled,active,ok", [("enabled", "active", True), ("enabled", "inactive", False),
                                               ("disabled", "active", False), ("missing", "missing", False)])
def test_timer(enabled, active, ok):
    assert bak.timer_ok(enabled, active) is ok


# --- the drill's comparison -------------------------------------------------------------

T = 1764296708.0
CLASSIFY = [
    ({"size": 5, "mtime": T}, {"size": 5, "mtime": T, "regular": True}, "h", "h", bak.MATCH),
    ({"size": 5, "mtime": T}, {"size": 5, "mtime": T, "regular": True}, "h", "x", bak.CORRUPT),
    ({"size": 5, "mtime": T}, {"size": 6, "mtime": T, "regular": True}, None, None, bak.CHANGED),
    ({"size": 5, "mtime": T}, {"size": 5, "mtime": T + 60, "regular": True}, None, None, bak.CHANGED),
    ({"size": 5, "mtime": T}, {"size": -1, "mtime": 0, "regular": False}, None, None, bak.CHANGED),
    ({"size": 5, "mtime": T}, None, None, None, bak.DELETED),
    (None, {"size": 5, "mtime": T, "regular": True}, None, None, bak.UNREADABLE),
    ({"size": 5, "mtime": T}, {"size": 5, "mtime": T, "regular": True}, None, None, None),
]


@pytest.mark.parametrize("restored,live,rh,lh,outcome", CLASSIFY)
def test_classify(restored, live, rh, lh, outcome):
    assert bak.classify(restored, live, T + 10, rh, lh) == outcome


def make(path, data, mtime=T):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return str(path)


def test_compare_real_files(tmp_path):
    live, scratch = tmp_path / "live", tmp_path / "scratch"
    same = make(live / "same", b"hello\n"), make(scratch / "same", b"hello\n")
    rotten = make(live / "rotten", b"hello\n"), make(scratch / "rotten", b"hellO\n")
    edited = make(live / "edited", b"hello!\n", T + 5), make(scratch / "edited", b"hello\n")
    gone = str(live / "gone"), make(scratch / "gone", b"x")
    odd = make(live / "new\nline", b"x"), make(scratch / "new\nline", b"x")
    assert bak.compare_file(same[0], same[1], T + 10) == bak.MATCH
    assert bak.compare_file(rotten[0], rotten[1], T + 10) == bak.CORRUPT
    assert bak.compare_file(edited[0], edited[1], T + 10) == bak.CHANGED
    assert bak.compare_file(gone[0], gone[1], T + 10) == bak.DELETED
    assert bak.compare_file(odd[0], odd[1], T + 10) == bak.MATCH
    assert bak.compare_file(same[0], str(scratch / "never-restored"), T + 10) == bak.UNREADABLE
    # restic dump gives no mtime: the snapshot's is passed in
    dumped = make(scratch / "dumped", b"hello\n", T + 999)
    assert bak.compare_file(same[0], dumped, T + 10, restored_mtime=T) == bak.MATCH


def test_a_link_swapped_in_is_never_followed(tmp_path):
    """A user's directory whose file (or the directory itself) became a link to a secret."""
    secret = make(tmp_path / "shadow", b"root:$y$secret\n")
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(secret, home / "notes")
    restored = make(tmp_path / "scratch" / "notes", b"root:$y$secret\n")
    os.utime(secret, (T, T))
    assert bak.compare_file(str(home / "notes"), restored, T + 10) == bak.CHANGED
    os.symlink(str(tmp_path), tmp_path / "dirlink")
    assert bak.compare_file(str(tmp_path / "dirlink" / "shadow"), restored, T + 10) == bak.CHANGED
    with pytest.raises(OSError) as caught:
        bak.open_nofollow(str(tmp_path / "dirlink" / "shadow"))
    assert caught.value.errno in (errno.ELOOP, errno.ENOTDIR)


def test_a_large_sparse_file_is_hashed_in_chunks(tmp_path):
    live = tmp_path / "sparse"
    with open(live, "wb") as handle:
        handle.truncate(64 << 20)
    restored = tmp_path / "restored"
    with open(restored, "wb") as handle:
        handle.truncate(64 << 20)
        handle.seek(32 << 20)
        handle.write(b"\x01")
    for path in (live, restored):
        os.utime(path, (T, T))
    assert bak.compare_file(str(live), str(restored), T + 10) == bak.CORRUPT


SNAPSHOT = {"id": "06397467", "time": SNAPSHOT_TIME, "paths": ["/srv/data"]}


def test_drill_findings_pass():
    outcomes = {"/srv/data/a": bak.MATCH, "/srv/data/b": bak.CHANGED, "/srv/data/c": bak.DELETED}
    findings = bak.drill_findings({"ok": True, "summary": "no errors were found", "subset": "5%"}, SNAPSHOT, outcomes,
                                  {"ok": True, "seconds": 1.25, "mode": "whole snapshot"}, SNAPSHOT_TIME + 7200, 26, 3.5)
    assert [(f["control"], f["status"]) for f in findings] == [("DRL-001", "pass"), ("DRL-002", "pass"), ("DRL-003", "pass")]
    restore = findings[1]
    assert restore["actual"].startswith("restored in 1.2 s: 1 match, 1 changed since snapshot, 1 restorable but deleted")
    assert 'changed since snapshot: "/srv/data/b"' in restore["evidence"]
    assert "2.0 h old" in findings[2]["actual"]
    assert all(f["seconds"] == 3.5 for f in findings)


def test_drill_findings_tampered_pack_fails():
    check = dict(bak.parse_check(1, recorded("check_tampered_full.out"), recorded("check_tampered_full.err")), subset="5%")
    outcomes = {"/srv/data/a.txt": bak.MATCH, "/srv/data/sub/b.bin": bak.UNREADABLE}
    restore = {"ok": False, "error": "Fatal: There were 2 errors", "seconds": 1.0}
    findings = bak.drill_findings(check, SNAPSHOT, outcomes, restore, SNAPSHOT_TIME + 60, 26, 2.0)
    status = [(f["control"], f.get("subject"), f["status"]) for f in findings]
    assert ("DRL-001", None, "fail") in status and ("DRL-002", None, "fail") in status
    assert ("DRL-002", "/srv/data/sub/b.bin", "fail") in status


def test_drill_findings_a_corrupt_file_fails_even_when_restic_is_content():
    findings = bak.drill_findings(None, SNAPSHOT, {"/srv/data/a": bak.CORRUPT}, {"ok": True, "seconds": 1.0},
                                  SNAPSHOT_TIME, 26, 1.0)
    assert findings[0]["status"] == "skipped"
    assert [f["status"] for f in findings if f["control"] == "DRL-002"] == ["fail", "fail"]


def test_drill_findings_without_snapshot_or_too_old():
    empty = bak.drill_findings(None, None, {}, {"ok": False, "error": "the repository holds no snapshot"}, NOW, 26, 0.5)
    assert [f["status"] for f in empty if f["control"] != "DRL-001"] == ["fail", "fail"]
    old = bak.drill_findings(None, SNAPSHOT, {"/x": bak.MATCH}, {"ok": True, "seconds": 1.0}, SNAPSHOT_TIME + 30 * 3600, 26, 1.0)
    assert old[-1]["control"] == "DRL-003" and old[-1]["status"] == "fail"
