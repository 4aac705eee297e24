#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asset_info
short_description: One host's entry in the fleet asset register
version_added: 0.1.0
description:
  - Reads, in one call, the host's OS and release (C(/etc/os-release)), kernel (C(uname)),
    virtualization (C(systemd-detect-virt), else C(/run/systemd/container)), the number of
    installed packages (the dpkg status file), pending updates and pending security updates
    (C(apt-get -s upgrade), a simulation; the security ones by the origin of the candidate
    version; no C(apt update) is run, so the answer is as fresh as the host's package lists),
    firmware devices (C(fwupdmgr get-devices --json) when fwupd is installed), listening
    TCP and UDP sockets with their processes (C(/proc/net) and C(/proc/PID/fd)), local human
    accounts (the UID range of C(login.defs)), the members of privileged groups and the last
    patch date (the newest C(status installed) line of C(/var/log/dpkg.log), else its mtime).
  - Changes nothing and returns no findings; the controller compares registers
    (C(yoroi assets --compare)).
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
options:
  privileged_groups:
    description: Groups whose members count as privileged users.
    type: list
    elements: str
    default: [root, sudo, admin, wheel]
notes:
  - Runs as root (C(become)) to see every process's sockets.
"""

EXAMPLES = r"""
- name: This host in the asset register
  yoroi.baseline.asset_info:
"""

RETURN = r"""
asset:
  description: The register entry of the host.
  returned: always
  type: dict
  sample:
    kind: host
    os: Debian GNU/Linux
    release: "12"
    kernel: 6.1.0-18-amd64
    virtualization: podman
    packages_installed: 276
    updates_pending: 3
    security_updates_pending: 1
    security_updates: [libssl3]
    firmware: []
    listening: [{protocol: tcp, address: 0.0.0.0, port: 22, processes: [sshd]}]
    human_accounts: [alice]
    privileged: {sudo: [alice]}
    last_patch: "2026-11-27T10:02:11"
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _assets, _hostfiles

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_LOG = "/var/log/dpkg.log"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
CONTAINER_FILE = "/run/systemd/container"
C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def _read(path, default=""):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except (IOError, OSError):
        return default


def _run(module, name, args):
    binary = module.get_bin_path(name)
    if not binary:
        return None
    rc, out, _err = module.run_command([binary] + args, environ_update=C_LOCALE)
    return out if rc == 0 else ("" if name != "systemd-detect-virt" else out)


def _last_patch():
    newest = _assets.last_installed(_read(DPKG_LOG))
    if newest:
        return newest
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.stat(DPKG_LOG).st_mtime))
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(privileged_groups=dict(type="list", elements="str", default=list(_assets.PRIVILEGED_GROUPS))),
        supports_check_mode=True,
    )
    os_release = _assets.parse_os_release(next((_read(p) for p in OS_RELEASE if os.path.exists(p)), ""))
    virt = _assets.virtualization(_run(module, "systemd-detect-virt", []), _read(CONTAINER_FILE))
    updates = _assets.parse_apt_simulation(_run(module, "apt-get", ["-s", "-q", "upgrade"]) or "")
    firmware = []
    if module.get_bin_path("fwupdmgr"):
        firmware = _assets.parse_fwupd_devices(_run(module, "fwupdmgr", ["get-devices", "--json", "--no-authenticate"]) or "")
    passwd, group = _read(_hostfiles.PASSWD), _read(_hostfiles.GROUP)
    asset = _assets.build(
        os_release,
        os.uname()[2],
        virt,
        _assets.count_installed(_read(DPKG_STATUS)),
        updates,
        firmware,
        _assets.listening_ports(_assets.read_sockets(), _assets.socket_processes(_assets.socket_owners())),
        _assets.human_accounts(passwd, _read(_hostfiles.LOGIN_DEFS)),
        _assets.privileged_members(group, passwd, module.params["privileged_groups"]),
        _last_patch(),
    )
    module.exit_json(changed=False, asset=asset)


if __name__ == "__main__":
    main()
