#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_integrity
short_description: AIDE with a policy for system binaries and configuration, its database, a scheduled check to syslog
version_added: 0.1.0
description:
  - Reads the AIDE policy, the database and its directory (never following a symlink), the
    check's systemd units and their state, and the JSON report of AIDE's last run once, and
    evaluates controls C(FIM-001) to C(FIM-004) in one pass. An audit never runs AIDE.
  - C(FIM-001) AIDE installed (C(aide) alone, without what it recommends, in this same call
    when applying) and the Yoroi policy C(/etc/aide/yoroi.conf) in place, root's, 0600.
  - C(FIM-002) the database C(/var/lib/yoroi/aide/aide.db) exists, is a regular file of
    root's with mode 0600 in a directory of root's (0700), is newer than the policy and
    younger than O(max_age_days). A symlink, another owner or an interrupted
    initialization (C(aide.db.new) left, no C(aide.db)) fails.
  - C(FIM-003) the check's units C(yoroi-aide-check.service) and C(.timer) are in place,
    the timer enabled and active, and the policy reports to syslog.
  - C(FIM-004) the JSON report of AIDE's last run found no change, is younger than
    O(max_check_age_hours), and the last scheduled check did not fail; changed paths are
    named in the evidence.
  - Applying builds the database when it is missing or not trusted, when O(reinit) is true,
    when this run changed the policy or the units, or when the policy is newer than it -
    C(aide --update) over a trusted database (the differences it accepts go to syslog),
    else C(aide --init); under C(timeout), C(nice) and C(ionice), then moved into place
    atomically. A database that is only old is never rebuilt on its own.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only (no apt, no write, no AIDE run); drift has status C(fail).
  diff_mode:
    support: full
    description: Shows the policy and the unit files before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  extra_paths:
    description: Paths the policy covers besides system binaries, libraries, C(/boot) and C(/etc).
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Paths left out of the policy, each with everything below it, besides the ones that
        change on their own (C(/etc/mtab), C(/etc/adjtime), C(/var/log), ...). A covered
        path itself or one of its parents cannot be excluded.
    type: list
    elements: str
    default: []
  schedule:
    description: When the check runs, a systemd calendar expression (C(OnCalendar)).
    type: str
    default: daily
  randomized_delay:
    description: Seconds the timer may delay each check at random, so hosts do not all hash at once.
    type: int
    default: 3600
  timeout:
    description: Seconds a database build (and the scheduled check) may take before it is stopped.
    type: int
    default: 3600
  reinit:
    description:
      - Rebuild the database now - the one step after a planned change (an apply, a patch
        run). The differences it accepts are written to syslog.
    type: bool
    default: false
  max_age_days:
    description: A database older than this is stale (C(FIM-002)).
    type: int
    default: 90
  max_check_age_hours:
    description: A last AIDE run older than this means the check is not running (C(FIM-004)).
    type: int
    default: 48
  max_reported:
    description: The most changed paths named in the C(FIM-004) evidence.
    type: int
    default: 50
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: AIDE, its database and a daily check
  yoroi.baseline.file_integrity:
    packages: [aide]

- name: After a planned change, rebuild the database
  yoroi.baseline.file_integrity:
    packages: [aide]
    reinit: true
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
  sample: {/etc/aide/yoroi.conf: null}
database:
  description:
    - The database build of this run, empty when there was none - C(mode) (init or update),
      C(reason), C(rc), C(seconds), C(accepted) (added, removed, changed entries an update took in).
  returned: always
  type: dict
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.file_integrity import main


if __name__ == "__main__":
    main()
