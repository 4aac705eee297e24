#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: patching
short_description: Pending OS updates, reboots, service restarts, unattended upgrades and holds; security upgrades
version_added: 0.1.0
description:
  - Reads once apt's simulation of a C(dist-upgrade) (C(apt-get -s --ignore-hold), the package lists as they
    are - an audit never runs C(apt-get update)), the headers of apt's Release files,
    C(/run/reboot-required) and its C(.pkgs), C(needrestart -b -r l) when needrestart is
    installed, C(apt-config dump) and C(apt-mark showhold), and evaluates C(PAT-001) to C(PAT-006).
  - A pending update is a security update when the origin of its candidate is a security suite
    (a suite ending in C(-security), or the label C(Debian-Security)), as unattended-upgrades'
    default origins on Debian select it.
  - C(PAT-001) no security update pending longer than O(max_pending_days). The time a security
    update has been pending is the time of the Release file of the suite that offers it (apt keeps
    the server's Last-Modified time) - when that suite last changed, so a package may have been
    pending longer, never shorter. The evidence names every package, installed and candidate version.
  - C(PAT-002) other updates; they fail only when O(upgrade=all).
  - C(PAT-003) no reboot required (C(/run/reboot-required)), with the packages and since when.
  - C(PAT-004) no service runs outdated code (needrestart); C(skipped) without needrestart.
  - C(PAT-005) unattended security upgrades as O(unattended) says; their state is reported either way.
  - C(PAT-006) every installed package of O(hold) is held (C(apt-mark hold)). A held package is never
    upgraded, but its pending security update still counts for C(PAT-001), marked held.
  - O(state=configure) (the baseline) applies O(hold) and O(unattended) and never upgrades a package.
    O(state=upgrade) (C(playbooks/patch.yml)) also refreshes apt's lists and upgrades the security
    updates (or all, O(upgrade=all)) that are not held, with C(--force-confold). O(state=health)
    only checks that O(services) are active and O(ports) listen (C(PAT-007)).
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only (no apt-get update, no apt-mark, no upgrade, no write).
  diff_mode:
    support: full
    description: Shows C(/etc/apt/apt.conf.d/20auto-upgrades) before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  state:
    description: C(configure) holds and unattended upgrades; C(upgrade) also upgrades packages; C(health) checks the host.
    type: str
    choices: [configure, upgrade, health]
    default: configure
  upgrade:
    description: C(security) upgrades security updates only; C(all) every pending update.
    type: str
    choices: [security, all]
    default: security
  max_pending_days:
    description: The number of days a security update may stay pending before C(PAT-001) fails (0 to 3650).
    type: int
    default: 7
  hold:
    description: Packages that must not move (held with C(apt-mark hold); never released by this module).
    type: list
    elements: str
    default: []
  unattended:
    description:
      - C(report) reports the state of unattended upgrades only. C(enabled) installs unattended-upgrades
        and writes C(/etc/apt/apt.conf.d/20auto-upgrades) to run it; C(disabled) writes it to stop it.
    type: str
    choices: [report, enabled, disabled]
    default: report
  update_lists:
    description: With O(state=upgrade), run C(apt-get update) first.
    type: bool
    default: true
  services:
    description: With O(state=health), the systemd units that must be active.
    type: list
    elements: str
    default: []
  ports:
    description: With O(state=health), the ports that must listen - C(PORT), C(tcp/PORT) or C(udp/PORT).
    type: list
    elements: str
    default: []
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: Audit pending updates, reboot and restarts
  yoroi.baseline.patching:
    max_pending_days: 7
  check_mode: true

- name: Upgrade security updates, keeping the database server where it is
  yoroi.baseline.patching:
    state: upgrade
    upgrade: security
    hold: [postgresql-15]

- name: Health after patching
  yoroi.baseline.patching:
    state: health
    services: [ssh.service, nginx.service]
    ports: ["22", tcp/443]
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
upgraded:
  description: The packages upgraded by this run, C(NAME OLD->NEW).
  returned: success
  type: list
  elements: str
to_upgrade:
  description: The packages this run upgraded or (check mode) would upgrade.
  returned: success
  type: list
  elements: str
pending:
  description: The updates still pending - name, installed, candidate, origins, security, since (the suite's time).
  returned: success
  type: list
  elements: dict
reboot_required:
  description: Whether C(/run/reboot-required) exists.
  returned: success
  type: bool
healthy:
  description: With O(state=health), whether every service is active and every port listens.
  returned: when state is health
  type: bool
problems:
  description: With O(state=health), what is wrong.
  returned: when state is health
  type: list
  elements: str
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.patching import main


if __name__ == "__main__":
    main()
