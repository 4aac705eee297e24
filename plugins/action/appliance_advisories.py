# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings for an appliance (a VPN device, gateway, camera, printer ...) from what the
inventory declares about it, the user's advisory file and the CISA KEV catalog.

Runs on the controller and never connects to the device (``_requires_connection`` is
False): the devices run no Python. The findings have the contract of every Yoroi module
(plugins/module_utils/_findings.py), with two more keys the reports use: ``severity``,
the catalog's one level up for an internet-facing role, and ``priority`` (0 for those
roles, 1 for the others), so VPN devices and gateways come first.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.yoroi.baseline.plugins.action.validate_inputs import COLLECTION_ROOT, _load_yaml
from ansible_collections.yoroi.baseline.plugins.module_utils import _appliances as appliances

ARGUMENT_SPEC = {
    "vendor": {"type": "str", "default": ""},
    "model": {"type": "str", "default": ""},
    "firmware": {"type": "str", "default": ""},
    "role": {"type": "str", "default": "", "choices": ("",) + appliances.ROLES},
    "product": {"type": "str", "default": ""},
    "address": {"type": "str", "default": ""},
    "advisories": {"type": "path", "default": ""},
    "kev": {"type": "path", "default": ""},
    "internet_facing_roles": {"type": "list", "elements": "str", "default": ["vpn", "gateway", "firewall"],
                              "choices": list(appliances.ROLES)},
}


def catalog_severities(root=COLLECTION_ROOT):
    """{control id: severity} of the appliance controls, from controls/catalog.yml."""
    controls = _load_yaml(os.path.join(root, "controls", "catalog.yml"))["controls"]
    return dict((c["id"], c["severity"]) for c in controls if c["id"] in appliances.CONTROLS)


def appliance_findings(params, check_mode, severities):
    """(findings, appliance summary) for one appliance; raises appliances.InputError for a
    malformed advisory or KEV file."""
    advisories = appliances.load(params["advisories"], "advisories")["advisories"] if params["advisories"] else None
    kev = appliances.load(params["kev"], "kev") if params["kev"] else None
    sources = {"advisories": params["advisories"] or None, "kev": params["kev"] or None}
    found = appliances.evaluate(params, advisories, kev, check_mode, sources)
    appliances.prioritise(found, params["role"], severities, params["internet_facing_roles"])
    summary = dict((key, params[key]) for key in ("vendor", "model", "firmware", "role", "product", "address"))
    summary["internet_facing"] = params["role"] in params["internet_facing_roles"]
    return found, summary


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            found, summary = appliance_findings(params, bool(self._task.check_mode), catalog_severities())
        except appliances.InputError as exc:
            result.update(failed=True, findings=[], msg=str(exc))
            return result
        result.update(changed=False, findings=found, appliance=summary)
        return result
