# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a host may be patched now: inside its site's maintenance window, in the site's
time zone, or forced (PAT-008).

Runs on the controller and never connects to the host (``_requires_connection`` is False),
before anything on the host changes. A malformed window or an unknown time zone fails the
task, naming the variable; a host outside its window gets ``allowed: false`` and a
``skipped`` finding saying why (playbooks/patch.yml then ends the play for it).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.yoroi.baseline.plugins.module_utils import _patching as pat

ARGUMENT_SPEC = {
    "window": {"type": "str", "default": ""},
    "timezone": {"type": "str", "default": "UTC"},
    "force": {"type": "bool", "default": False},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            allowed, found = pat.window_decision(params["window"], params["timezone"] or "UTC", params["force"])
        except ValueError as exc:
            result.update(failed=True, changed=False,
                          msg="yoroi_patch_window / yoroi_timezone: %s; nothing was changed" % exc)
            return result
        result.update(changed=False, allowed=allowed, findings=[found],
                      msg="%s: %s" % (found["actual"], found["evidence"]) if not allowed else found["actual"])
        return result
