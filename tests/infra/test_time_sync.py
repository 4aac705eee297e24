"""Time synchronization (TIM-001..TIM-003) on three bookworm lab hosts, checked with the
hosts' own `chronyc`, `systemctl` and `dpkg`.

The test makes the first host the lab's time server itself (chrony with `local stratum 8`
and `allow` for the lab network: lab-only settings, kept here and out of the role). The
second host is pointed at it through `yoroi_time_sync_servers`; the third at a host that
answers no NTP (the second, whose chronyd serves nobody). Nothing here imports the role
or the module.

What ran for real: apt installing chrony inside the module's call, the files, chronyd
running and measuring its offset to the lab server over the lab network (`chronyc -n
tracking` and `chronyc -n sources` on the client: the reference, stratum, offset and the
one source it uses). Not for real: setting the clock. A container may not set the clock
(no CAP_SYS_TIME, and the clock is the machine's), so chronyd runs with -x there (the
role's clock_control `auto`): it measures and reports, it sets nothing.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

pytestmark = pytest.mark.lab

SOURCES_FILE = "/etc/chrony/sources.d/yoroi.sources"
SYNC_DEADLINE = 60


def tim(document):
    return [f for f in document["findings"] if f["control"].startswith("TIM-")]


def statuses(document):
    return sorted((f["control"], f["status"]) for f in tim(document))


def run(yoroi_cli, lab, node, state, command, servers, *extra):
    variables = {"yoroi_time_sync_enabled": True, "yoroi_time_sync_servers": servers}
    argv = [command, "-i", str(lab.inventory_path), "--limit", node.name, "--tags", "time_sync", "-o", "json",
            "-e", json.dumps(variables), *extra]
    if command == "apply":
        argv.insert(1, "--yes")
    res = yoroi_cli.run(*argv, state_dir=state)
    return res, yoroi_cli.json(res)


def tracking(host) -> dict:
    """`chronyc -n tracking` as {field: value}, read on the host itself."""
    out = host.run("chronyc -n tracking")
    assert out.rc == 0, out.stdout + out.stderr
    return dict((k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in out.stdout.splitlines() if ":" in line))


def address_of(container: str) -> tuple[str, int]:
    out = subprocess.run(["podman", "inspect", "-f",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.IPPrefixLen}}{{end}}", container],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


def lab_time_server(node) -> str:
    """Make ``node`` the lab's NTP server: chronyd serving its own clock at stratum 8 to the
    lab network, with -x (a container may not set the clock). Returns its address."""
    import ipaddress

    address, prefix = address_of(node.container)
    network = ipaddress.ip_network("%s/%d" % (address, prefix), strict=False)
    host = node.host
    out = host.run("apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q -y install chrony")
    assert out.rc == 0, out.stdout[-2000:] + out.stderr[-2000:]
    host.check_output("mkdir -p /etc/systemd/system/chrony.service.d")
    host.check_output("printf '%%s' %s > /etc/chrony/conf.d/lab-server.conf",
                      "local stratum 8\nallow %s\n" % network)
    host.check_output("printf '%%s' %s > /etc/systemd/system/chrony.service.d/lab-server.conf",
                      "[Unit]\nConditionCapability=\n[Service]\nExecStart=\nExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x\n")
    host.check_output("systemctl daemon-reload && systemctl restart chrony")
    deadline = time.monotonic() + 30
    while tracking(host).get("Reference ID", "").split()[0] != "7F7F0101":
        assert time.monotonic() < deadline, tracking(host)
        time.sleep(0.5)
    return address


@pytest.fixture(scope="module")
def lab_hosts(module_lab):
    lab, nodes = module_lab(3, "bookworm")
    server, client, lost = nodes
    return lab, server, client, lost, lab_time_server(server)


def test_unhardened_client_fails_then_apply_synchronizes_it(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, server, client, _lost, server_address = lab_hosts
    host = client.host
    state = tmp_path_factory.mktemp("time-state")

    # unhardened: no time daemon at all, and the audit says so for every control
    assert host.run("dpkg -s chrony").rc != 0
    assert host.run("systemctl is-active chrony").stdout.strip() != "active"
    assert host.run("command -v chronyc").rc != 0
    res, doc = run(yoroi_cli, lab, client, state, "audit", [server.name])
    assert res.returncode == 2, tim(doc)
    assert statuses(doc) == [("TIM-001", "fail"), ("TIM-002", "fail"), ("TIM-003", "fail")]
    assert "chrony not installed" in tim(doc)[0]["actual"]
    assert "not synchronized: chrony.service is not running" == tim(doc)[2]["actual"]
    assert host.run("dpkg -s chrony").rc != 0, "the audit installed chrony"

    # apply: chrony installed, pointed at the lab server only
    res, doc = run(yoroi_cli, lab, client, state, "apply", [server.name])
    assert res.returncode in (0, 2), res.stdout[-3000:] + res.stderr[-2000:]
    assert dict((f["control"], f["status"]) for f in tim(doc))["TIM-001"] == "fixed", tim(doc)
    assert dict((f["control"], f["status"]) for f in tim(doc))["TIM-002"] == "fixed", tim(doc)
    assert host.run("systemctl is-active chrony").stdout.strip() == "active"
    assert host.run("systemctl is-enabled chrony").stdout.strip() == "enabled"
    assert host.file(SOURCES_FILE).content_string.splitlines()[1:] == ["server %s iburst" % server.name]

    # independently: chronyd itself takes the lab server as its reference
    deadline = time.monotonic() + SYNC_DEADLINE
    while True:
        now = tracking(host)
        if now["Leap status"] == "Normal" and now["Reference ID"].endswith("(%s)" % server_address):
            break
        assert time.monotonic() < deadline, "not synchronized within %d s: %s" % (SYNC_DEADLINE, now)
        time.sleep(1)
    assert now["Stratum"] == "9"
    # Debian's pool and DHCP sources are out: the lab server is the one source chronyd has
    sources = [line.split()[1] for line in host.check_output("chronyc -n sources").splitlines() if line[:1] == "^"]
    assert sources == [server_address], sources

    # a second apply changes nothing, and an audit agrees, with the offset as evidence
    res, doc = run(yoroi_cli, lab, client, state, "apply", [server.name])
    assert res.returncode == 0 and [h["changed"] for h in doc["hosts"].values()] == [0], (doc["hosts"], tim(doc))
    assert statuses(doc) == [("TIM-001", "pass"), ("TIM-002", "pass"), ("TIM-003", "pass")]
    res, doc = run(yoroi_cli, lab, client, state, "audit", [server.name])
    assert res.returncode == 0, tim(doc)
    synced = tim(doc)[2]
    assert synced["status"] == "pass"
    assert "reference 0A" in synced["actual"] and "(%s)" % server_address in synced["actual"], synced
    assert "stratum 9" in synced["actual"] and " ms" in synced["actual"], synced
    assert "chronyd -x" in tim(doc)[0]["evidence"]

    # a malformed server stops the run before the host is touched
    before = host.check_output("stat -c '%%Y %%s' %s", SOURCES_FILE)
    res, doc = run(yoroi_cli, lab, client, state, "apply", ["ntp.example.org\nserver evil.example"])
    assert res.returncode == 1 and "yoroi_time_sync_servers" in " ".join(doc["hosts"][client.name]["errors"]), doc["hosts"]
    assert host.check_output("stat -c '%%Y %%s' %s", SOURCES_FILE) == before


def test_a_client_whose_server_does_not_answer_is_reported_unsynchronized(lab_hosts, yoroi_cli, tmp_path_factory):
    lab, _server, client, lost, _address = lab_hosts
    host = lost.host
    state = tmp_path_factory.mktemp("time-state")
    # the client host resolves on the lab network but serves no NTP (no `allow`)
    res, doc = run(yoroi_cli, lab, lost, state, "apply", [client.name], "-e", "yoroi_time_sync_wait=5")
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-2000:]
    found = dict((f["control"], f) for f in tim(doc))
    assert (found["TIM-001"]["status"], found["TIM-002"]["status"], found["TIM-003"]["status"]) == ("fixed", "fixed", "fail")
    assert "not synchronized" in found["TIM-003"]["actual"] and "offset" in found["TIM-003"]["actual"], found["TIM-003"]
    assert "leap status Not synchronised" in found["TIM-003"]["actual"]
    # independently: chronyd has no reference
    now = tracking(host)
    assert now["Leap status"] == "Not synchronised" and now["Reference ID"].startswith("00000000"), now
    res, doc = run(yoroi_cli, lab, lost, state, "audit", [client.name])
    assert res.returncode == 2 and statuses(doc) == [("TIM-001", "pass"), ("TIM-002", "pass"), ("TIM-003", "fail")]
