#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: time_sync
short_description: One time daemon, the site's time servers, and the host's clock in sync
version_added: 0.1.0
description:
  - Reads the time daemons' packages and units, the daemon's configuration files and its own
    report (C(chronyc -n tracking), or C(timedatectl) for systemd-timesyncd) once, and evaluates
    controls C(TIM-001) to C(TIM-003) in one pass.
  - C(TIM-001) the chosen daemon (O(daemon)) is installed (in this same call when applying; a
    conflicting time daemon's package is replaced, nothing else is removed), enabled and running,
    and no other time daemon (chrony, systemd-timesyncd, ntp, ntpsec, openntpd) runs or is enabled;
    others are stopped and disabled when applying.
  - C(TIM-002) the configuration lists exactly O(servers). chrony - C(server NAME iburst) lines in
    C(/etc/chrony/sources.d/yoroi.sources), and every other source line of C(/etc/chrony/chrony.conf)
    (Debian's pool, C(sourcedir /run/chrony-dhcp)) commented out; a source in another file of
    C(/etc/chrony/conf.d) or C(/etc/chrony/sources.d) is reported, not edited. systemd-timesyncd -
    C(NTP=) and C(FallbackNTP=) in C(/etc/systemd/timesyncd.conf.d/yoroi.conf).
  - C(TIM-003) the host is synchronized - chrony's leap status normal, its reference a time server
    (not none, not its own local clock), and the system clock's offset within O(max_offset_ms);
    systemd-timesyncd's C(NTPSynchronized=yes) and the offset of its last exchange. The offset,
    reference and stratum are the evidence. An unknown state fails.
  - With O(clock_control=measure), or C(auto) in a container, chronyd runs with C(-x) - it
    measures and reports the offset and does not set the clock - through the drop-in
    C(/etc/systemd/system/chrony.service.d/yoroi-clock.conf), which also clears the unit's
    C(ConditionCapability=CAP_SYS_TIME).
  - With no O(servers), nothing is changed and C(TIM-002) fails saying so.
  - Files are written atomically with a backup; an unchanged file is not rewritten, and the
    daemon is restarted only when one of its files changed.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only (no apt, no write, no restart, no wait); drift has status C(fail).
  diff_mode:
    support: full
    description: Shows each file before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  daemon:
    description: The time daemon.
    type: str
    choices: [chrony, timesyncd]
    default: chrony
  servers:
    description: The site's time servers, host names or IP addresses. Empty - nothing is changed.
    type: list
    elements: str
    default: []
  max_offset_ms:
    description: The largest offset of the clock, in milliseconds, that C(TIM-003) allows.
    type: int
    default: 100
  clock_control:
    description:
      - C(set) - chronyd sets the clock (it needs C(CAP_SYS_TIME)). C(measure) - chronyd runs with
        C(-x). C(auto) - C(measure) in a container, else C(set). systemd-timesyncd always sets it.
    type: str
    choices: [auto, set, measure]
    default: auto
  wait:
    description:
      - Seconds an apply that changed something waits for the first synchronization before it
        reads the state back (C(TIM-003)); 0 does not wait. An audit never waits.
    type: int
    default: 15
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: chrony with the branch's two time servers
  yoroi.baseline.time_sync:
    packages: [chrony]
    servers: [ntp1.branch.example.org, 192.0.2.123]

- name: Audit only
  yoroi.baseline.time_sync:
    servers: [ntp1.branch.example.org]
  check_mode: true
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
files:
  description: The files this run wrote (or would write, in check mode), with their backups.
  returned: always
  type: dict
  sample: {/etc/chrony/sources.d/yoroi.sources: null}
tracking:
  description: The daemon's report read last (chrony - parsed C(chronyc -n tracking)).
  returned: always
  type: dict
  sample: {reference_id: 0A590102, reference: 10.89.1.2, stratum: 9, offset: -2.1e-05, leap: Normal}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.time_sync import main


if __name__ == "__main__":
    main()
