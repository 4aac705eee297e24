# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check-mode batch: every concern of a host evaluated in one module call.

An audit is check mode: nothing changes, so nothing one concern does can change what
another one reads. Instead of one Python process and one SSH round trip per concern
(about 0.15 s of the host's CPU and 0.3 s of wall time each), the baseline's audit
defers each concern's module call on the controller (plugins/action/concern.py) and
runs them at the end of the play in one call of yoroi.baseline.batch_check, which runs
each module's own main() in turn, in its process, with the arguments the role gave it.

Each run is the module exactly as Ansible would have run it on its own: the same
AnsibleModule, the same argument spec and checks, the same ``no_log`` scrubbing, the
result recorded by AnsibleModule itself (its ``_record_module_result`` hook) instead of
printed. Only check mode is ever batched: a change runs in its role, in order, with its
lockout guard.
"""

from __future__ import annotations

import json
import traceback

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as _warnings

# The modules that may be batched: every concern module of the baseline whose options
# hold no secret. The controller defers only these; batch_check runs only these.
BATCHABLE = (
    "change_guard",
    "stale_accounts",
    "password_policy",
    "sshd_hardening",
    "totp_mfa",
    "kernel_hardening",
    "file_permissions",
    "audit_rules",
    "listening_services",
    "access_review",
    "time_sync",
    "file_integrity",
    "firmware",
    "patching",
    "firewall",
    "log_forwarding",
    "log_collector",
    "restic_backup",
)

# The options of batchable modules that are secrets (no_log in the module's own spec).
# They never travel with a call's other arguments: the controller moves them into the
# batch's `secrets` option, itself no_log, so that Ansible keeps them out of the batch's
# logged invocation and scrubs them from every result; the batch hands each module its
# own, and the module's own no_log does the rest.
SECRET_OPTIONS = {
    "restic_backup": ("password", "environment"),
}

# Ansible's own per-call settings: taken from the batch's call for every module in it.
INTERNAL_PREFIX = "_ansible_"

# Read-only queries that several concerns make the same way (dpkg's status of a package,
# a unit's state, sshd's live configuration): within one batch - check mode, where
# nothing changes, and about a second long - each is run once and its answer reused.
# {tool: the first arguments that make it a query}; sshd only as `sshd -T` (the live
# configuration, not a candidate file).
QUERIES = {
    "dpkg-query": ("--show",),
    "systemctl": ("is-enabled", "is-active", "show"),
    "sshd": ("-T",),
}


class ModuleReturned(Exception):
    """main() returned without exit_json or fail_json."""


def internal_args(raw: dict) -> dict:
    """The ``_ansible_*`` settings of the batch's own call (check mode, diff, tmp dirs...)."""
    return dict((key, value) for key, value in raw.items() if key.startswith(INTERNAL_PREFIX))


def raw_args() -> dict:
    """The batch's own call as Ansible sent it (AnsibleModule has parsed it already)."""
    return dict(basic._PARSED_MODULE_ARGS or {})


def query_key(args, kwargs):
    """The memo key of a run_command call that is one of the QUERIES, else None."""
    if not isinstance(args, (list, tuple)) or len(args) < 2:
        return None
    tool = str(args[0]).rsplit("/", 1)[-1]
    if str(args[1]) not in QUERIES.get(tool, ()) or (tool == "sshd" and len(args) != 2):
        return None
    if set(kwargs) - {"environ_update", "check_rc"}:
        return None  # data on stdin, another directory...: run it
    return json.dumps([[str(a) for a in args], kwargs.get("environ_update"), kwargs.get("check_rc", False)],
                      sort_keys=True)


def memoized(run_command, memo: dict):
    """``AnsibleModule.run_command`` answering the QUERIES from ``memo`` after their first run."""
    def run(self, args, *more, **kwargs):
        key = None if more else query_key(args, kwargs)
        if key is None:
            return run_command(self, args, *more, **kwargs)
        if key not in memo:
            memo[key] = run_command(self, args, **kwargs)
        return memo[key]
    return run


def run_one(main, name: str, args: dict, internal: dict, memo: dict | None = None) -> dict:
    """Run ``main`` as module ``name`` with ``args`` and return its result.

    The result is what the module would have returned to Ansible (``failed`` with ``msg``
    when it failed or raised). Its warnings and deprecations become the batch's own, so
    that Ansible shows them once, with the batch's result. ``memo``: the batch's answers
    to the QUERIES, shared by the modules it runs.
    """
    if not internal.get("_ansible_check_mode"):
        raise ValueError("the batch runs modules in check mode only")
    raw = dict(args)
    raw.update(internal)
    raw["_ansible_module_name"] = name
    saved = (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE, basic._PARSED_MODULE_ARGS)
    saved_warnings = dict(_warnings._global_warnings), dict(_warnings._global_deprecations)
    recorded: list = []
    original = basic.AnsibleModule._record_module_result
    run_command = basic.AnsibleModule.run_command

    def record(self, result):
        recorded.append(result)

    basic.AnsibleModule._record_module_result = record
    if memo is not None:
        basic.AnsibleModule.run_command = memoized(run_command, memo)
    _warnings._global_warnings.clear()
    _warnings._global_deprecations.clear()
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": raw}).encode("utf-8")
    try:
        try:
            main()
            raise ModuleReturned("%s returned without a result" % name)
        except SystemExit:
            pass
    except Exception as exc:  # one module's defect must not cost the other concerns
        recorded.append({"failed": True, "msg": "%s: %s" % (name, exc), "exception": traceback.format_exc()})
    finally:
        basic.AnsibleModule._record_module_result = original
        basic.AnsibleModule.run_command = run_command
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE, basic._PARSED_MODULE_ARGS = saved
        # the batch's warnings so far, then this module's
        for kept, batch in zip((_warnings._global_warnings, _warnings._global_deprecations), saved_warnings):
            own = dict(kept)
            kept.clear()
            kept.update(batch)
            kept.update(own)
    result = dict(recorded[-1]) if recorded else {"failed": True, "msg": "%s: no result" % name}
    result.pop("warnings", None)
    result.pop("deprecations", None)
    return result
