"""Unneeded network services (SVC-001, SVC-002) on one bookworm lab host, checked with the
host's own `ss -ltunp` and `systemctl is-active`.

With only sshd listening, the default allowlist (tcp/22 sshd) passes. A stray listener
(python3's http.server on 0.0.0.0:8089, started by systemd-run as its own unit) makes the
audit fail SVC-001, naming the port, the process and the unit; it is not stopped by the
audit. An apply whose policy lists that unit stops it (`systemctl is-active` says
inactive, `ss` no longer shows the port) and a second apply changes nothing. Nothing here
imports the role or the module.
"""

from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = pytest.mark.lab

PORT = 8089
UNIT = "yoroi-stray-http"
STOP = json.dumps({"yoroi_services_stop_unlisted": [UNIT]})


def ss_listeners(host) -> set:
    """{(protocol, address, port, process)} as `ss -Hltunp` prints them."""
    found = set()
    for line in host.check_output("ss -Hltunp").splitlines():
        fields = line.split()
        address, port = fields[4].rsplit(":", 1)
        names = re.findall(r'\("([^"]+)"', line) or ["?"]
        for name in names:
            found.add((fields[0], address.strip("[]").replace("*", "0.0.0.0"), int(port), name))
    return found


def svc(document):
    return [f for f in document["findings"] if f["control"].startswith("SVC-")]


def run(yoroi_cli, lab, node, state, command, *extra):
    argv = [command, "-i", str(lab.inventory_path), "--limit", node.name, "--tags", "services", "-o", "json", *extra]
    if command == "apply":
        argv.insert(1, "--yes")
    res = yoroi_cli.run(*argv, state_dir=state)
    return res, yoroi_cli.json(res)


@pytest.fixture(scope="module")
def lab_node(module_lab):
    lab, nodes = module_lab(1, "bookworm")
    return lab, nodes[0]


def test_allowlist_then_a_stray_listener_then_its_unit_stopped_by_policy(lab_node, yoroi_cli, tmp_path_factory):
    lab, node = lab_node
    host = node.host
    state = tmp_path_factory.mktemp("services-state")

    # only sshd listens: the default allowlist passes
    assert {name for _p, _a, _port, name in ss_listeners(host)} == {"sshd"}, ss_listeners(host)
    res, doc = run(yoroi_cli, lab, node, state, "audit")
    assert res.returncode == 0, svc(doc)
    assert [(f["control"], f["status"]) for f in svc(doc)] == [("SVC-001", "pass")]
    assert "sshd" in svc(doc)[0]["actual"]

    # a stray listener on every address: SVC-001 fails, naming port, process and unit
    host.check_output("systemd-run --unit %s python3 -m http.server %d --bind 0.0.0.0" % (UNIT, PORT))
    for _attempt in range(50):
        if ("tcp", "0.0.0.0", PORT, "python3") in ss_listeners(host):
            break
        time.sleep(0.2)
    else:
        pytest.fail("http.server did not start listening on %d: %s" % (PORT, ss_listeners(host)))
    res, doc = run(yoroi_cli, lab, node, state, "audit")
    assert res.returncode != 0
    failed = [f for f in svc(doc) if f["status"] == "fail"]
    assert [(f["control"], f["subject"]) for f in failed] == [("SVC-001", "tcp/%d" % PORT)]
    assert "0.0.0.0:%d python3 (%s.service)" % (PORT, UNIT) in failed[0]["actual"]
    # the audit stopped nothing; neither does an apply without a stop policy
    res, doc = run(yoroi_cli, lab, node, state, "apply")
    assert [(f["control"], f["status"]) for f in svc(doc) if f["status"] != "pass"] == [("SVC-001", "fail")]
    assert host.run("systemctl is-active %s" % UNIT).stdout.strip() == "active"
    assert ("tcp", "0.0.0.0", PORT, "python3") in ss_listeners(host)

    # the policy lists the unit: apply stops it
    res, doc = run(yoroi_cli, lab, node, state, "apply", "-e", STOP)
    assert res.returncode == 0, svc(doc)
    assert sorted((f["control"], f.get("subject"), f["status"]) for f in svc(doc)) == [
        ("SVC-001", None, "pass"), ("SVC-002", "%s.service" % UNIT, "fixed")]
    assert host.run("systemctl is-active %s" % UNIT).stdout.strip() == "inactive"
    assert not [item for item in ss_listeners(host) if item[2] == PORT]

    # a second apply changes nothing
    res, doc = run(yoroi_cli, lab, node, state, "apply", "-e", STOP)
    assert res.returncode == 0 and [h["changed"] for h in doc["hosts"].values()] == [0], doc["hosts"]
    assert sorted((f["control"], f["status"]) for f in svc(doc)) == [("SVC-001", "pass"), ("SVC-002", "pass")]
