#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: restic_backup
short_description: Back up the protected paths with restic on a timer; evaluate BAK-001 to BAK-004
version_added: 0.1.0
description:
  - Reads the host once (the files under C(/etc/yoroi/backup), the units, the timer's
    state, the last recorded repository check) and the repository (C(restic snapshots
    --json)), and evaluates C(BAK-001) a snapshot younger than O(max_age_hours) holds every
    protected path, C(BAK-002) the last C(restic check --read-data-subset) recorded by the
    service (or a drill) passed within O(check_max_age_hours), C(BAK-003) C(yoroi-backup.timer)
    is enabled and active, C(BAK-004) the password file is root's, 0600, in a 0700 directory,
    and holds the configured password.
  - On apply it installs restic, writes the password file (0600, atomically, no backup copy
    of a secret), an environment file that names the repository and the password FILE, the
    list of paths, a script and C(yoroi-backup.service) / C(yoroi-backup.timer) (back up,
    C(restic forget --prune) with the retention, check a sample of the data, record the check),
    runs C(restic init) when the repository does not exist yet, enables and starts the timer,
    and with O(initial_backup) runs the service once when no fresh snapshot exists.
  - For an C(sftp:) repository it creates a dedicated key C(/root/.ssh/yoroi_backup) (0600) and
    pins the backup host's key (O(host_keys)); the public key is returned (RV(public_key)).
  - With no repository or no password, every control fails ("no backup configured") and
    nothing is changed.
  - The password is never an argument of restic (C(RESTIC_PASSWORD_FILE)), never in the result.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads the host and the repository and plans; nothing is written, nothing run but C(restic snapshots).
  diff_mode:
    support: full
    description: Every file but the password file is shown when it changes.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  repository:
    description:
      - A local absolute path, C(sftp:user@host:/path), or a restic backend URL such as
        C(s3:https://host/bucket) (passed through). Empty means not configured.
    type: str
    default: ""
  password:
    description: The repository password (from a vault); one line. Empty means not configured.
    type: str
    default: ""
  environment:
    description: Extra variables for restic, such as an S3 store's credentials; kept in the 0600 environment file.
    type: dict
    default: {}
  paths:
    description: The absolute paths to protect.
    type: list
    elements: str
    default: []
  exclude:
    description: restic exclude patterns.
    type: list
    elements: str
    default: []
  schedule:
    description: The timer's systemd C(OnCalendar) expression.
    type: str
    default: daily
  keep_daily:
    description: Daily snapshots kept by C(restic forget --prune).
    type: int
    default: 7
  keep_weekly:
    description: Weekly snapshots kept.
    type: int
    default: 4
  keep_monthly:
    description: Monthly snapshots kept.
    type: int
    default: 6
  max_age_hours:
    description: The age a protected path's newest snapshot may have (C(BAK-001)).
    type: int
    default: 26
  check_subset:
    description: The share of the data C(restic check --read-data-subset) reads, C(N%) or C(n/t).
    type: str
    default: 5%
  check_max_age_hours:
    description: The age the last recorded repository check may have (C(BAK-002)).
    type: int
    default: 50
  host_keys:
    description: The backup host's known_hosts lines (C(HOST TYPE KEY)); required for an C(sftp:) repository.
    type: list
    elements: str
    default: []
  initial_backup:
    description: On apply, run the backup service once when a protected path has no fresh snapshot.
    type: bool
    default: true
  key_only:
    description:
      - Only make sure the SFTP key exists and return it (RV(public_key), RV(sftp_user)), so the
        role can authorize it on the backup host before the full run. No finding.
    type: bool
    default: false
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: Back up /etc and /srv to a backup host over SFTP
  yoroi.baseline.restic_backup:
    repository: sftp:restic@backup1:/srv/restic/web1
    password: "{{ vault_restic_password }}"
    host_keys: ["backup1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..."]
    paths: [/etc, /srv]
"""

RETURN = r"""
findings:
  description: BAK-001 (one per protected path), BAK-002, BAK-003, BAK-004.
  returned: always
  type: list
  elements: dict
public_key:
  description: The public half of C(/root/.ssh/yoroi_backup), for the backup host's authorized_keys.
  returned: for an sftp repository, once the key exists
  type: str
sftp_user:
  description: The account on the backup host (from the repository).
  returned: for an sftp repository
  type: str
snapshots:
  description: The number of snapshots in the repository and the newest one's id and time.
  returned: when the repository was read
  type: dict
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.restic_backup import main


if __name__ == "__main__":
    main()
