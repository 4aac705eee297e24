# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller half of the check-mode batch (see plugins/module_utils/_batch.py).

In check mode, within a play that sets ``yoroi_batch_checks`` (the baseline's), a concern
module's task is not sent to its host: ``defer`` records the call (module, arguments,
task name) and the play's last task, yoroi.baseline.batch_check, ``take``s the host's
calls and runs them in one module call.

The calls are kept in the run's own private temporary directory (Ansible's local tmp,
0700, made by ansible-playbook at start and removed when it ends; the worker processes
that run the tasks inherit it), one file per host named by a digest of the host's name,
written 0600 without following links. So nothing outlives the run and no host name
becomes a path. A secret option (the backup's password) is kept apart in the record and
sent in the batch's own no_log option.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible import constants as C
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.yoroi.baseline.plugins.module_utils._batch import BATCHABLE, SECRET_OPTIONS

SWITCH = "yoroi_batch_checks"
COLLECTION = "yoroi.baseline."


def _store(create: bool = False) -> str:
    path = os.path.join(C.DEFAULT_LOCAL_TMP, "yoroi-deferred")
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    return path


def _host_file(host: str, create: bool = False) -> str:
    return os.path.join(_store(create), hashlib.sha256(host.encode("utf-8")).hexdigest() + ".jsonl")


def short_name(task) -> str | None:
    """The module's short name when the task runs a Yoroi module, else None."""
    name = getattr(task, "resolved_action", None) or task.action
    if name.startswith(COLLECTION):
        return name[len(COLLECTION):]
    return None


def should_defer(task, task_vars: dict) -> bool:
    """Defer this task? Check mode, the play asked for it, a batchable module, and nothing
    about the task that the batch would lose (no_log, async, a delegation, a loop)."""
    if not task.check_mode or not boolean(task_vars.get(SWITCH, False), strict=False):
        return False
    if short_name(task) not in BATCHABLE:
        return False
    return not (task.no_log or task.async_val or task.delegate_to or task.loop)


def defer(task, host: str, task_vars: dict, args: dict | None = None) -> dict | None:
    """Record the task's call for ``host`` (with ``args``, else the task's own) and return
    the task's result, or None: run it now."""
    if not should_defer(task, task_vars):
        return None
    name = short_name(task)
    call = dict(task.args if args is None else args)
    # secret options travel apart, to the batch's no_log option (see _batch.SECRET_OPTIONS)
    secrets = dict((key, call.pop(key)) for key in SECRET_OPTIONS.get(name, ()) if key in call)
    entry = {"module": name, "args": call, "task": task.name or task.action, "secrets": secrets}
    line = json.dumps(entry, default=str) + "\n"
    fd = os.open(_host_file(host, create=True), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return {
        "changed": False,
        "deferred": True,
        "msg": "evaluated with the host's other checks by the play's last task (batch_check)",
    }


def take(host: str) -> list:
    """The calls deferred for ``host``, in order; they are removed."""
    path = _host_file(host)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return []
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
    finally:
        os.unlink(path)
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
