"""Log forwarding and the collector: the pure render, parse and evaluate functions, on
outputs recorded on bookworm lab hosts (recorded/log_forwarding: `sudo -V` and `sshd -T`
before and after an apply, /proc/net/tcp of a collector)."""

from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _log_forwarding as lf
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.log_forwarding import relp_frame

RECORDED = Path(__file__).parent / "recorded" / "log_forwarding"


def recorded(name):
    return (RECORDED / name).read_text()


@pytest.mark.parametrize("text,expected", [
    ("log1.example.org", ("log1.example.org", 2514)),
    ("log1.example.org:6514", ("log1.example.org", 6514)),
    ("10.0.0.5:2514", ("10.0.0.5", 2514)),
])
def test_endpoints(text, expected):
    assert lf.parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ['log1" tls="off', "log1:0", "log1:99999", "log1:port", "*.example.org", "", "a b"])
def test_malformed_endpoints_are_refused(text):
    with pytest.raises(ValueError):
        lf.parse_endpoint(text)


def test_peer_names_allow_wildcards_and_nothing_that_adds_words():
    lf.check_names(["web1", "*.branch.example", "web-2.example.org"], "peer")
    for bad in ['web1"]', "web1 web2", "web1\nx"]:
        with pytest.raises(ValueError):
            lf.check_names([bad], "peer")


def test_client_configuration_primary_and_failover():
    text = lf.render_client([("log1.example", 2514), ("log2.example", 6514)], "2G")
    assert 'module(load="imjournal" StateFile="yoroi-imjournal.state" IgnorePreviousMessages="on"' in text
    assert 'queue.filename="yoroi_forward"' in text and 'queue.saveOnShutdown="on"' in text
    assert 'queue.maxDiskSpace="2G"' in text
    first, second = text.split('action(')[1:]
    assert 'target="log1.example"' in first and 'tls.permittedPeer=["log1.example"]' in first
    assert 'action.resumeRetryCount="0"' in first and "execOnlyWhenPreviousIsSuspended" not in first
    assert 'target="log2.example"' in second and 'port="6514"' in second
    assert 'action.resumeRetryCount="-1"' in second and 'action.execOnlyWhenPreviousIsSuspended="on"' in second
    assert 'tls="on"' in second and 'tls.authMode="name"' in second
    assert text.rstrip().endswith("*.* call yoroi_forward")
    # one collector retries forever itself
    alone = lf.render_client([("log1.example", 2514)], "2G")
    assert 'action.resumeRetryCount="-1"' in alone and "execOnlyWhenPreviousIsSuspended" not in alone


def test_collector_configuration_and_rotation():
    text = lf.render_collector(2514, ["web1", "*.branch.example"])
    assert 'input(type="imrelp" port="2514" ruleset="yoroi_remote" tls="on"' in text
    assert 'tls.permittedPeer=["web1", "*.branch.example"]' in text and 'tls.authMode="name"' in text
    assert "%HOSTNAME:::secpath-replace%" in text
    rotate = lf.render_logrotate(90)
    assert "rotate 90" in rotate and "maxage 90" in rotate and "daily" in rotate
    assert "/usr/lib/rsyslog/rsyslog-rotate" in rotate


def test_journald_settings_follow_systemds_order():
    files = [("/etc/systemd/journald.conf", "[Journal]\n#Storage=auto\nSystemMaxUse=50M\n"),
             ("/etc/systemd/journald.conf.d/60-yoroi.conf", lf.render_journald("1G", 90)),
             ("/etc/systemd/journald.conf.d/99-other.conf", "[Journal]\nStorage=volatile\n")]
    settings = lf.journald_settings(files)
    assert settings["SystemMaxUse"] == "1G" and settings["Storage"] == "volatile"
    ok, actual = lf.journald_state(settings, True, "1G", 90)
    assert not ok and "Storage=volatile" in actual
    ok, actual = lf.journald_state(lf.journald_settings(files[:2]), True, "1G", 90)
    assert ok, actual
    assert lf.journald_state(lf.journald_settings(files[:2]), False, "1G", 90) == (False, "journald: no /var/log/journal")


def test_sshd_and_sudo_as_recorded_before_and_after_an_apply():
    assert lf.sshd_loglevel(recorded("sshd-T.bookworm.txt")) == "INFO"
    assert lf.sshd_state(lf.sshd_loglevel(recorded("sshd-T.bookworm.txt")))[0] is False
    assert lf.sshd_state(lf.sshd_loglevel(recorded("sshd-T.verbose.bookworm.txt"))) == (True, "LogLevel VERBOSE")
    facility, logfile = lf.sudo_logging(recorded("sudo-V.bookworm.txt"))
    assert (facility, logfile) == ("authpriv", None)
    assert lf.sudo_state(facility, logfile, "/var/log/sudo.log")[0] is False
    facility, logfile = lf.sudo_logging(recorded("sudo-V.logfile.bookworm.txt"))
    assert lf.sudo_state(facility, logfile, "/var/log/sudo.log") == (True, "syslog facility authpriv, log file /var/log/sudo.log")
    assert lf.sshd_state(None) == (False, "LogLevel unknown (sshd -T failed)")


def test_listening_ports_from_proc_net_tcp():
    assert 2514 in lf.listening_ports([recorded("proc-net-tcp.collector.txt")])
    assert 2514 not in lf.listening_ports([recorded("proc-net-tcp.txt")])


def test_delivery_needs_a_verified_collector_and_an_empty_queue():
    # recorded during a collector outage: 4791 lines waiting
    stats = lf.latest_stats(recorded("syslog-pstats.txt"))
    assert stats == {"time": "2026-11-28T03:28:07.541047+00:00", "size": 4791, "enqueued": 4800,
                     "actions": {"yoroi_collector_1": {"processed": 10, "failed": 0, "suspended": 0}}}
    probes = [("log1:2514", "timed out", None), ("log2:2514", None, "log2")]
    ok, actual = lf.delivery_state(probes, stats, 10)
    assert not ok and "4791 lines waiting in the queue at 2026-11-28T03:28:07" in actual, actual
    ok, actual = lf.delivery_state(probes, dict(stats, size=0), 10)
    assert ok and "collector log2:2514 seen, TLS verified (certificate log2)" in actual and "log1:2514: timed out" in actual
    assert "every line delivered as of %s (yoroi_collector_1 processed 10, failed 0)" % stats["time"] in actual
    ok, actual = lf.delivery_state(probes, stats, lf.STATS_MAX_AGE + 1)
    assert not ok and "no recent report" in actual
    ok, actual = lf.delivery_state([("log1:2514", "our certificate refused: the RELP session was closed", None)], stats, 10)
    assert not ok and "our certificate refused" in actual
    assert lf.latest_stats("no report here\n") is None


def test_the_client_configuration_reports_its_queue():
    text = lf.render_client([("log1.example", 2514)], "2G")
    assert 'module(load="impstats" interval="30" severity="7" format="json" resetCounters="off")' in text


def test_tree_names_each_silent_peer():
    now = 1_000_000
    ok, actual = lf.tree_state({"web1": now - 60}, ["web1", "web2.example", "*.branch"], now, 24)
    assert not ok and "web2.example never heard from" in actual and "web1 60s ago" in actual
    ok, actual = lf.tree_state({"web1": now - 60, "web2": now - 2 * 86400}, ["web1", "web2.example"], now, 24)
    assert not ok and "web2.example silent for 48.0 h" in actual
    assert lf.tree_state({"web1": now - 60}, ["web1"], now, 24)[0]


def test_states_fold_like_every_concern():
    before, after = (False, "was"), (True, "is")
    assert lf.state_finding("LOG-001", "x", before, after, False, True, "e")["status"] == "fixed"
    assert lf.state_finding("LOG-001", "x", before, after, True, True, "e") == lf.finding("LOG-001", "fail", "x", "was", "e")
    assert lf.state_finding("LOG-001", "x", after, after, False, False, "e")["status"] == "pass"


def test_relp_frames():
    assert relp_frame(1, b"open", b"relp_version=0") == b"1 open 14 relp_version=0\n"
    assert relp_frame(2, b"close") == b"2 close 0\n"
