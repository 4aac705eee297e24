"""OS patching (PAT-001..PAT-008) on three bookworm lab hosts, offline: a local apt
repository built here, checked with the hosts' own `dpkg-query`, `/var/log/dpkg.log` and
`systemctl`.

The test builds two versions of a tiny package, `yoroi-patch-probe` 1.0 and 1.1, with
`dpkg-deb` on the first lab host, writes a Packages index and an unsigned Release file whose
Origin, Label and Suite are those of Debian's security suite (Origin Debian, Label
Debian-Security, Suite and Codename bookworm-security: unattended-upgrades' default
Origins-Pattern matches them), and serves it with `python3 -m http.server` on the lab
network. Every host (the server too) gets a lab-only `[trusted=yes]` source pointing at it,
Debian's own sources moved aside (so the run patches from that repository alone; the
lab's own network has a route outside, the second site below has none), and 1.0
installed. The third host is in a `gateways` group, so it goes first. Nothing here imports
the role or the module.

What ran for real: apt and dpkg upgrading the package through the role's module call, the
rolling batches (`serial: 1`), a fresh SSH login and systemd's word on a listed service as
the health check, the rollout stopping at a host whose service was stopped. Not run: a
reboot (a container's reboot is not a kernel's; `yoroi_patch_reboot` stays false).
"""

from __future__ import annotations

import datetime
import json
import shlex

import pytest
import yaml

pytestmark = pytest.mark.lab

PROBE = "yoroi-patch-probe"
REPO_DIR = "/srv/yoroi-patch-repo"
PORT = 8080
SERVICE = "yoroi-patch-health.service"
ASIDE = "/etc/apt/yoroi-lab-aside"

BUILD = r"""
set -eu
R=%(repo)s
rm -rf $R /tmp/probe-build && mkdir -p $R/pool $R/dists/bookworm-security/main/binary-all /tmp/probe-build
for v in 1.0 1.1; do
  d=/tmp/probe-build/$v; mkdir -p $d/DEBIAN $d/usr/share/%(probe)s
  echo "$v" > $d/usr/share/%(probe)s/version
  printf 'Package: %(probe)s\nVersion: %%s\nArchitecture: all\nMaintainer: Yoroi lab <lab@example.invalid>\n' $v > $d/DEBIAN/control
  printf 'Section: misc\nPriority: optional\nDescription: Yoroi patching probe (lab only)\n' >> $d/DEBIAN/control
  dpkg-deb --build --root-owner-group $d $R/pool/%(probe)s_${v}_all.deb >/dev/null
done
""" % {"repo": REPO_DIR, "probe": PROBE}

INDEX = r"""
import email.utils, hashlib, os, subprocess
R = %(repo)r
entries = []
for name in sorted(os.listdir(R + "/pool")):
    path = R + "/pool/" + name
    data = open(path, "rb").read()
    control = subprocess.run(["dpkg-deb", "-f", path], capture_output=True, text=True, check=True).stdout.rstrip("\n")
    entries.append(control + "\nFilename: pool/%%s\nSize: %%d\nSHA256: %%s\n" %% (name, len(data), hashlib.sha256(data).hexdigest()))
packages = "\n".join(entries).encode()
rel = "main/binary-all/Packages"
open(R + "/dists/bookworm-security/" + rel, "wb").write(packages)
open(R + "/dists/bookworm-security/Release", "w").write(
    "Origin: Debian\nLabel: Debian-Security\nSuite: bookworm-security\nCodename: bookworm-security\n"
    "Date: %%s\nArchitectures: all amd64 arm64\nComponents: main\nDescription: Yoroi lab patch repository\n"
    "SHA256:\n %%s %%d %%s\n" %% (email.utils.formatdate(usegmt=True), hashlib.sha256(packages).hexdigest(), len(packages), rel))
""" % {"repo": REPO_DIR}


def sh(host, command):
    out = host.run(command)
    assert out.rc == 0, "%s: %s %s" % (command, out.stdout[-2000:], out.stderr[-2000:])
    return out.stdout


def version(node) -> str:
    """The probe's installed version, as dpkg itself says."""
    return node.host.run("dpkg-query -W -f '${Version}' %s" % PROBE).stdout.strip()


def probe_installs(node) -> list[str]:
    """The times dpkg recorded installing the probe at 1.1 (/var/log/dpkg.log)."""
    log = node.host.run("grep -h ' status installed %s:all 1.1' /var/log/dpkg.log || true" % PROBE).stdout
    return [" ".join(line.split()[:2]) for line in log.splitlines() if line.strip()]


def serve_repository(server):
    host = server.host
    sh(host, BUILD)
    sh(host, "python3 -c %s" % shlex.quote(INDEX))
    sh(host, "systemd-run --unit yoroi-patch-repo python3 -m http.server -d %s %d" % (REPO_DIR, PORT))


def use_only_the_lab_repository(node, server_name):
    """Lab-only: Debian's sources moved aside, the lab's repository the one source, 1.0 installed."""
    host = node.host
    sh(host, "mkdir -p %s && for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do "
             "[ -e \"$f\" ] && mv \"$f\" %s/ || true; done" % (ASIDE, ASIDE))
    sh(host, "echo 'deb [trusted=yes] http://%s:%d bookworm-security main' > /etc/apt/sources.list.d/yoroi-patch-lab.list"
       % (server_name, PORT))
    sh(host, "rm -rf /var/lib/apt/lists/* && for i in $(seq 30); do apt-get -q update >/dev/null 2>&1 && break; sleep 1; done; "
             "DEBIAN_FRONTEND=noninteractive apt-get -q -y install %s=1.0 >/dev/null" % PROBE)
    # the service listed for the health check
    sh(host, "systemctl is-active %s || systemd-run --unit %s sleep infinity" % (SERVICE, SERVICE.replace(".service", "")))
    assert version(node) == "1.0"


def back_to_1_0(nodes):
    for node in nodes:
        sh(node.host, "DEBIAN_FRONTEND=noninteractive apt-get -q -y --allow-downgrades install %s=1.0 >/dev/null" % PROBE)
        assert version(node) == "1.0"


@pytest.fixture(scope="module")
def patch_lab(module_lab, tmp_path_factory):
    lab, nodes = module_lab(3, "bookworm")
    server = nodes[0]
    serve_repository(server)
    for node in nodes:
        use_only_the_lab_repository(node, server.name)
    # the lab's inventory, with the last host in a `gateways` group and the health lists
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    lab_group = inventory["all"]["children"]["lab"]
    lab_group["vars"].update({"yoroi_patch_health_services": [SERVICE], "yoroi_patch_health_ports": ["22"],
                              "yoroi_timezone": "UTC"})
    inventory["all"]["children"]["gateways"] = {"hosts": {nodes[2].name: {}}}
    path = tmp_path_factory.mktemp("patch-inventory") / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    ordered = [nodes[2], nodes[0], nodes[1]]  # the gateway first, then inventory order
    return path, ordered


def run(yoroi_cli, state, inventory, command, *extra):
    argv = [command, "-i", str(inventory), "-o", "json", *extra]
    if command == "patch" and "--yes" not in extra:
        argv.insert(1, "--yes")
    res = yoroi_cli.run(*argv, state_dir=state)
    return res, yoroi_cli.json(res)


def pat(document, control):
    return dict((f["host"], f) for f in document["findings"] if f["control"] == control)


def not_today():
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    return "%s 00:00-23:59" % days[(datetime.datetime.now(datetime.timezone.utc).weekday() + 3) % 7]


def test_audit_fails_pat_001_naming_the_probe_and_changes_nothing(patch_lab, yoroi_cli, tmp_path_factory):
    inventory, nodes = patch_lab
    state = tmp_path_factory.mktemp("patch-state")
    res, doc = run(yoroi_cli, state, inventory, "audit", "--tags", "patching", "-e", "yoroi_patch_max_pending_days=0")
    assert res.returncode == 2, res.stderr[-2000:]
    found = pat(doc, "PAT-001")
    assert sorted(found) == sorted(n.name for n in nodes)
    for node in nodes:
        assert found[node.name]["status"] == "fail", found[node.name]
        assert "%s 1.0->1.1" % PROBE in found[node.name]["evidence"]
        assert found[node.name]["actual"] == "1 security update(s) pending longer than 0 day(s)"
        assert version(node) == "1.0", "the audit upgraded %s" % node.name
    # with the default limit (7 days) the same update is pending, not yet overdue
    res, doc = run(yoroi_cli, state, inventory, "audit", "--tags", "patching")
    assert all(f["status"] == "pass" and "%s 1.0->1.1" % PROBE in f["evidence"] for f in pat(doc, "PAT-001").values())
    # the baseline's apply (its module run for real, not checked first) upgrades nothing
    res, doc = run(yoroi_cli, state, inventory, "apply", "--yes", "--no-check-first", "--tags", "patching",
                   "-e", "yoroi_patch_max_pending_days=0")
    assert res.returncode == 2, res.stderr[-2000:]
    assert all(f["status"] == "fail" for f in pat(doc, "PAT-001").values())
    assert [version(node) for node in nodes] == ["1.0"] * 3
    assert all(probe_installs(node) == [] for node in nodes)


def test_malformed_inputs_stop_before_any_host_changes(patch_lab, yoroi_cli, tmp_path_factory):
    inventory, nodes = patch_lab
    state = tmp_path_factory.mktemp("patch-state")
    for variables, named in (({"yoroi_patch_window": "Saturday 2am"}, "yoroi_patch_window"),
                             ({"yoroi_patch_hold": ["openssl", "-y"]}, "yoroi_patch_hold"),
                             ({"yoroi_patch_health_ports": ["ssh"]}, "yoroi_patch_health_ports")):
        res = yoroi_cli.run("patch", "--yes", "--force", "-i", str(inventory), "-o", "json", "-e", json.dumps(variables),
                            state_dir=state)
        assert res.returncode == 1, (variables, res.stdout[-1500:])
        assert named in res.stdout, res.stdout[-1500:]
        assert [version(node) for node in nodes] == ["1.0"] * 3
        assert all(probe_installs(node) == [] for node in nodes)


def test_outside_the_window_nothing_changes_unless_forced_away(patch_lab, yoroi_cli, tmp_path_factory):
    inventory, nodes = patch_lab
    state = tmp_path_factory.mktemp("patch-state")
    res, doc = run(yoroi_cli, state, inventory, "patch", "-e", "yoroi_patch_window=%s" % not_today())
    assert res.returncode == 0, res.stderr[-2000:]
    window = pat(doc, "PAT-008")
    assert sorted(window) == sorted(n.name for n in nodes)
    assert all(f["status"] == "skipped" and f["actual"].startswith("outside") for f in window.values()), window
    assert [version(node) for node in nodes] == ["1.0"] * 3
    # no window set at all: nothing either
    res, doc = run(yoroi_cli, state, inventory, "patch")
    assert all(f["actual"] == "no maintenance window set" for f in pat(doc, "PAT-008").values())
    assert [version(node) for node in nodes] == ["1.0"] * 3
    # the text output says why, per host
    res = yoroi_cli.run("patch", "--yes", "-i", str(inventory), "-e", "yoroi_patch_window=%s" % not_today(),
                        state_dir=state)
    for node in nodes:
        assert "%s: not patched: outside %s" % (node.name, not_today()) in res.stdout, res.stdout


def test_a_failed_health_check_stops_the_rollout_at_that_host(patch_lab, yoroi_cli, tmp_path_factory):
    inventory, nodes = patch_lab
    first, broken, after = nodes
    state = tmp_path_factory.mktemp("patch-state")
    sh(broken.host, "systemctl stop %s" % SERVICE)
    try:
        res, doc = run(yoroi_cli, state, inventory, "patch", "--serial", "1", "--force")
    finally:
        sh(broken.host, "systemd-run --unit %s sleep infinity" % SERVICE.replace(".service", ""))
    assert res.returncode == 1, res.stderr[-2000:]
    health = pat(doc, "PAT-007")
    assert health[first.name]["status"] == "pass"
    assert health[broken.name]["status"] == "fail"
    assert "%s is inactive" % SERVICE in health[broken.name]["evidence"]
    assert after.name not in health
    assert "health check failed on %s" % broken.name in json.dumps(doc["hosts"][broken.name]), doc["hosts"]
    # independently: the hosts before it and itself were upgraded, the one after was not
    assert version(first) == "1.1" and version(broken) == "1.1"
    assert version(after) == "1.0" and probe_installs(after) == []
    back_to_1_0(nodes)


def test_patch_upgrades_every_host_batch_by_batch_and_a_second_run_changes_nothing(
        patch_lab, yoroi_cli, tmp_path_factory):
    inventory, nodes = patch_lab
    state = tmp_path_factory.mktemp("patch-state")
    before = dict((node.name, len(probe_installs(node))) for node in nodes)
    res = yoroi_cli.run("patch", "--yes", "--serial", "1", "-i", str(inventory),
                        "-e", "yoroi_patch_window=%s" % "Mon-Sun 00:00-24:00", state_dir=state)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    for node in nodes:
        assert "%s: upgraded %s 1.0->1.1" % (node.name, PROBE) in res.stdout, res.stdout
        assert version(node) == "1.1"
        assert node.host.file("/usr/share/%s/version" % PROBE).content_string.strip() == "1.1"
    # batch by batch, the gateway first: dpkg's own times of the upgrade on each host
    stamps = [probe_installs(node)[before[node.name]] for node in nodes]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3, stamps

    res, doc = run(yoroi_cli, state, inventory, "patch", "--serial", "1", "--force")
    assert res.returncode == 0, res.stderr[-2000:]
    assert [doc["hosts"][node.name]["changed"] for node in nodes] == [0, 0, 0], doc["hosts"]
    assert all(f["status"] == "pass" and f["upgraded"] == [] for f in pat(doc, "PAT-001").values())
    assert [len(probe_installs(node)) for node in nodes] == [before[node.name] + 1 for node in nodes]


# --- a site with no route outside ------------------------------------------------------
#
# Two hosts on a podman network made with `--internal` (no gateway: the hosts reach each
# other and nothing else). Ports cannot be published from such a network, so Ansible
# reaches them through the podman connection (as root) instead of SSH; everything else is
# the same run.

@pytest.fixture(scope="module")
def internal_site(unique_lab_name, tmp_path_factory):
    import subprocess
    import time

    from yoroi.lab import images

    name = unique_lab_name()
    network = "yoroi-lab-%s" % name
    containers = ["yoroi-lab-%s-%d" % (name, i) for i in (1, 2)]

    def podman(*args):
        return subprocess.run(["podman", *args], capture_output=True, text=True, check=True).stdout

    podman("network", "create", "--internal", network)
    try:
        for container in containers:
            host_name = container.rsplit("-", 1)[1]
            podman("run", "-d", "--name", container, "--hostname", "site-%s" % host_name, "--network", network,
                   "--network-alias", "site-%s" % host_name, "--systemd=always", images.image_name("bookworm"),
                   "/sbin/init")
        deadline = time.monotonic() + 60
        for container in containers:
            while subprocess.run(["podman", "exec", container, "systemctl", "is-system-running"],
                                 capture_output=True, text=True, check=False).stdout.strip() not in ("running", "degraded"):
                assert time.monotonic() < deadline, "%s: systemd did not come up" % container
                time.sleep(0.5)
        from types import SimpleNamespace

        import testinfra

        nodes = [SimpleNamespace(name="site-%d" % i, container=c, host=testinfra.get_host("podman://" + c))
                 for i, c in enumerate(containers, 1)]
        serve_repository(nodes[0])
        for node in nodes:
            use_only_the_lab_repository(node, "site-1")
        hosts = dict((node.name, {"ansible_connection": "containers.podman.podman", "ansible_host": node.container,
                                  "ansible_python_interpreter": "/usr/bin/python3"}) for node in nodes)
        inventory = {"all": {"children": {"offline_site": {
            "vars": {"yoroi_site": "offline", "yoroi_patch_health_services": [SERVICE], "yoroi_patch_health_ports": ["22"]},
            "hosts": hosts}}}}
        path = tmp_path_factory.mktemp("patch-offline") / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory))
        yield path, nodes
    finally:
        subprocess.run(["podman", "rm", "-f", *containers], capture_output=True, check=False)
        subprocess.run(["podman", "network", "rm", network], capture_output=True, check=False)


def test_a_site_with_no_route_outside_patches_from_the_local_repository(internal_site, yoroi_cli, tmp_path_factory):
    inventory, nodes = internal_site
    state = tmp_path_factory.mktemp("patch-state")
    for node in nodes:
        # no route outside: the lab's mirror (or anything else) cannot be reached
        out = node.host.run("python3 -c 'import urllib.request; urllib.request.urlopen(\"http://deb.debian.org/\", "
                            "timeout=5)'")
        assert out.rc != 0 and "unreachable" in out.stderr, out.stderr
        assert version(node) == "1.0"
    res, doc = run(yoroi_cli, state, inventory, "audit", "--tags", "patching", "-e", "yoroi_patch_max_pending_days=0")
    assert res.returncode == 2 and all(f["status"] == "fail" for f in pat(doc, "PAT-001").values())
    res = yoroi_cli.run("patch", "--yes", "--force", "--serial", "1", "-i", str(inventory), state_dir=state)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    for node in nodes:
        assert "%s: upgraded %s 1.0->1.1" % (node.name, PROBE) in res.stdout, res.stdout
        assert version(node) == "1.1"
