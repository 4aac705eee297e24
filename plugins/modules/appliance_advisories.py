#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the appliance_advisories action; the work is done on the controller by
plugins/action/appliance_advisories.py, so this module never runs on a device."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: appliance_advisories
short_description: Appliance firmware against vendor advisories and the CISA KEV catalog (APL-001 .. APL-003)
description:
  - For one appliance (a VPN device, gateway, firewall, camera, printer ...) as the inventory
    declares it, compares the firmware version with the first fixed version of every advisory
    of the user's advisory file that names its vendor and model, on the firmware's train.
  - A version that cannot be ordered (an unknown form, another train) is an C(error) finding
    saying "cannot compare", never a pass.
  - An unfixed advisory whose CVEs are in the KEV catalog (or that is marked C(kev)) fails
    APL-002 with the KEV due date; a KEV entry for the product that no advisory covers is an
    APL-002 error.
  - Runs on the controller only; no connection to the device is made.
options:
  vendor:
    description: The vendor, as the advisories name it.
    type: str
    default: ""
  model:
    description: The model, as the advisories name it.
    type: str
    default: ""
  firmware:
    description: The installed firmware version, as the vendor writes it.
    type: str
    default: ""
  role:
    description: What the device does; internet_facing_roles put it first, one severity up.
    type: str
    default: ""
    choices: ["", vpn, gateway, firewall, router, switch, access_point, camera, printer, nas, iot, other]
  product:
    description: The product name the KEV catalog uses (its C(product) field); the model when empty.
    type: str
    default: ""
  address:
    description: The management address, for the report only.
    type: str
    default: ""
  advisories:
    description: The advisory file on the controller (YAML or JSON; schema in the README). Empty for none.
    type: path
    default: ""
  kev:
    description: The CISA KEV catalog in its published JSON format, on the controller. Empty for none.
    type: path
    default: ""
  internet_facing_roles:
    description: Roles whose findings come first and one severity level higher.
    type: list
    elements: str
    default: [vpn, gateway, firewall]
    choices: [vpn, gateway, firewall, router, switch, access_point, camera, printer, nas, iot, other]
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: It only reads files on the controller; check mode changes nothing.
  diff_mode:
    support: none
    description: It changes nothing.
  action:
    support: full
    description: Runs on the controller as an action plugin.
"""

EXAMPLES = r"""
- name: Appliance firmware against advisories (APL-001 .. APL-003)
  yoroi.baseline.appliance_advisories:
    vendor: Kitsune Networks
    model: KN-VPN 400
    firmware: 7.0.12
    role: vpn
    product: KitsuneOS
    advisories: /srv/yoroi/advisories.yml
    kev: /srv/yoroi/known_exploited_vulnerabilities.json
"""

RETURN = r"""
findings:
  description: One finding per control (APL-001 per matching advisory), with C(severity) and C(priority).
  returned: always
  type: list
  elements: dict
appliance:
  description: What was evaluated (vendor, model, firmware, role, product, address, internet_facing).
  returned: success
  type: dict
"""
