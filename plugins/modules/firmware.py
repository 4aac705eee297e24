#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: firmware
short_description: Device firmware through fwupd - versions, offered updates, metadata age, pending reboots
version_added: 0.1.0
description:
  - Reads what fwupd knows (C(fwupdmgr get-remotes --json), C(get-devices --json),
    C(get-updates --json)) once and evaluates controls C(FWU-001) to C(FWU-003). Check mode
    never refreshes metadata (that can reach the network) and never installs firmware.
  - C(FWU-001), per updatable device - the newest release an allowed remote (O(remotes), and
    the local directory's C(yoroi-local) when O(local_dir) is set) offers is installed. A
    pending update fails, naming device, current and available version and remote. With
    O(policy=apply) it is installed (C(fwupdmgr install DEVICE-ID VERSION)), one device after
    the other, under the host lock. Devices in O(exclude) are C(skipped).
  - C(FWU-002), per allowed remote - C(download) remotes have metadata younger than
    O(max_metadata_age_days); C(local) and C(directory) remotes are read from disk and pass.
    An apply with O(refresh) runs C(fwupdmgr refresh) first when one is stale; a failure
    (an unreachable LVFS) is the evidence.
  - C(FWU-003) - no device waits for a reboot or an activation to finish an update; the
    devices that do are named and C(reboot_required) says so. The module never reboots.
  - No updatable device (most virtual machines) - C(FWU-001) and C(FWU-002) are C(skipped).
    In a container whose C(fwupd.service) refuses containers, every control is C(skipped)
    and fwupd is not asked (it would wait 25 s for D-Bus).
  - With O(local_dir), C(/etc/fwupd/remotes.d/yoroi-local.conf) names that directory of
    C(.cab) files (offline sites); once written, it is turned off, not removed, when
    O(local_dir) is emptied again.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only (no apt, no refresh, no install); C(changed) when an apply would install firmware, fwupd or the remote file.
  diff_mode:
    support: full
    description: Shows the local remote's file before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  policy:
    description: C(report) - only report pending updates. C(apply) - install them.
    type: str
    choices: [report, apply]
    default: report
  remotes:
    description: The fwupd remotes (ids, as C(fwupdmgr get-remotes) lists them) whose releases count and may be installed.
    type: list
    elements: str
    default: [lvfs]
  local_dir:
    description: A directory of C(.cab) files on the host, served as the remote C(yoroi-local) (allowed). Empty - none.
    type: str
    default: ""
  exclude:
    description: Devices left alone, by fwupd device id (40 hex digits) or GUID.
    type: list
    elements: str
    default: []
  max_metadata_age_days:
    description: The age a download remote's metadata may have (C(FWU-002)), 1 to 3650 days.
    type: int
    default: 30
  refresh:
    description: When applying, refresh the metadata of the allowed download remotes that are stale.
    type: bool
    default: true
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: Report pending firmware updates from the LVFS
  yoroi.baseline.firmware:
    packages: [fwupd]
  check_mode: true

- name: Install what a local directory of .cab files offers (an offline branch)
  yoroi.baseline.firmware:
    packages: [fwupd]
    policy: apply
    remotes: []
    local_dir: /srv/firmware
"""

RETURN = r"""
findings:
  description:
    - One finding per control (and per subject where a control is about one account or
      file) - C(control), C(status) (pass, fail, fixed, error, skipped), C(expected),
      C(actual), C(evidence), C(subject). A refused run has an C(error) finding for every
      control of the module.
  returned: always
  type: list
  elements: dict
devices:
  description: The devices with a firmware version after the run (name, id, version, updatable).
  returned: when fwupd answered
  type: list
  elements: dict
pending:
  description: The updates the policy installs (or would, in check mode) - device, id, to, remote.
  returned: when fwupd answered
  type: list
  elements: dict
installed:
  description: The updates this run installed - device, id, before, to, remote, rc.
  returned: when fwupd answered
  type: list
  elements: dict
reboot_required:
  description: A device waits for a reboot to finish an update.
  returned: when fwupd answered
  type: bool
files:
  description: The files this run wrote (or would write, in check mode), with their backups.
  returned: when fwupd answered
  type: dict
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.firmware import main


if __name__ == "__main__":
    main()
