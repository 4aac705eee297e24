"""The firewall's pure parts over `nft -j list ruleset` recorded on lab hosts.

recorded/firewall/ holds, from bookworm (nftables 1.0.6) and trixie (1.1.3) containers
with CAP_NET_ADMIN: yoroi-sample.nft (this module's rendering, loaded with `nft -f`
twice), yoroi-<release>.json (the listing after that), stock-and-foreign-<release>.json
(Debian's /etc/nftables.conf loaded, an `ip fail2ban` table with an input chain, the
sample, and a `tcp dport 3306 accept` added by hand to the Yoroi chain) and
empty-<release>.json (no ruleset).
"""

import ipaddress
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access
from ansible_collections.yoroi.baseline.plugins.module_utils import _firewall as fw
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import fold

RECORDED = Path(__file__).resolve().parent / "recorded" / "firewall"
RELEASES = ("bookworm", "trixie")
MGMT = [ipaddress.ip_network("10.89.0.1"), ipaddress.ip_network("2001:db8::/64")]


def recorded(name):
    return (RECORDED / name).read_text()


def sample():
    """The model recorded in yoroi-sample.nft."""
    return fw.policy([22], MGMT, fw.check_allow([{"port": 8080, "from": ["10.89.0.0/24"]}, {"port": 53, "proto": "udp"}]))


def files_ok():
    return True, "persisted"


def test_the_rendering_is_what_was_loaded_on_the_lab_hosts():
    assert fw.render(sample()) == recorded("yoroi-sample.nft")


@pytest.mark.parametrize("release", RELEASES)
def test_the_loaded_table_reads_back_as_the_model(release):
    live = fw.parse_ruleset(recorded("yoroi-%s.json" % release))
    assert live["tables"] == ["inet yoroi"]
    assert live["unknown"] == []
    assert not fw.differs(live, sample())  # a second run loads nothing
    assert all(ok for ok, _actual in fw.evaluate(live, sample(), MGMT[:1], [22], *files_ok()).values())


@pytest.mark.parametrize("release", RELEASES)
def test_no_ruleset_fails_every_control(release):
    live = fw.parse_ruleset(recorded("empty-%s.json" % release))
    assert live["yoroi"] is None and live["tables"] == []
    assert fw.differs(live, sample())
    result = fw.evaluate(live, sample(), MGMT[:1], [22], False, "/etc/nftables.d/yoroi.nft missing")
    assert [ok for ok, _a in result.values()] == [False] * 5
    assert result["FWL-001"][1] == "no table inet yoroi (tables: none)"
    assert "missing" in result["FWL-005"][1]


@pytest.mark.parametrize("release", RELEASES)
def test_an_extra_accept_is_named_and_other_tables_are_listed(release):
    live = fw.parse_ruleset(recorded("stock-and-foreign-%s.json" % release))
    assert live["tables"] == ["inet filter", "ip fail2ban", "inet yoroi"]
    assert any(chain.startswith("ip fail2ban input (priority -1") for chain in live["input_chains"])
    assert fw.differs(live, sample())
    result = fw.evaluate(live, sample(), MGMT[:1], [22], *files_ok())
    assert result["FWL-001"][0] and result["FWL-002"][0]
    assert not result["FWL-003"][0] and "also accepted: tcp dport 3306 accept" in result["FWL-003"][1]
    assert not result["FWL-004"][0] and "not the chain's last rule" in result["FWL-004"][1]
    assert not result["FWL-005"][0] and "differs" in result["FWL-005"][1]


def test_check_mode_and_apply_fold_the_same_plan():
    before = fw.evaluate(fw.parse_ruleset(recorded("empty-bookworm.json")), sample(), MGMT[:1], [22], False, "missing")
    planned = {"tables": [], "unknown": [], "yoroi": dict(sample(), hook="input", chains=["input"])}
    after = fw.evaluate(planned, sample(), MGMT[:1], [22], *files_ok())
    assert [fold(before[c][0], after[c][0], True) for c in sorted(fw.CONTROLS)] == ["fail"] * 5
    assert [fold(before[c][0], after[c][0], False, attempted=True) for c in sorted(fw.CONTROLS)] == ["fixed"] * 5
    second = fw.evaluate(fw.parse_ruleset(recorded("yoroi-bookworm.json")), sample(), MGMT[:1], [22], *files_ok())
    assert [fold(second[c][0], second[c][0], False, attempted=False) for c in sorted(fw.CONTROLS)] == ["pass"] * 5


@pytest.mark.parametrize("address,proto,port,verdict,name", [
    ("10.89.0.1", "tcp", 22, "accept", "management"),
    ("10.89.0.2", "tcp", 22, "drop", "policy"),
    ("2001:db8::5", "tcp", 22, "accept", "management"),
    ("2001:db8:1::5", "tcp", 22, "drop", "policy"),
    ("::ffff:10.89.0.1", "tcp", 22, "accept", "management"),
    ("10.89.0.200", "tcp", 8080, "accept", "allow tcp/8080"),
    ("10.89.1.200", "tcp", 8080, "drop", "policy"),
    ("10.89.0.200", "udp", 8080, "drop", "policy"),
    ("192.0.2.1", "udp", 53, "accept", "allow udp/53"),
    ("2001:db8:9::1", "udp", 53, "accept", "allow udp/53"),
    ("192.0.2.1", "tcp", 53, "drop", "policy"),
])
def test_a_new_connection_is_judged_like_the_kernel(address, proto, port, verdict, name):
    got = fw.verdict_for(sample(), address, proto, port)
    assert (got[0], got[2]) == (verdict, name)


@pytest.mark.parametrize("release", RELEASES)
def test_the_recorded_table_judges_alike(release):
    live = fw.parse_ruleset(recorded("yoroi-%s.json" % release))["yoroi"]
    assert fw.reaches(live, "10.89.0.1", 22)[0]
    assert fw.reaches(live, "127.0.0.1", 22)[0]  # loopback
    ok, why = fw.reaches(live, "10.89.0.9", 22)
    assert not ok and why == "the firewall would drop tcp from 10.89.0.9 to port 22 (policy drop)"


def test_an_unknown_rule_decides_nothing_for_sure():
    live = fw.parse_ruleset(recorded("stock-and-foreign-bookworm.json"))["yoroi"]
    assert fw.reaches(live, "10.89.0.1", 22)[0]  # management comes before the unknown rule
    assert fw.reaches(None, "192.0.2.1", 22) == (True, "no Yoroi table")


def test_management_comes_before_the_allowlist_and_log_is_last():
    names = [item["name"] for item in sample()["rules"]]
    assert names == ["loopback", "established", "icmp", "icmpv6", "management", "management",
                     "allow tcp/8080", "allow udp/53", "log dropped"]


def test_a_containment_is_the_policy_without_an_allowlist():
    model = fw.policy([22, 2222], MGMT[:1], ())
    accepts = [item for item in model["rules"] if item["verdict"] == "accept" and item["name"] not in fw.ESSENTIAL]
    assert [(item["saddr"], item["dports"]) for item in accepts] == [(["10.89.0.1"], [22, 2222])]


def test_addresses_are_collapsed_and_split_by_family():
    model = fw.policy([22], [ipaddress.ip_network(n) for n in ("10.0.0.0/25", "10.0.0.128/25", "10.0.0.7", "fd00::/8")])
    mgmt = [item for item in model["rules"] if item["name"] == "management"]
    assert [(item["family"], item["saddr"]) for item in mgmt] == [(4, ["10.0.0.0/24"]), (6, ["fd00::/8"])]
    assert "ip saddr 10.0.0.0/24 tcp dport 22 accept" in fw.render(model)


@pytest.mark.parametrize("entries,message", [
    ([{"port": 0}], "port 0 is not from 1 to 65535"),
    ([{"port": "80"}], "port '80'"),
    ([{"port": True}], "port True"),
    ([{"port": 80, "proto": "icmp"}], "proto 'icmp'"),
    ([{"port": 80, "from": ["0.0.0.0/0"]}], "every address"),
    ([{"port": 80, "from": ["10.0.0.1/8"]}], "host bits set"),
    ([{"port": 80, "from": "10.0.0.0/8"}], "from must list"),
    ([{"port": 80, "from": ["10.0.0.0/8 }"]}], "not an IP address"),
    ([{"port": 80, "to": ["x"]}], "unknown key(s) to"),
    (["80/tcp"], "is not a mapping"),
])
def test_a_malformed_allowlist_is_refused(entries, message):
    with pytest.raises(ValueError, match=None) as info:
        fw.check_allow(entries)
    assert message in str(info.value)


@pytest.mark.parametrize("rate,ok", [("5/minute", True), ("10/second", True), ("1/day", True),
                                     ("0/minute", False), ("5/min", False), ("5/minute burst 9", False)])
def test_log_rates(rate, ok):
    if ok:
        assert fw.check_rate(rate) == rate
    else:
        with pytest.raises(ValueError):
            fw.check_rate(rate)


def test_the_include_line_is_added_once():
    stock = recorded("yoroi-sample.nft").split("table inet yoroi\n")[0]
    once = fw.plan_conf(stock)
    assert once.endswith('include "/etc/nftables.d/yoroi.nft"\n') and once.startswith(stock)
    assert fw.plan_conf(once) is None
    assert fw.plan_conf(None).startswith("#!/usr/sbin/nft -f\n")
    assert fw.plan_conf("flush ruleset") == 'flush ruleset\n\n# the Yoroi firewall\'s table (yoroi.baseline.firewall)\ninclude "/etc/nftables.d/yoroi.nft"\n'


def test_the_reload_unit_loads_the_file_or_removes_the_table():
    unit = fw.render_reload_unit()
    assert "exec /usr/sbin/nft -f /etc/nftables.d/yoroi.nft" in unit
    assert "exec /usr/sbin/nft delete table inet yoroi" in unit
    assert "flush ruleset" not in unit


class LiveSshd(object):
    """sshd -T -C of a live configuration that lets the key in from anywhere."""

    def effective(self, user=None, conn=None):
        return access.parse_effective("pubkeyauthentication yes\nauthenticationmethods any\nport 22\nport 2222\n"), ""


def test_the_access_engine_refuses_a_table_that_drops_the_automation():
    automation = access.account("yoroi", 1005, {"yoroi"}, key=True, role="automation")
    conns = [{"addr": "10.89.0.1"}, {"addr": "10.89.0.7"}]
    model = fw.policy([22, 2222], MGMT[:1])
    results, errors = access.who_loses_access(LiveSshd(), [automation], conns,
                                              reach=lambda addr, port: fw.reaches(model, addr, port))
    assert errors == []
    assert results["yoroi"]["problems"] == [
        "from 10.89.0.7: the firewall would drop tcp from 10.89.0.7 to port 22 (policy drop)",
        "from 10.89.0.7: the firewall would drop tcp from 10.89.0.7 to port 2222 (policy drop)"]
    # the port the connection came in on, when known, is the one judged
    results, _errors = access.who_loses_access(LiveSshd(), [automation], [{"addr": "10.89.0.1", "lport": "2222"}],
                                               reach=lambda addr, port: fw.reaches(model, addr, port))
    assert results["yoroi"]["problems"] == []
