#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the validate_inputs action; the work is done on the controller by
plugins/action/validate_inputs.py, so this module never runs on a host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate_inputs
short_description: Refuse unknown, badly typed or unsafe yoroi_ variables before any change
description:
  - Reads the argument specs of every role of the collection, their C(meta/input_rules.yml)
    and C(meta/site_variables.yml), then checks each C(yoroi_*) variable the host has - its
    type and choices, and the rules (ranges, patterns, account and group names, addresses,
    paths, one-line values, sshd keywords, strong algorithms, the appliance advisory and KEV
    files read on the controller, internal variables); see
    the comment at the top of the plugin for every rule kind.
  - When the host is reached over the C(ssh) connection, the ciphers, MACs and key exchange
    algorithms a run would write must keep one the controller's own OpenSSH supports
    (C(ssh -Q)), or the fresh login that proves the change could not succeed.
  - Runs on the controller only; no connection to the host is made.
options: {}
notes:
  - Returns C(site), the host's C(yoroi_site) or else its first group, for reports.
  - Run it first in a play, before any role registers its results.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: It only reads variables; check mode changes nothing.
  diff_mode:
    support: none
    description: It changes nothing.
  action:
    support: full
    description: Runs on the controller as an action plugin.
"""

EXAMPLES = r"""
- name: Check every Yoroi input before any host is touched
  hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: Every yoroi_ variable is known, of the right type and safe
      yoroi.baseline.validate_inputs:
"""

RETURN = r"""
site:
  description: The host's C(yoroi_site), or else its first group, for reports.
  returned: success
  type: str
  sample: branch_singapore
"""
