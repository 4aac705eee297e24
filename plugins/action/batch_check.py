# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller half of the audit's batch (see plugins/module_utils/_batch.py).

This is the action of yoroi.baseline.batch_check and, through meta/runtime.yml, of every
batchable concern module too:

- for a concern module: Ansible's ``normal`` action (the module runs on the host), except
  in check mode within a play that sets ``yoroi_batch_checks`` (the baseline play does):
  then the call is deferred (plugins/plugin_utils/_deferred.py) and the task returns at
  once, without connecting;
- for batch_check itself, the play's last task: the calls deferred for this host, run in
  one call of the module (each module's own main(), in turn, in check mode). Nothing
  deferred (an apply, or no concern selected by the tags): skipped, no connection made.
"""

from __future__ import annotations

from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.yoroi.baseline.plugins.plugin_utils import _deferred

MODULE = "yoroi.baseline.batch_check"


class ActionModule(NormalAction):

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        host = task_vars.get("inventory_hostname", "")
        if _deferred.short_name(self._task) != "batch_check":
            deferred = _deferred.defer(self._task, host, task_vars)
            if deferred is not None:
                return deferred
            return super().run(tmp, task_vars)
        result = super(NormalAction, self).run(tmp, task_vars)
        checks = _deferred.take(host)
        if not checks:
            result.update(skipped=True, changed=False, msg="no check was deferred to the batch")
            return result
        secrets = [check.pop("secrets", None) or {} for check in checks]
        args = {"checks": checks}
        if any(secrets):
            args["secrets"] = secrets
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
