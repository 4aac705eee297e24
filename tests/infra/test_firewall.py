"""The firewall (FWL-001..FWL-005) on three bookworm lab hosts, checked with the hosts' own
`nft`, `systemctl`, real SSH logins from the controller and real TCP connections between
lab hosts. Nothing here imports the role or the module.

Every lab host runs with CAP_NET_ADMIN (the lab gives it to all), so nftables loads real
rules in the container's own network namespace. The controller reaches a host through
its SSH port published on 127.0.0.1; the host sees that connection come from the lab
network's gateway, which the test reads from the host's own SSH_CONNECTION and makes the
management address.

Roles of the hosts: `hardened` is taken through apply, traffic, second apply and a
rollback to its previous table; `other` stays unhardened (the fail-first case, the source
of the test traffic, and the refused candidate); `fresh` has no ruleset when a candidate
whose fresh login fails is rolled back, to no table at all.

Not for real: the drop log. The kernel writes netfilter log lines only from the initial
network namespace unless the machine's `net.netfilter.nf_log_all_netns` is 1 (it is 0
here, and the test does not change the machine): so the test proves the log rule and its
rate limit are in place and that dropped packets reach it (its counter), not a log line.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import time

import pytest

pytestmark = pytest.mark.lab

RULES_FILE = "/etc/nftables.d/yoroi.nft"
ALLOWED, DENIED = 8080, 8081
COUNTER = re.compile(r"counter packets (\d+) bytes \d+")


def fwl(document):
    return [f for f in document["findings"] if f["control"].startswith("FWL-")]


def statuses(document):
    return dict((f["control"], f["status"]) for f in fwl(document))


def run(yoroi_cli, lab, node, state, command, variables, *extra):
    values = {"yoroi_firewall_enabled": True, "yoroi_firewall_guard_timeout": 20}
    values.update(variables)
    argv = [command, "-i", str(lab.inventory_path), "--limit", node.name, "--tags", "firewall", "-o", "json",
            "-e", json.dumps(values), *extra]
    if command == "apply":
        argv.insert(1, "--yes")
    res = yoroi_cli.run(*argv, state_dir=state)
    return res, yoroi_cli.json(res)


def ruleset(host) -> str:
    """`nft list ruleset` on the host, without counter values (they move with traffic)."""
    out = host.run("nft list ruleset")
    assert out.rc == 0, out.stderr
    return COUNTER.sub("counter", out.stdout)


def address_of(container: str) -> str:
    return subprocess.run(["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                           container], capture_output=True, text=True, check=True).stdout.strip()


def controller_address(node) -> str:
    """The address the host sees the controller's SSH connection come from: the host's own
    SSH_CONNECTION in a real login through the published port."""
    ssh = node.ssh
    out = subprocess.run(["ssh", "-i", ssh.key, "-p", str(ssh.port), "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                          "%s@%s" % (ssh.automation_user, ssh.address), "echo $SSH_CONNECTION"], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    return str(ipaddress.ip_address(out.stdout.split()[0]))


def fresh_login(node) -> bool:
    ssh = node.ssh
    out = subprocess.run(["ssh", "-i", ssh.key, "-p", str(ssh.port), "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=8",
                          "-o", "ControlPath=none", "%s@%s" % (ssh.automation_user, ssh.address), "true"],
                         capture_output=True, text=True, timeout=30, check=False)
    return out.returncode == 0


def connects(source, target_name: str, port: int) -> bool:
    """A real TCP connection from the ``source`` lab host to ``target_name:port``."""
    out = source.host.run("python3 -c 'import socket; socket.create_connection((\"%s\", %d), timeout=3)'"
                          % (target_name, port))
    return out.rc == 0


def drop_counter(host) -> int:
    out = host.run("nft list chain inet yoroi input")
    assert out.rc == 0, out.stderr
    line = [line for line in out.stdout.splitlines() if "yoroi-drop" in line]
    assert line, out.stdout
    return int(COUNTER.search(line[0]).group(1))


@pytest.fixture(scope="module")
def lab_hosts(module_lab):
    lab, nodes = module_lab(3, "bookworm")
    hardened, other, fresh = nodes
    controller = controller_address(hardened)
    assert controller_address(fresh) == controller
    for port in (ALLOWED, DENIED):
        hardened.host.check_output("systemd-run --unit=yoroi-test-http-%d python3 -m http.server %d" % (port, port))
    return lab, hardened, other, fresh, controller


def site(controller, other_address):
    return {"yoroi_firewall_management_addresses": [controller],
            "yoroi_firewall_keep_current_client": False,
            "yoroi_firewall_allow": [{"port": ALLOWED, "proto": "tcp", "from": [other_address]}]}


def test_unhardened_host_fails_every_control(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, _hardened, other, _fresh, controller = lab_hosts
    host = other.host
    # independently: no nftables, no table, nothing persisted
    assert host.run("command -v nft").rc != 0
    assert not host.file(RULES_FILE).exists
    res, doc = run(yoroi_cli, lab, other, tmp_path_factory.mktemp("fw"), "audit", site(controller, "10.0.0.1"))
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-2000:]
    assert statuses(doc) == dict(("FWL-%03d" % i, "fail") for i in range(1, 6)), fwl(doc)
    assert all("no table inet yoroi" in f["actual"] for f in fwl(doc)), fwl(doc)
    assert host.run("command -v nft").rc != 0, "the audit installed nftables"


def test_apply_denies_by_default_keeps_the_controller_and_persists(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, hardened, other, _fresh, controller = lab_hosts
    host = hardened.host
    other_address = address_of(other.container)
    # before: both ports open to the other lab host
    assert connects(other, hardened.name, ALLOWED) and connects(other, hardened.name, DENIED)

    res, doc = run(yoroi_cli, lab, hardened, tmp_path_factory.mktemp("fw"), "apply", site(controller, other_address))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert statuses(doc) == dict(("FWL-%03d" % i, "fixed") for i in range(1, 6)), fwl(doc)
    assert [f["status"] for f in doc["findings"] if f["control"] == "GRD-001"] == ["pass"], doc["findings"]

    # independently: the controller still gets in, by a fresh login
    assert fresh_login(hardened)
    # the table: policy drop, management first, the allowlist, the log rule last
    listing = host.check_output("nft list chain inet yoroi input")
    assert "type filter hook input priority filter; policy drop;" in listing
    rules = [line.strip() for line in listing.splitlines() if "comment" in line]
    assert rules[4] == 'ip saddr %s tcp dport 22 accept comment "yoroi: management"' % controller, rules
    assert rules[5] == 'ip saddr %s tcp dport %d accept comment "yoroi: allow tcp/%d"' % (other_address, ALLOWED, ALLOWED)
    assert rules[-1].startswith("counter packets") and 'limit rate 5/minute log prefix "yoroi-drop: "' in rules[-1]
    # real traffic from the other lab host: the allowlisted port answers, the other does not
    dropped = drop_counter(host)
    assert connects(other, hardened.name, ALLOWED)
    assert not connects(other, hardened.name, DENIED)
    assert drop_counter(host) > dropped, "the refused connection did not reach the log rule"
    # persisted: loaded at boot by nftables.service from /etc/nftables.conf
    assert host.run("systemctl is-enabled nftables").stdout.strip() == "enabled"
    assert 'include "%s"' % RULES_FILE in host.file("/etc/nftables.conf").content_string.splitlines()
    check = host.run("nft -c -f /etc/nftables.conf")
    assert check.rc == 0, check.stderr


def test_second_apply_changes_nothing_and_audit_passes(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, hardened, other, _fresh, controller = lab_hosts
    variables = site(controller, address_of(other.container))
    before = ruleset(hardened.host)
    mtime = hardened.host.file(RULES_FILE).mtime
    res, doc = run(yoroi_cli, lab, hardened, tmp_path_factory.mktemp("fw"), "apply", variables)
    assert res.returncode == 0, res.stdout[-3000:]
    assert doc["hosts"][hardened.name]["changed"] == 0, doc["hosts"]
    assert set(statuses(doc).values()) == {"pass"}, fwl(doc)
    res, doc = run(yoroi_cli, lab, hardened, tmp_path_factory.mktemp("fw"), "audit", variables)
    assert res.returncode == 0 and set(statuses(doc).values()) == {"pass"}, fwl(doc)
    assert ruleset(hardened.host) == before and hardened.host.file(RULES_FILE).mtime == mtime


def test_extra_accept_is_named_by_the_audit(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, hardened, other, _fresh, controller = lab_hosts
    variables = site(controller, address_of(other.container))
    hardened.host.check_output("nft add rule inet yoroi input tcp dport 3306 accept")
    try:
        res, doc = run(yoroi_cli, lab, hardened, tmp_path_factory.mktemp("fw"), "audit", variables)
        assert res.returncode == 2
        found = dict((f["control"], f) for f in fwl(doc))
        assert found["FWL-003"]["status"] == "fail" and "tcp dport 3306 accept" in found["FWL-003"]["actual"], found
        assert found["FWL-004"]["status"] == "fail", found  # the log rule is no longer last
    finally:
        res, doc = run(yoroi_cli, lab, hardened, tmp_path_factory.mktemp("fw"), "apply", variables)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "3306" not in hardened.host.check_output("nft list ruleset")


def test_candidate_that_cuts_off_the_automation_is_refused_before_loading(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, _hardened, other, _fresh, controller = lab_hosts
    host = other.host
    elsewhere = str(ipaddress.ip_address(controller) + 200)
    assert elsewhere != controller
    res, doc = run(yoroi_cli, lab, other, tmp_path_factory.mktemp("fw"), "apply",
                   {"yoroi_firewall_management_addresses": [elsewhere], "yoroi_firewall_keep_current_client": False})
    assert res.returncode == 1
    assert set(statuses(doc).values()) == {"error"}, fwl(doc)
    message = fwl(doc)[0]["evidence"]
    assert "refused before any change" in message and "automation account yoroi" in message, message
    assert "drop tcp from %s to port 22" % controller in message, message
    # independently: nothing was loaded or written, and the controller still gets in
    assert host.check_output("nft list ruleset").strip() == ""
    assert not host.file(RULES_FILE).exists
    assert host.run("systemctl is-enabled nftables").stdout.strip() != "enabled"
    assert fresh_login(other)


def test_a_failed_fresh_login_rolls_back_to_the_previous_table(lab_hosts, yoroi_cli, tmp_path_factory):
    """The pre-check is given a wrong client address (yoroi_firewall_client_address, as a
    controller behind an unknown NAT would be): it passes, the load cuts the controller
    off, the fresh login fails, and the guard puts the previous file and table back."""
    lab, hardened, other, _fresh, _controller = lab_hosts
    host = hardened.host
    other_address = address_of(other.container)
    before = ruleset(host)
    rules_before = host.file(RULES_FILE).content_string
    res, doc = run(yoroi_cli, lab, hardened, tmp_path_factory.mktemp("fw"), "apply",
                   {"yoroi_firewall_management_addresses": [other_address], "yoroi_firewall_keep_current_client": False,
                    "yoroi_firewall_client_address": other_address})
    assert res.returncode == 1, res.stdout[-3000:]
    grd = [f for f in doc["findings"] if f["control"] == "GRD-001"]
    assert grd and grd[0]["status"] == "error" and grd[0]["actual"].startswith("rolled back"), grd
    # independently: the previous table and file are back, and the controller gets in
    assert ruleset(host) == before
    assert host.file(RULES_FILE).content_string == rules_before
    assert fresh_login(hardened)
    assert connects(other, hardened.name, ALLOWED) and not connects(other, hardened.name, DENIED)


def test_a_failed_fresh_login_on_a_host_without_rules_leaves_none(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, _hardened, other, fresh, _controller = lab_hosts
    host = fresh.host
    other_address = address_of(other.container)
    conf_before = host.file("/etc/nftables.conf").exists
    res, doc = run(yoroi_cli, lab, fresh, tmp_path_factory.mktemp("fw"), "apply",
                   {"yoroi_firewall_management_addresses": [other_address], "yoroi_firewall_keep_current_client": False,
                    "yoroi_firewall_client_address": other_address})
    assert res.returncode == 1, res.stdout[-3000:]
    grd = [f for f in doc["findings"] if f["control"] == "GRD-001"]
    assert grd and grd[0]["actual"].startswith("rolled back"), grd
    # independently: no table at all, no Yoroi file, nftables.service as it was (not enabled)
    assert host.check_output("nft list ruleset").strip() == ""
    assert not host.file(RULES_FILE).exists
    assert host.run("systemctl is-enabled nftables").stdout.strip() != "enabled"
    assert 'include "%s"' % RULES_FILE not in (host.file("/etc/nftables.conf").content_string if conf_before else "")
    assert fresh_login(fresh)


def test_malformed_input_stops_before_the_host_is_touched(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, _hardened, other, _fresh, controller = lab_hosts
    before = other.host.check_output("nft list ruleset")
    res, _doc = run(yoroi_cli, lab, other, tmp_path_factory.mktemp("fw"), "apply",
                    {"yoroi_firewall_management_addresses": [controller],
                     "yoroi_firewall_allow": [{"port": 80, "from": ["0.0.0.0/0"]}]})
    assert res.returncode == 1
    assert "yoroi_firewall_allow[0].from[0]" in res.stdout + res.stderr
    assert other.host.check_output("nft list ruleset") == before
    assert not other.host.file(RULES_FILE).exists


def test_the_table_is_loaded_again_when_the_host_restarts(lab_hosts):
    """A restart of the container (systemd as PID 1 starts again; not a kernel reboot):
    nftables.service loads /etc/nftables.conf, which includes the Yoroi file."""
    from yoroi import lab as yoroi_lab

    _lab, hardened, _other, _fresh, _controller = lab_hosts
    before = ruleset(hardened.host)
    yoroi_lab.podman("restart", hardened.container, timeout=300)
    deadline = time.monotonic() + 180
    while hardened.host.run("systemctl is-system-running --wait").stdout.strip() not in ("running", "degraded"):
        assert time.monotonic() < deadline, "systemd did not come up after the restart"
        time.sleep(1)
    assert hardened.host.run("systemctl is-active nftables").stdout.strip() == "active"
    after = ruleset(hardened.host)
    # Debian's own (empty, accepting) table inet filter comes back with it; Yoroi's is as it was
    assert "table inet yoroi" in after
    assert after[after.index("table inet yoroi"):] == before[before.index("table inet yoroi"):]
    deadline = time.monotonic() + 60
    while not fresh_login(hardened):
        assert time.monotonic() < deadline, "the controller could not log in after the restart"
        time.sleep(1)
