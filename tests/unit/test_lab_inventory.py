"""Inventory rendering, lab.json round trip, state dir, naming (no podman)."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from yoroi.lab import hosts, images, state
from yoroi.lab.hosts import Lab, LabHost


def _lab(tmp_path):
    key = str(tmp_path / "id_ed25519")
    return Lab(
        name="demo", release="bookworm", state_dir=tmp_path, network="yoroi-lab-demo",
        hosts=[LabHost(f"lab-demo-{i}", f"yoroi-lab-demo-{i}", 40000 + i, "yoroi", key)
               for i in (1, 2)],
        image="localhost/yoroi-lab:bookworm",
    )


def test_inventory_yaml(tmp_path):
    lab = _lab(tmp_path)
    inv = yaml.safe_load(hosts.render_inventory(lab))
    group = inv["all"]["children"]["lab"]["hosts"]
    assert list(group) == ["lab-demo-1", "lab-demo-2"]
    h = group["lab-demo-2"]
    assert h == {
        "ansible_host": "127.0.0.1",
        "ansible_port": 40002,
        "ansible_user": "yoroi",
        "ansible_ssh_private_key_file": str(tmp_path / "id_ed25519"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_become": True,
        "ansible_python_interpreter": "/usr/bin/python3",
        "yoroi_lab_container": "yoroi-lab-demo-2",
        "yoroi_lab_release": "bookworm",
    }


def test_inventory_approves_the_lab_key_for_the_access_review(tmp_path):
    lab = _lab(tmp_path)
    assert "yoroi_access_review_approved_keys" not in inv_vars(lab)  # no key made yet
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True)
    listed = subprocess.run(["ssh-keygen", "-lf", str(key) + ".pub"], check=True, capture_output=True, text=True).stdout.split()[1]
    group = inv_vars(lab)
    assert group["yoroi_access_review_approved_keys"] == {"yoroi": [listed]}
    assert "yoroi ALL=(ALL:ALL) NOPASSWD:ALL" in group["yoroi_access_review_approved_sudoers"]
    assert group["yoroi_access_review_approved_privileged"] == {"sudo": ["breakglass"]}


def inv_vars(lab):
    return yaml.safe_load(hosts.render_inventory(lab))["all"]["children"]["lab"]["vars"]


def test_lab_json_roundtrip(tmp_path):
    lab = _lab(tmp_path)
    lab.save()
    data = json.loads(lab.lab_json.read_text())
    assert data["containers"] == ["yoroi-lab-demo-1", "yoroi-lab-demo-2"]
    assert data["network"] == "yoroi-lab-demo"
    assert data["ports"] == {"yoroi-lab-demo-1": 40001, "yoroi-lab-demo-2": 40002}
    assert data["release"] == "bookworm"
    again = Lab.from_json(data)
    assert again.hosts == lab.hosts and again.inventory_path == lab.inventory_path


def test_names():
    assert hosts.container_name("x", 3) == "yoroi-lab-x-3"
    assert hosts.host_name("x", 3) == "lab-x-3"
    assert hosts.network_name("x") == "yoroi-lab-x"
    for bad in ("", "-a", "A", "a b", "a/b", "x" * 41):
        with pytest.raises(ValueError):
            state.check_name(bad)


def test_parse_port():
    assert hosts.parse_port("127.0.0.1:40123\n") == 40123


def test_state_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("YOROI_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state.state_root() == tmp_path / ".local/state/yoroi/lab"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert state.state_root() == tmp_path / "x/yoroi/lab"
    monkeypatch.setenv("YOROI_STATE_DIR", str(tmp_path / "s"))
    assert state.state_root() == tmp_path / "s" / "lab"


def test_image_recipe():
    argv = images.debootstrap_argv("trixie", "/t", "http://m.example/debian")
    assert argv[:2] == ["debootstrap", "--variant=minbase"]
    pkgs = argv[2].split("=", 1)[1].split(",")
    for p in ("systemd", "systemd-sysv", "openssh-server", "pamtester", "lastlog2", "wtmpdb",
              "libpam-lastlog2", "libpam-wtmpdb"):
        assert p in pkgs
    assert "libpam-pwquality" not in pkgs
    assert "lastlog2" not in images.packages_for("bookworm")
    assert argv[-3:] == ["trixie", "/t", "http://m.example/debian"]
    with pytest.raises(ValueError):
        images.packages_for("jessie")


def test_containers_conf_is_project_owned():
    from yoroi.lab.podman import CONTAINERS_CONF, podman_env

    text = Path(CONTAINERS_CONF).read_text()
    assert 'runtime = "runc"' in text
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]' in text
    assert podman_env()["CONTAINERS_CONF"] == str(CONTAINERS_CONF)


def test_customize_tree(tmp_path):
    from yoroi.lab.mirror import Mirrors

    for d in ("etc/apt/sources.list.d", "etc/ssh", "etc/systemd/system", "var/cache/apt/archives"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "etc/ssh/ssh_host_ed25519_key").write_text("k")
    (tmp_path / "etc/machine-id").write_text("abc\n")
    images.customize_tree(tmp_path, "bookworm", Mirrors("http://a.example/debian", None))
    assert not (tmp_path / "etc/ssh/ssh_host_ed25519_key").exists()
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert "deb http://a.example/debian bookworm main" in (tmp_path / "etc/apt/sources.list").read_text()
    assert (tmp_path / "etc/systemd/system/multi-user.target.wants" / images.HOSTKEY_UNIT_NAME).is_symlink()


def test_image_rebuilt_when_format_label_differs(monkeypatch):
    import subprocess

    labels = {"org.yoroi.lab.format": "0"}

    def fake_podman(*args, check=True, **kw):
        return subprocess.CompletedProcess(args, 0, json.dumps(labels), "")

    monkeypatch.setattr(images, "podman", fake_podman)
    assert images.image_is_current("bookworm") is False
    labels["org.yoroi.lab.format"] = images.LAB_FORMAT_VERSION
    assert images.image_is_current("bookworm") is True
    monkeypatch.setattr(images, "podman",
                        lambda *a, **k: subprocess.CompletedProcess(a, 125, "", "no such image"))
    assert images.image_format("bookworm") is None


def test_inventory_turns_backups_off_until_a_host_names_a_repository(tmp_path):
    group = yaml.safe_load(hosts.render_inventory(_lab(tmp_path)))["all"]["children"]["lab"]["vars"]
    assert group["yoroi_backup_enabled"] is False


def test_inventory_turns_the_firewall_off_until_a_test_names_the_controller(tmp_path):
    group = yaml.safe_load(hosts.render_inventory(_lab(tmp_path)))["all"]["children"]["lab"]["vars"]
    assert group["yoroi_firewall_enabled"] is False
