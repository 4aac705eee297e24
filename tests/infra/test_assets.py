"""The fleet asset register on one bookworm lab host, against the host's own tools.

`yoroi assets` registers the host; its facts are compared with independent reads on the
host (`ss -ltnp`, `dpkg -l`, os-release through the shell, `uname -r`, `getent group`).
A second run before anything changes must find no difference; then a new listening port
(python3's http.server on 127.0.0.1:8088, started by systemd-run) and a new member of
sudo appear, and `yoroi assets` (compared with the last saved register) must report
exactly those two differences. Nothing here imports the module or the CLI's code.
"""

from __future__ import annotations

import json
import re
import stat
import time

import pytest

pytestmark = pytest.mark.lab

PORT = 8088
NEW_SUDOER = "carol"


def ss_listeners(host) -> set:
    """{(address, port, process)} of the TCP listeners, as `ss -ltnp` prints them."""
    found = set()
    for line in host.check_output("ss -Hltnp").splitlines():
        fields = line.split()
        address, port = fields[3].rsplit(":", 1)
        for name in re.findall(r'\("([^"]+)"', line):
            found.add((address.strip("[]").replace("*", "0.0.0.0"), int(port), name))
    return found


def run_assets(yoroi_cli, lab, state, tmp_path, name):
    report = tmp_path / ("%s.json" % name)
    res = yoroi_cli.run("assets", "-i", str(lab.inventory_path), "-q", "-o", "json", "--report", str(report),
                        "--write", str(tmp_path / ("%s.csv" % name)), state_dir=state)
    register = yoroi_cli.json(res)
    run = json.loads(report.read_text()) if report.exists() else {}
    return res, register, run


def failures(run):
    return sorted((f["control"], f["subject"]) for f in run.get("findings", []) if f["status"] == "fail")


@pytest.fixture(scope="module")
def lab_node(module_lab):
    lab, nodes = module_lab(1, "bookworm")
    return lab, nodes[0]


def test_register_then_exactly_the_new_port_and_sudoer(lab_node, yoroi_cli, tmp_path_factory):
    lab, node = lab_node
    host = node.host
    state = tmp_path_factory.mktemp("assets-state")
    out = tmp_path_factory.mktemp("assets-out")

    res, register, run = run_assets(yoroi_cli, lab, state, out, "first")
    assert res.returncode == 0, res.stderr
    assert register["schema"] == "yoroi.assets/1"
    entry = register["assets"][node.name]
    assert entry["status"] == "ok" and entry["kind"] == "host"
    # the host's facts, read independently on the host
    assert entry["release"] == host.check_output(". /etc/os-release && echo $VERSION_ID")
    assert entry["codename"] == host.check_output(". /etc/os-release && echo $VERSION_CODENAME") == "bookworm"
    assert entry["kernel"] == host.check_output("uname -r")
    assert entry["packages_installed"] == int(host.check_output("dpkg -l | grep -c '^ii'"))
    assert entry["virtualization"] == host.check_output("systemd-detect-virt || true") == "podman"
    registered = {(p["address"], p["port"], name) for p in entry["listening"] if p["protocol"] == "tcp" for name in p["processes"]}
    assert registered == ss_listeners(host)
    assert ("0.0.0.0", 22, "sshd") in registered
    sudo_members = host.check_output("getent group sudo").split(":")[3].split(",")
    assert entry["privileged"]["sudo"] == sorted(m for m in sudo_members if m)
    assert NEW_SUDOER not in entry["privileged"]["sudo"]
    for name in ("first.json", "first.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert len((out / "first.csv").read_text().splitlines()) == 2  # header and the one host
    assert stat.S_IMODE((state / "assets" / "last.json").stat().st_mode) == 0o600

    # before the changes: nothing to find
    res, register, run = run_assets(yoroi_cli, lab, state, out, "before")
    assert res.returncode == 0, res.stderr
    assert failures(run) == []
    assert {f["control"] for f in run["findings"] if f["status"] == "pass"} == {"AST-001", "AST-002", "AST-003"}

    host.check_output("systemd-run --unit yoroi-assets-http python3 -m http.server %d --bind 127.0.0.1" % PORT)
    host.check_output("usermod -aG sudo %s" % NEW_SUDOER)
    for _attempt in range(50):
        if any(port == PORT for _a, port, _n in ss_listeners(host)):
            break
        time.sleep(0.2)
    else:
        pytest.fail("http.server did not start listening on %d" % PORT)

    res, register, run = run_assets(yoroi_cli, lab, state, out, "after")
    assert res.returncode == 2, res.stderr
    assert failures(run) == [("AST-002", "tcp/127.0.0.1:%d" % PORT), ("AST-003", "sudo:%s" % NEW_SUDOER)]
    port = [f for f in run["findings"] if f["control"] == "AST-002" and f["status"] == "fail"][0]
    assert "python3" in port["evidence"] and port["host"] == node.name
    listening = register["assets"][node.name]["listening"]
    assert ("127.0.0.1", PORT, "python3") in {(p["address"], p["port"], n) for p in listening for n in p["processes"]}
