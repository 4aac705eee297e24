# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check every yoroi_ variable of a host against the collection's argument specs.

Runs on the controller and touches no host. A variable that no role or site spec
declares (a typo such as yoroi_accounts_max_inactive_dayz) and a value of the wrong type
or outside its choices both fail, naming the variable.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate_inputs
short_description: Refuse unknown or badly typed yoroi_ variables before any change
description:
  - Reads the argument specs of every role of the collection, their C(meta/input_rules.yml)
    numeric ranges and patterns and C(meta/site_variables.yml), then checks each C(yoroi_*) variable
    the host has.
  - Runs on the controller only; no connection to the host is made.
options: {}
notes:
  - Returns C(site), the host's C(yoroi_site) or else its first group, for reports.
author: [Yoroi maintainers]
"""

import difflib
import functools
import os
import re

import yaml

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Keys of role argument specs that are documentation, not validation.
DOC_KEYS = frozenset(["description", "default", "version_added", "short_description"])


def _strip(option):
    clean = dict((k, v) for k, v in option.items() if k not in DOC_KEYS)
    if "options" in clean:
        clean["options"] = dict((n, _strip(o)) for n, o in clean["options"].items())
    return clean


def _role_data(root, filename):
    """(role, parsed YAML) for every role that has meta/<filename>."""
    roles_dir = os.path.join(root, "roles")
    for role in sorted(os.listdir(roles_dir)):
        path = os.path.join(roles_dir, role, "meta", filename)
        if os.path.exists(path):
            with open(path) as handle:
                yield role, yaml.safe_load(handle) or {}


# Read once per process and shared (callers must not change the result): every host
# of a run is checked against the same files.
@functools.lru_cache(maxsize=None)
def load_specs(root=COLLECTION_ROOT):
    """{variable: (owner, spec)} from every role's `main` entry point and the site spec."""
    specs = {}
    for role, data in _role_data(root, "argument_specs.yml"):
        options = data.get("argument_specs", {}).get("main", {}).get("options", {})
        for name, option in options.items():
            specs.setdefault(name, (role, _strip(option)))
    with open(os.path.join(root, "meta", "site_variables.yml")) as handle:
        for name, option in (yaml.safe_load(handle) or {}).get("options", {}).items():
            specs.setdefault(name, ("site", _strip(option)))
    return specs


@functools.lru_cache(maxsize=None)
def load_rules(root=COLLECTION_ROOT):
    """{"ranges": {variable: (low, high)}, "patterns": {variable: regex}} from every
    role's meta/input_rules.yml."""
    rules = {"ranges": {}, "patterns": {}}
    for role, data in _role_data(root, "input_rules.yml"):
        for name, bounds in (data.get("ranges") or {}).items():
            rules["ranges"][name] = (bounds[0], bounds[1])
        rules["patterns"].update(data.get("patterns") or {})
    return rules


def check(values, specs, rules=None):
    """Error messages for the yoroi_ variables in ``values`` (already templated)."""
    errors = []
    for name in sorted(values):
        if name.startswith("yoroi_") and name not in specs:
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = " (did you mean %s?)" % close[0] if close else ""
            errors.append("unknown variable %s%s" % (name, hint))
    argument_spec = dict((name, spec) for name, (owner, spec) in specs.items() if name in values)
    params = dict((name, values[name]) for name in argument_spec)
    result = ArgumentSpecValidator(argument_spec).validate(params)
    errors.extend(result.error_messages)
    rules = rules or {}
    for name, (low, high) in sorted((rules.get("ranges") or {}).items()):
        value = result.validated_parameters.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            errors.append("%s must be from %d to %d, got %d" % (name, low, high, value))
    for name, pattern in sorted((rules.get("patterns") or {}).items()):
        value = result.validated_parameters.get(name)
        if value is not None and not re.match(pattern, str(value)):
            errors.append("%s does not have the expected form (%s): %r" % (name, pattern, value))
    return errors


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        specs = load_specs()
        values = {}
        for name in task_vars:
            if not name.startswith("yoroi_"):
                continue
            try:
                values[name] = self._templar.template(task_vars[name])
            except AnsibleError as exc:
                result.update(failed=True, msg="variable %s cannot be templated: %s" % (name, exc))
                return result
        errors = check(values, specs, load_rules())
        # Reports roll up by site: the inventory's yoroi_site, else the host's first group.
        groups = [g for g in task_vars.get("group_names", []) if g not in ("all", "ungrouped")]
        result["site"] = values.get("yoroi_site") or (groups[0] if groups else "default")
        if not errors and not values.get("yoroi_break_glass_accounts"):
            # Unused emergency accounts look exactly like stale ones; undeclared, they
            # would be locked by the accounts role.
            result["warnings"] = [
                "no break-glass account is declared (yoroi_break_glass_accounts): an unused "
                "emergency account would be treated as stale"
            ]
        if errors:
            result.update(failed=True, msg="invalid Yoroi inputs: " + "; ".join(errors), errors=errors)
        else:
            result.update(changed=False, msg="%d yoroi_ variables checked" % len(values))
        return result


# ansible-playbook imports this plugin in its main process before it forks a worker per
# host; reading the files here lets every worker inherit them instead of parsing them
# again. A failure is left to run(), which reports it.
try:
    load_specs()
    load_rules()
except (OSError, yaml.YAMLError):
    pass
