#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the patch_window action; the work is done on the controller by
plugins/action/patch_window.py, so this module never runs on a host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: patch_window
short_description: Whether a host may be patched now - inside its site's maintenance window, or forced (PAT-008)
version_added: 0.1.0
description:
  - Parses the maintenance window strictly and checks the controller's clock against it in the
    site's time zone. Runs on the controller only; no connection to the host is made.
  - A window is C(DAYS HH:MM-HH:MM) - days as C(Sat), C(Sat,Sun) or C(Mon-Fri) - and several are
    separated by C(;). A span whose end is not after its start runs past midnight into the next
    day (C(Fri 22:00-02:00) ends on Saturday at 02:00).
  - Without a window the host is not patched unless O(force) is set.
  - A malformed window or an unknown time zone fails the task, so nothing is changed anywhere.
options:
  window:
    description: The site's maintenance window (C(yoroi_patch_window)).
    type: str
    default: ""
  timezone:
    description: The site's time zone (C(yoroi_timezone)), an IANA name such as C(Europe/Paris).
    type: str
    default: UTC
  force:
    description: Patch now, whatever the window says.
    type: bool
    default: false
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads the clock only.
  diff_mode:
    support: none
    description: Nothing to show.
"""

EXAMPLES = r"""
- name: Only inside the window
  yoroi.baseline.patch_window:
    window: "Sat 02:00-04:00; Wed 22:00-23:30"
    timezone: Europe/Paris
  register: window
"""

RETURN = r"""
allowed:
  description: Whether the host may be patched now.
  returned: success
  type: bool
findings:
  description: One C(PAT-008) finding - C(pass) inside the window or forced, C(skipped) outside it.
  returned: success
  type: list
  elements: dict
"""
