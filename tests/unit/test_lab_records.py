"""Login-record encoders used by the seeder (pure logic)."""

import json
import struct

from yoroi.lab import seed


NOW = 1_790_000_000  # fixed clock


def test_struct_sizes_match_x86_64_glibc():
    assert seed.LASTLOG_SIZE == 292
    assert seed.UTMP_SIZE == 384


def test_lastlog_roundtrip():
    rec = seed.encode_lastlog(NOW, "pts/0", "198.51.100.42")
    assert len(rec) == 292
    assert seed.decode_lastlog(rec) == (NOW, "pts/0", "198.51.100.42")
    assert struct.unpack_from("<i", rec)[0] == NOW


def test_utmp_layout():
    rec = seed.encode_utmp(seed.USER_PROCESS, "bob", "pts/0", "198.51.100.23", NOW, pid=42)
    assert len(rec) == 384
    assert struct.unpack_from("<h", rec, 0)[0] == 7
    assert struct.unpack_from("<i", rec, 4)[0] == 42
    assert rec[8:13] == b"pts/0"
    assert rec[40:44] == b"ts/0"
    assert rec[44:47] == b"bob"
    assert struct.unpack_from("<ii", rec, 340) == (NOW, 0)  # ut_tv
    assert rec[348:352] == bytes([198, 51, 100, 23])  # ut_addr_v6[0], network order
    d = seed.decode_utmp(rec)
    assert (d["type"], d["user"], d["line"], d["host"], d["tv_sec"]) == (7, "bob", "pts/0", "198.51.100.23", NOW)


def test_wtmp_records_are_paired_and_time_ordered():
    data = seed.wtmp_records(NOW)
    recs = [seed.decode_utmp(data[i:i + 384]) for i in range(0, len(data), 384)]
    assert len(recs) == 2 * len(seed.SESSIONS)
    assert [r["type"] for r in recs] == [7, 8] * len(seed.SESSIONS)
    times = [r["tv_sec"] for r in recs]
    assert times == sorted(times)
    assert {r["user"] for r in recs if r["type"] == 7} == {"alice", "bob"}


def test_latest_sessions_match_brief():
    latest = seed.latest_sessions(NOW)
    assert set(latest) == {"alice", "bob"}
    assert NOW - latest["alice"][0] < 2 * 86400 + 60
    assert NOW - latest["alice"][0] >= 2 * 86400
    assert 400 * 86400 <= NOW - latest["bob"][0] < 400 * 86400 + 60
    for never in seed.NEVER_LOGGED_IN:
        assert never not in latest


def test_sqlite_rows_match_real_schemas():
    import sqlite3

    con = sqlite3.connect(":memory:")
    con.execute(seed.LASTLOG2_SCHEMA)
    con.execute(seed.WTMPDB_SCHEMA)
    con.executemany("INSERT INTO Lastlog2 VALUES (?,?,?,?,?)", seed.lastlog2_rows(NOW))
    con.executemany(
        "INSERT INTO wtmp(Type, User, Login, Logout, TTY, RemoteHost, Service) VALUES (?,?,?,?,?,?,?)",
        seed.wtmpdb_rows(NOW),
    )
    ll = dict(con.execute("SELECT Name, Time FROM Lastlog2"))
    assert ll == {u: session[0] for u, session in seed.latest_sessions(NOW).items()}
    rows = con.execute("SELECT Type, User, Login, Logout FROM wtmp").fetchall()
    assert all(row[0] == 3 and row[3] > row[2] for row in rows)
    assert max(r[2] for r in rows if r[1] == "alice") == ll["alice"] * 10**6  # microseconds


def test_script_embeds_config_and_runs_main():
    text = seed.script({"pubkey": "ssh-ed25519 AAAA x", "now": NOW})
    compile(text, "<seed>", "exec")
    assert text.startswith('"""Seed a lab host')
    assert "main(json.loads(" in text
    cfg = {"pubkey": "ssh-ed25519 AAAA x", "now": NOW}
    assert json.dumps(json.dumps(cfg)) in text
