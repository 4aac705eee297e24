"""The asset register's parsers, on outputs recorded from real bookworm hosts
(tests/unit/plugins/data/assets): a lab host, and a bookworm machine with pending updates
(`LC_ALL=C apt-get -s -q upgrade`; the lab image has none)."""

import gzip
import json
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _assets

DATA = Path(__file__).resolve().parents[1] / "data" / "assets"


def read(name):
    return (DATA / name).read_text()


@pytest.mark.parametrize("name, release, codename", [("os-release.bookworm", "12", "bookworm"), ("os-release.trixie", "13", "trixie")])
def test_os_release_of_the_lab_images(name, release, codename):
    values = _assets.parse_os_release(read(name))
    assert (values["NAME"], values["VERSION_ID"], values["VERSION_CODENAME"], values["ID"]) == \
        ("Debian GNU/Linux", release, codename, "debian")


def test_installed_packages_are_counted_from_the_status_file():
    # `dpkg -l | grep -c ^ii` on the same host printed 159
    text = gzip.decompress((DATA / "dpkg-status.bookworm.gz").read_bytes()).decode()
    assert _assets.count_installed(text) == 159


def test_a_removed_but_configured_package_is_not_installed():
    text = "Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: deinstall ok config-files\n\nPackage: c\nStatus: install ok half-configured\n"
    assert _assets.count_installed(text) == 1


def test_pending_updates_and_security_updates_by_candidate_origin():
    updates = _assets.parse_apt_simulation(read("apt-get-s-upgrade.with-updates.txt"))
    by_name = {u["name"]: u for u in updates}
    # grep -c '^Inst' printed 136, of which 83 name a -security origin
    assert len(updates) == 136
    assert sum(u["security"] for u in updates) == 83
    assert by_name["openssl"] == {"name": "openssl", "installed": "3.0.19-1~deb12u2", "candidate": "3.0.22-1~deb12u2",
                                  "origins": ["Debian-Security:12/oldstable-security"], "security": True}
    assert by_name["bash"]["security"] is False and by_name["bash"]["origins"] == ["Debian:12.15/oldstable"]
    # a candidate in both the point release and the security suite is a security update
    assert by_name["libgcrypt20"]["origins"] == ["Debian:12.15/oldstable", "Debian-Security:12/oldstable-security"]
    assert by_name["libgcrypt20"]["security"] is True


def test_no_pending_update_on_an_up_to_date_host():
    assert _assets.parse_apt_simulation(read("apt-get-s-upgrade.bookworm.txt")) == []


def test_a_newly_installed_package_has_no_old_version():
    line = "Inst linux-image-6.1.0-99-amd64 (6.1.99-1 Debian-Security:12/stable-security [amd64])"
    assert _assets.parse_apt_simulation(line) == [{"name": "linux-image-6.1.0-99-amd64", "installed": "", "candidate": "6.1.99-1",
                                                   "origins": ["Debian-Security:12/stable-security"], "security": True}]


def test_listening_tcp_sockets_from_proc_net():
    # `ss -ltnp` on the same host: sshd on 0.0.0.0:22 and [::]:22, python3 on 127.0.0.1:8088 and [::1]:8089
    sockets = _assets.parse_proc_net(read("proc-net-tcp.http-server"), "tcp") + \
        _assets.parse_proc_net(read("proc-net-tcp6.http-server"), "tcp6")
    assert sockets == [("tcp", "0.0.0.0", 22, "2048666"), ("tcp", "127.0.0.1", 8088, "2062904"),
                       ("tcp6", "::", 22, "2048677"), ("tcp6", "::1", 8089, "2062956")]


def test_an_established_connection_is_not_a_listener():
    sockets = _assets.parse_proc_net(read("proc-net-tcp.http-server"), "tcp")
    assert 0xDCDA not in [port for _p, _a, port, _i in sockets] and len(sockets) == 2


def test_an_unconnected_udp_socket_listens():
    assert _assets.parse_proc_net(read("proc-net-udp.controller"), "udp") == [("udp", "10.89.0.1", 53, "2047765")]


@pytest.mark.parametrize("hex_address, text", [
    ("00000000", "0.0.0.0"),
    ("0100007F", "127.0.0.1"),
    ("00000000000000000000000001000000", "::1"),
    ("00000000000000000000000000000000", "::"),
    ("0000000000000000FFFF00000100007F", "::ffff:127.0.0.1"),
    ("000080FE00000000FF005702FE2B7A9E", "fe80::257:ff:9e7a:2bfe"),
])
def test_proc_net_addresses(hex_address, text):
    assert _assets._address(hex_address) == text


def test_ports_are_joined_with_their_processes():
    sockets = _assets.parse_proc_net(read("proc-net-tcp.http-server"), "tcp") + \
        _assets.parse_proc_net(read("proc-net-tcp6.http-server"), "tcp6")
    ports = _assets.listening_ports(sockets, {"2048666": {"sshd"}, "2048677": {"sshd"}, "2062904": {"python3"}})
    assert ports == [
        {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "processes": ["sshd"]},
        {"protocol": "tcp", "address": "::", "port": 22, "processes": ["sshd"]},
        {"protocol": "tcp", "address": "127.0.0.1", "port": 8088, "processes": ["python3"]},
        {"protocol": "tcp", "address": "::1", "port": 8089, "processes": []},
    ]


def test_socket_inode_of_an_fd_link():
    assert _assets.socket_inode("socket:[2062904]") == "2062904"
    assert _assets.socket_inode("/dev/null") is None and _assets.socket_inode("pipe:[12]") is None


PASSWD = "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n" \
         "alice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nsudo:x:27:alice,breakglass\nadm:x:4:bob\nwheel:x:10:\n"


def test_human_accounts_are_the_login_defs_uid_range():
    assert _assets.human_accounts(PASSWD, "UID_MIN 1000\nUID_MAX 60000\n") == ["alice", "bob"]
    assert _assets.human_accounts(PASSWD, "UID_MIN 1001\n") == ["bob"]


def test_privileged_members_include_primary_group_members():
    assert _assets.privileged_members(GROUP, PASSWD) == {"root": ["root", "toor"], "sudo": ["alice", "breakglass"], "wheel": []}
    assert _assets.privileged_members(GROUP, PASSWD, ["adm"]) == {"adm": ["bob"]}


def test_last_patch_is_the_newest_installed_line():
    log = ("2026-11-27 23:26:22 status half-configured ca-certificates:all 20230311+deb12u1\n"
           "2026-11-27 23:26:22 status installed ca-certificates:all 20230311+deb12u1\n"
           "2026-10-01 08:00:00 status installed bash:amd64 5.2.15-2+b8\n"
           "2026-11-28 01:00:00 status unpacked openssl:amd64 3.0.22-1~deb12u2\n")
    assert _assets.last_installed(log) == "2026-11-27T23:26:22"
    assert _assets.last_installed("") is None


def test_fwupd_devices_with_a_version():
    text = json.dumps({"Devices": [
        {"Name": "Integrated Webcam HD", "Vendor": "Acme", "Version": "1.2.2", "Guid": ["b585990a-003e-5270-89d5-3705a17f9a43"]},
        {"Name": "CPU", "Vendor": "Intel"},
    ]})
    assert _assets.parse_fwupd_devices(text) == [
        {"name": "Integrated Webcam HD", "vendor": "Acme", "version": "1.2.2", "guid": "b585990a-003e-5270-89d5-3705a17f9a43"}]
    assert _assets.parse_fwupd_devices("not json") == []


def test_virtualization_from_detect_virt_else_the_container_file():
    assert _assets.virtualization("podman\n", "") == "podman"
    assert _assets.virtualization("", "podman\n") == "podman"
    assert _assets.virtualization(None, "") == "none"
