# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by every Yoroi module (the options of module_utils/_concern.py).

A module writes ``extends_documentation_fragment: [yoroi.baseline.concern]`` for the
automation and break-glass accounts, ``yoroi.baseline.concern.protected`` when it changes
accounts, and ``yoroi.baseline.concern.guard`` when it arms the lockout guard (it then
gives ``guard_timeout`` its own default), and ``yoroi.baseline.concern.packages`` when it
installs the packages it needs. Ansible does not merge RETURN fragments: RETURN
here is the one text of the shared return values, and a unit test checks that every
module's RETURN carries it.
"""

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  automation_account:
    description:
      - The account Yoroi connects as. It is never changed, and a change that would cut
        its way in is refused. The C(SUDO_USER) of the run is treated as one too.
    type: str
  break_glass_accounts:
    description:
      - Emergency accounts. They are never changed, and a change that would leave them
        no way in is refused.
    type: list
    elements: str
    default: []
"""

    PROTECTED = r"""
options:
  protected_accounts:
    description: Any other account that must never be changed (reported as C(skipped)).
    type: list
    elements: str
    default: []
"""

    GUARD = r"""
options:
  guard_timeout:
    description:
      - Seconds after which the lockout guard puts the changed files back by itself, unless
        C(yoroi.baseline.change_guard) confirms a fresh login of the automation account
        first (C(GRD-001)). 0 changes without a guard.
    type: int
"""

    PACKAGES = r"""
options:
  packages:
    description:
      - Debian packages the concern needs. When applying, the missing ones are installed in
        this same call (C(apt-get), under the host lock) before the host is read; check mode
        never touches apt and the findings say what is not installed yet.
    type: list
    elements: str
    default: []
  apt_cache_valid_time:
    description: Seconds the package lists stay fresh enough to install without C(apt-get update).
    type: int
    default: 3600
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
guard_token:
  description: The lockout guard armed for this change; confirm it after a fresh login.
  returned: when something changed (not in check mode) and O(guard_timeout) is not 0
  type: str
guard:
  description:
    - The armed guard - C(token), C(unit) (its transient timer), C(dir) (its backups),
      C(timeout) and C(change) (what changed); the C(yoroi.baseline.lockout_guard) role reads it.
  returned: with guard_token
  type: dict
"""
