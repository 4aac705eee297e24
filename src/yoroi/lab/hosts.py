"""Bring a lab of real Debian hosts up and down.

A lab NAME owns, and ``down`` removes, exactly what ``<state>/NAME/lab.json``
lists: containers ``yoroi-lab-NAME-<i>``, the network ``yoroi-lab-NAME`` and
the state folder (SSH key pair, inventory, lab.json). lab.json is written
before each resource is created, so a failed ``up`` can still be cleaned.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import seed
from .images import build_image, image_name, packages_for
from .limits import ensure_inotify
from .podman import PodmanError, exists, podman
from .state import check_name, state_root

SSH_USER = "yoroi"
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
LAB_LABEL = "org.yoroi.lab.name"
# How often a host is started again on a fresh port when its port was taken meanwhile.
PORT_ATTEMPTS = 5
# Bound on any single podman call of `up` (run, port, exec): nothing waits for ever.
PODMAN_CALL_TIMEOUT = 120
_PORT_LOCK = threading.Lock()  # hosts start in parallel; each takes its own port


class LabError(RuntimeError):
    pass


@dataclass
class LabHost:
    name: str  # inventory name, lab-NAME-i
    container: str  # yoroi-lab-NAME-i
    port: int | None
    user: str
    key: str  # private key path
    address: str = "127.0.0.1"


@dataclass
class Lab:
    name: str
    release: str
    state_dir: Path
    network: str
    hosts: list[LabHost] = field(default_factory=list)
    image: str = ""
    mirror: str | None = None
    seed: dict = field(default_factory=dict)

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def lab_json(self) -> Path:
        return self.state_dir / "lab.json"

    @property
    def key_path(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def containers(self) -> list[str]:
        return [h.container for h in self.hosts]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "release": self.release,
            "image": self.image,
            "mirror": self.mirror,
            "network": self.network,
            "containers": self.containers,
            "hosts": [asdict(h) for h in self.hosts],
            "ports": {h.container: h.port for h in self.hosts},
            "key": {"private": str(self.key_path), "public": str(self.key_path) + ".pub"},
            "inventory": str(self.inventory_path),
            "state_dir": str(self.state_dir),
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Lab":
        return cls(
            name=data["name"],
            release=data["release"],
            state_dir=Path(data["state_dir"]),
            network=data["network"],
            hosts=[LabHost(**h) for h in data.get("hosts", [])],
            image=data.get("image", ""),
            mirror=data.get("mirror"),
            seed=data.get("seed", {}),
        )

    def save(self) -> None:
        tmp = self.lab_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(self.lab_json)

    def ssh_argv(self, host: LabHost, *command: str) -> list[str]:
        """argv for an SSH key login as the automation user (loopback only)."""
        return [
            "ssh", "-i", host.key, "-p", str(host.port),
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
            f"{host.user}@{host.address}", *command,
        ]


def container_name(name: str, i: int) -> str:
    return f"yoroi-lab-{name}-{i}"


def host_name(name: str, i: int) -> str:
    return f"lab-{name}-{i}"


def network_name(name: str) -> str:
    return f"yoroi-lab-{name}"


def _yaml_str(value: str) -> str:
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(str(value))


def _key_fingerprint(public_key: Path) -> str | None:
    """``SHA256:...`` of an OpenSSH public key file, as ``ssh-keygen -lf`` prints it."""
    try:
        blob = base64.b64decode(public_key.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def render_inventory(lab: Lab) -> str:
    """Ansible YAML inventory: group ``lab`` with one entry per host."""
    lines = [
        f"# yoroi lab {lab.name!s} ({lab.release}); written by `yoroi lab up`",
        "all:",
        "  children:",
        "    lab:",
        "      vars:",
        "        yoroi_site: lab",
        "        # the lab's emergency account: no role may lock or remove it",
        "        yoroi_break_glass_accounts: [breakglass]",
        "        yoroi_site_contact: lab security desk, security@lab.example",
        "        # the access review decided alice, the one active user, keeps SSH",
        "        yoroi_ssh_allow_group_members: [alice]",
        # what a lab host grants on purpose: the access review reports anything else
        "        yoroi_access_review_approved_sudoers:",
        "          - root ALL=(ALL:ALL) ALL",
        "          - \"%sudo ALL=(ALL:ALL) ALL\"",
        f"          - {SSH_USER} ALL=(ALL:ALL) NOPASSWD:ALL",
        "        yoroi_access_review_approved_privileged: {sudo: [breakglass]}",
        # no time server in a plain lab (no NTP leaves it): tests/infra/test_time_sync.py
        # makes one of its hosts the lab's server and turns the role on for the others
        "        yoroi_time_sync_enabled: false",
        # no backup repository in the lab: the backup role is off unless a host's vars
        # name one (tests/infra/test_backup.py), or every full apply would end in drift
        "        yoroi_backup_enabled: false",
        # no updatable device on a plain lab host (fwupd does not even run in a container):
        # tests/infra/test_firmware.py makes fwupd's test devices run and turns the role on
        "        yoroi_firmware_enabled: false",
        # the firewall's management addresses are the controller's as a lab host sees it:
        # tests/infra/test_firewall.py finds them and turns the role on for its hosts
        "        yoroi_firewall_enabled: false",
        # no log collector in a plain lab: tests/infra/test_log_forwarding.py makes one
        # of its hosts the collector and turns the roles on
        "        yoroi_log_forwarding_enabled: false",
        "        yoroi_log_collector_enabled: false",
    ]
    fingerprint = _key_fingerprint(Path(lab.hosts[0].key + ".pub")) if lab.hosts else None
    if fingerprint:
        lines.append(f"        yoroi_access_review_approved_keys: {{{SSH_USER}: [\"{fingerprint}\"]}}")
    lines.append("      hosts:")
    for h in lab.hosts:
        lines += [
            f"        {h.name}:",
            f"          ansible_host: {h.address}",
            f"          ansible_port: {int(h.port)}",
            f"          ansible_user: {h.user}",
            f"          ansible_ssh_private_key_file: {_yaml_str(h.key)}",
            f"          ansible_ssh_common_args: '{SSH_COMMON_ARGS}'",
            "          ansible_become: true",
            "          ansible_python_interpreter: /usr/bin/python3",
            f"          yoroi_lab_container: {h.container}",
            f"          yoroi_lab_release: {lab.release}",
        ]
    return "\n".join(lines) + "\n"


def parse_port(output: str) -> int:
    """Host port from ``podman port CONTAINER 22/tcp`` (``127.0.0.1:40123``)."""
    for line in output.splitlines():
        line = line.strip()
        if line:
            return int(line.rsplit(":", 1)[1])
    raise LabError(f"no published port in {output!r}")


def free_port(taken: set[int], address: str = "127.0.0.1") -> int:
    """A loopback port that nothing listens on now and that ``taken`` does not hold.

    podman's own choice (``-p 127.0.0.1::22``) can pick a port another program holds,
    and the container then fails with "address already in use"; a port the kernel
    just handed out to a bound socket is free at that moment.
    """
    for dummy in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
            port = probe.getsockname()[1]
        if port not in taken:
            return port
    raise LabError(f"no free port on {address} outside the {len(taken)} already chosen")


def port_in_use(error: BaseException) -> bool:
    """Did podman fail because the published port was taken between choice and bind?"""
    text = str(error).lower()
    return "address already in use" in text or "port is already allocated" in text


def start_with_free_port(host: LabHost, start, taken: set[int], attempts: int = PORT_ATTEMPTS,
                         remove=None) -> int:
    """Start ``host`` by ``start(host, port)`` on a free port, again on another port
    when that one was taken meanwhile; returns the port. ``remove(host)`` clears a
    container left behind by a failed start. Other failures are raised at once."""
    last: BaseException | None = None
    for dummy in range(attempts):
        with _PORT_LOCK:
            port = free_port(taken)
            taken.add(port)
        try:
            start(host, port)
            return port
        except PodmanError as exc:
            if not port_in_use(exc):
                raise
            last = exc
            if remove:
                remove(host)
    raise LabError(f"{host.container}: no free port after {attempts} attempts: {last}")


def load(name: str) -> Lab | None:
    path = state_root() / check_name(name) / "lab.json"
    if not path.exists():
        return None
    return Lab.from_json(json.loads(path.read_text()))


def _wait_systemd(container: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        try:
            res = podman("exec", container, "systemctl", "is-system-running", "--wait",
                         check=False, timeout=max(5, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            continue
        state = res.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(1)
    try:
        failed = podman("exec", container, "systemctl", "--failed", "--no-legend", check=False,
                        timeout=15).stdout.strip()
    except subprocess.TimeoutExpired:
        failed = "(systemctl did not answer)"
    hint = ""
    try:
        logs = podman("logs", "--tail", "50", container, check=False, timeout=15)
        if "inotify" in (logs.stdout + logs.stderr):
            hint = ("; systemd ran out of inotify instances: raise fs.inotify.max_user_instances "
                    "(sysctl -w fs.inotify.max_user_instances=1024)")
    except subprocess.TimeoutExpired:
        pass
    raise LabError(f"{container}: systemd is {state!r} after {timeout:.0f}s; "
                   f"failed units: {failed or 'none'}{hint}")


def _seed(container: str, pubkey: str) -> dict:
    try:
        res = podman("exec", "-i", container, "python3", "-",
                     input=seed.script({"pubkey": pubkey, "now": time.time()}), timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{container}: seeding did not finish in 300s") from exc
    return json.loads(res.stdout.strip().splitlines()[-1])


def _wait_ssh(lab: Lab, host: LabHost, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            proc = subprocess.run(lab.ssh_argv(host, "true"), capture_output=True, text=True,
                                  timeout=30, check=False)
        except subprocess.TimeoutExpired:
            last = "ssh did not answer in 30s"
            continue
        if proc.returncode == 0:
            return
        last = proc.stderr.strip()
        time.sleep(1)
    raise LabError(f"{host.container}: SSH key login as {host.user} failed: {last}")


def _bring_up_host(lab: Lab, host: LabHost, pubkey: str, timeout: float) -> dict:
    _wait_systemd(host.container, timeout)
    result = _seed(host.container, pubkey)
    _wait_ssh(lab, host, timeout)
    return result


def up(
    name: str = "default",
    hosts: int = 1,
    release: str = "bookworm",
    mirror: str | None = None,
    timeout: float = 180,
    log=None,
) -> Lab:
    """Start ``hosts`` seeded lab hosts; return the :class:`Lab`.

    Builds the image if missing/outdated. On any failure everything created
    so far is removed again and the error re-raised.
    """
    say = log or (lambda msg: None)
    check_name(name)
    packages_for(release)
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    state_dir = state_root() / name
    if (state_dir / "lab.json").exists():
        raise LabError(f"lab {name!r} is already up ({state_dir / 'lab.json'}); "
                       f"run `yoroi lab down --name {name}` first")
    ensure_inotify(hosts, log or (lambda msg: print(msg, file=sys.stderr)))
    image = build_image(release, mirror, log=say)

    state_dir.mkdir(parents=True, exist_ok=True)
    lab = Lab(name=name, release=release, state_dir=state_dir, network=network_name(name),
              image=image, mirror=mirror)
    lab.save()
    try:
        key = lab.key_path
        if key.exists():
            key.unlink()
        Path(str(key) + ".pub").unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        f"yoroi-lab-{name}", "-f", str(key)], check=True, capture_output=True)
        key.chmod(0o600)
        pubkey = Path(str(key) + ".pub").read_text()

        podman("network", "create", "--label", f"{LAB_LABEL}={name}", lab.network,
               timeout=PODMAN_CALL_TIMEOUT)
        for i in range(1, hosts + 1):
            lab.hosts.append(LabHost(name=host_name(name, i), container=container_name(name, i),
                                     port=None, user=SSH_USER, key=str(key)))
        lab.save()  # record intent before the containers exist

        def start(h: LabHost, port: int) -> None:
            podman("run", "-d", "--name", h.container, "--label", f"{LAB_LABEL}={name}",
                   "--systemd=always", "--network", lab.network,
                   "--network-alias", h.name, "--hostname", h.name,
                   "-p", f"{h.address}:{port}:22", "--cap-add", "NET_ADMIN",
                   image, "/sbin/init", timeout=PODMAN_CALL_TIMEOUT)

        def remove(h: LabHost) -> None:
            podman("rm", "-f", h.container, check=False, timeout=PODMAN_CALL_TIMEOUT)

        taken: set[int] = set()

        def run(h: LabHost) -> None:
            try:
                start_with_free_port(h, start, taken, remove=remove)
                h.port = parse_port(podman("port", h.container, "22/tcp",
                                           timeout=PODMAN_CALL_TIMEOUT).stdout)
            except subprocess.TimeoutExpired as exc:
                raise LabError(f"{h.container}: podman did not answer in "
                               f"{PODMAN_CALL_TIMEOUT}s ({exc.cmd[1:3]})") from exc

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=min(8, hosts)) as pool:
            list(pool.map(run, lab.hosts))
        lab.save()
        say(f"started {hosts} container(s); waiting for systemd, seeding, waiting for ssh ...")
        with ThreadPoolExecutor(max_workers=min(8, hosts)) as pool:
            results = list(pool.map(lambda h: _bring_up_host(lab, h, pubkey, timeout), lab.hosts))
        lab.seed = {h.container: r for h, r in zip(lab.hosts, results)}
        lab.inventory_path.write_text(render_inventory(lab))
        lab.save()
        say(f"lab {name} up in {time.monotonic() - started:.0f}s")
        return lab
    except BaseException:
        try:
            down(name)
        except Exception:  # pragma: no cover - report the original error
            pass
        raise


def down(name: str = "default") -> bool:
    """Remove what ``lab.json`` says the lab created. Returns False if there was no lab."""
    check_name(name)
    lab = load(name)
    if lab is None:
        return False
    for c in lab.containers:
        if exists("container", c):
            podman("rm", "-f", "-t", "2", c, check=False)
            if exists("container", c):
                podman("rm", "-f", c)
    if lab.network and exists("network", lab.network):
        podman("network", "rm", lab.network)
    shutil.rmtree(lab.state_dir, ignore_errors=True)
    return True


def status(name: str = "default") -> dict | None:
    """What lab.json recorded plus each container's current state."""
    lab = load(name)
    if lab is None:
        return None
    info = lab.to_json()
    states = {}
    for c in lab.containers:
        res = podman("container", "inspect", "--format", "{{.State.Status}}", c, check=False)
        states[c] = res.stdout.strip() if res.returncode == 0 else "missing"
    info["container_states"] = states
    info["network_exists"] = exists("network", lab.network)
    return info


def image_for(release: str) -> str:
    return image_name(release)
