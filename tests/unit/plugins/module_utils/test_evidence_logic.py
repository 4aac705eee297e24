"""The evidence collection's pure parts on recorded /proc text (a Debian 12 host), the
bodyfile formatter, and the readers' refusals (symlinks, FIFOs, caps)."""

import os
import tarfile

from ansible_collections.yoroi.baseline.plugins.module_utils import _evidence

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:8723 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5286238 1 00000000ffa20e04 100 0 0 10 0
  12: 0100007F:AB0C 0100007F:B881 01 00000000:00000000 02:000AF2C4 00000000  1000        0 5520929 2 00000000ecca46c0 20 4 22 250 -1
"""
PROC_NET_TCP6 = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue"
    " tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000"
    " 00:00000000 00000000     0        0 23781 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0000000000000000FFFF00000100007F:0016 0000000000000000FFFF00000200007F:C350 01 00000000:00000000"
    " 00:00000000 00000000     0        0 23790 1 0000000000000000 100 0 0 10 0\n"
)
PROC_NET_UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  371: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18323 2 0000000000000000 0
"""
PROC_NET_UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
00000000a751062e: 00000002 00000000 00010000 0005 01 5502940 /run/systemd/journal/stdout
000000004ddde4bc: 00000003 00000000 00000000 0001 03 4805170
"""
# a command name holding a space and a parenthesis, as a process may choose
PROC_STAT = ("15837 (evil) x) R 15825 15825 8994 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 1417382 3133440 412 "
             "18446744073709551615 94649851584512 0")


def test_inet_sockets_listening_and_established_v4_and_v6():
    rows = _evidence.parse_proc_net(PROC_NET_TCP, "tcp") + _evidence.parse_proc_net(PROC_NET_TCP6, "tcp6")
    assert rows[0] == {"protocol": "tcp", "local": "127.0.0.1:34595", "remote": "0.0.0.0:0", "state": "LISTEN",
                       "uid": 0, "inode": 5286238}
    assert rows[1]["state"] == "ESTABLISHED" and rows[1]["remote"] == "127.0.0.1:47233" and rows[1]["uid"] == 1000
    assert rows[2]["local"] == ":::22" and rows[2]["state"] == "LISTEN"
    assert rows[3]["local"] == "127.0.0.1:22" and rows[3]["remote"] == "127.0.0.2:50000"


def test_udp_unconnected_and_unix_sockets():
    assert _evidence.parse_proc_net(PROC_NET_UDP, "udp")[0]["state"] == "UNCONN"
    unix = _evidence.parse_proc_unix(PROC_NET_UNIX)
    assert unix == [{"inode": 5502940, "state": "01", "path": "/run/systemd/journal/stdout"},
                    {"inode": 4805170, "state": "03", "path": ""}]


def test_process_fields():
    assert _evidence.parse_proc_stat(PROC_STAT) == (15825, 1417382)
    assert _evidence.parse_status_uid("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n") == 1000
    assert _evidence.parse_cmdline(b"/tmp/evil\x007200\x00") == ["/tmp/evil", "7200"]
    assert _evidence.exe_deleted("/tmp/evil (deleted)") and not _evidence.exe_deleted("/usr/bin/sleep")


def test_bodyfile_line_is_tsk3_and_hostile_names_keep_their_line_and_fields(tmp_path):
    path = tmp_path / "f"
    path.write_text("abc")
    st = os.lstat(path)
    line = _evidence.bodyfile_line(str(path), st)
    fields = line.split("|")
    assert len(fields) == 11 and fields[0] == "0" and fields[1] == str(path)
    assert fields[2:7] == [str(st.st_ino), "-rw-r--r--" if st.st_mode & 0o777 == 0o644 else fields[3],
                           str(st.st_uid), str(st.st_gid), "3"]
    assert fields[8] == str(int(st.st_mtime)) and fields[10] == "0"
    hostile = _evidence.bodyfile_line(b"/etc/a\nb|c\\d\xff", st)
    assert "\n" not in hostile and len(hostile.split("|")) == 11
    assert hostile.split("|")[1] == "/etc/a\\x0ab\\x7cc\\x5cd\\xff"


def test_read_capped_refuses_links_and_fifos_and_records_truncation(tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"x" * 100)
    (tmp_path / "link").symlink_to(data)
    os.mkfifo(tmp_path / "fifo")
    assert _evidence.read_capped(str(data), 1000) == (b"x" * 100, False)
    assert _evidence.read_capped(str(data), 10) == (b"x" * 10, True)
    assert _evidence.read_capped(str(data), 100) == (b"x" * 100, False)
    assert _evidence.read_capped(str(tmp_path / "link"), 1000)[0] is None
    assert _evidence.read_capped(str(tmp_path / "fifo"), 1000) == (None, "not a regular file")


def test_open_below_never_leaves_the_home(tmp_path):
    home, outside = tmp_path / "home", tmp_path / "outside"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("key")
    outside.mkdir()
    (outside / "authorized_keys").write_text("secret")
    opened = _evidence.open_below(str(home), ".ssh/authorized_keys")
    dir_fd, leaf = opened
    try:
        assert _evidence.read_capped(leaf, 100, dir_fd=dir_fd) == (b"key", False)
    finally:
        os.close(dir_fd)
    (home / ".ssh" / "authorized_keys").unlink()
    (home / ".ssh").rmdir()
    (home / ".ssh").symlink_to(outside)
    assert _evidence.open_below(str(home), ".ssh/authorized_keys") is None
    assert _evidence.open_below(str(home), "../outside/authorized_keys") is None


def test_bundle_caps_and_a_failing_step_keeps_the_others(tmp_path):
    caps = {"file_bytes": 5, "bundle_bytes": 12}
    bundle = _evidence.Bundle(str(tmp_path / "b.tar.gz"), caps)
    (tmp_path / "f").write_text("0123456789")
    bundle.add_file("f", str(tmp_path / "f"))

    def broken(_bundle):
        raise RuntimeError("boom")

    bundle.step("broken", broken)
    bundle.step("fine", lambda b: b.add("fine", b"abcd"))
    bundle.add("too-big", b"x" * 10)
    bundle.close()
    with tarfile.open(bundle.path) as tar:
        assert sorted(tar.getnames()) == ["f", "fine"]
        assert tar.extractfile("f").read() == b"01234"
    assert [item["reason"] for item in bundle.truncated] == ["read the first 5 bytes", "bundle size cap reached; not added"]
    assert bundle.errors == [{"step": "broken", "error": "RuntimeError: boom"}]
    assert [item["step"] for item in bundle.timings] == ["broken", "fine"]
