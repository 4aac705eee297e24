# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.change_guard: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/change_guard.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, FAIL, PASS, SKIPPED, finding

CONTROL = "GRD-001"
EXPECTED = "a fresh login of the automation account succeeds after the change, or the change is rolled back"
LEFTOVER_CONTROL = "GRD-002"
LEFTOVER_EXPECTED = "no lockout guard left armed past its deadline, and no failed restore"


def _paths(status):
    return ", ".join(entry["path"] for entry in status.get("paths", [])) or "no files"


def restore_failed_finding(control, expected, status):
    failed = ", ".join("%s %s" % (item["kind"], item["name"]) for item in status.get("failed", [])) or "?"
    return finding(
        control, ERROR, expected,
        "restore failed: could not put back or reload %s" % failed,
        "guard %s (by %s at %s) left the host partly changed; fix it by hand, then "
        "'sh %s/restore.sh --force' retries the restore" % (
            status["token"], status.get("restored_by", "?"), status.get("restore_failed_at", "?"), status["dir"]),
    )


def unproven_finding(status, connection):
    return finding(
        CONTROL, SKIPPED, EXPECTED,
        "not proven: connection %s does not go through sshd and PAM" % connection,
        "guard %s: change kept and timer %s.timer stopped without proof; log in over SSH to "
        "prove it (backups in %s)" % (status["token"], status["unit"], status["dir"]),
    )


def leftover_findings(found, now):
    """GRD-002: one pass when nothing is left, else one finding per guard left."""
    if not found:
        return [finding(LEFTOVER_CONTROL, PASS, LEFTOVER_EXPECTED, "no lockout guard left unresolved")]
    items = []
    for status in found:
        if status["state"] == guard.RESTORE_FAILED:
            item = restore_failed_finding(LEFTOVER_CONTROL, LEFTOVER_EXPECTED, status)
        else:
            item = finding(
                LEFTOVER_CONTROL, FAIL, LEFTOVER_EXPECTED,
                "armed %d s past its deadline: the change over %s was neither confirmed nor restored"
                % (now - guard.deadline(status), _paths(status)),
                "guard %s armed at %s (timeout %s s); its timer is gone. Keep the change with "
                "change_guard state=confirmed, or undo it with 'sh %s/restore.sh --force'" % (
                    status["token"], status["created"], status.get("timeout", "?"), status["dir"]),
            )
        item["subject"] = status["token"]
        items.append(item)
    return items


def confirmed_finding(status):
    if status["state"] == guard.RESTORE_FAILED:
        return restore_failed_finding(CONTROL, EXPECTED, status)
    if status["state"] == guard.ROLLED_BACK:
        return finding(
            CONTROL, ERROR, EXPECTED,
            "rolled back: the guard timer fired before the change was confirmed",
            "guard %s restored %s at %s" % (status["token"], _paths(status), status.get("rolled_back_at", "?")),
        )
    return finding(
        CONTROL, PASS, EXPECTED,
        "a fresh login succeeded; change confirmed",
        "guard %s confirmed, timer %s.timer stopped; backups kept in %s" % (status["token"], status["unit"], status["dir"]),
    )


def rolled_back_finding(status, reason, by_timer):
    if status["state"] == guard.RESTORE_FAILED:
        return restore_failed_finding(CONTROL, EXPECTED, status)
    who = "by the guard timer" if by_timer else "now, by change_guard"
    return finding(
        CONTROL, ERROR, EXPECTED,
        "rolled back: %s" % reason,
        "guard %s restored %s %s at %s; units reloaded: %s" % (
            status["token"], _paths(status), who, status.get("rolled_back_at", "?"), ", ".join(status.get("units", [])) or "none"),
    )


def _label(item, change):
    if change:
        item["subject"] = change
    return item


def audit(module, root):
    """GRD-002, read-only in every mode; a guard root this user cannot read is skipped."""
    now = time.time()
    try:
        found = guard.leftover(root, now)
    except (OSError, ValueError, guard.GuardError) as exc:
        module.exit_json(changed=False, leftover=[], findings=[finding(
            LEFTOVER_CONTROL, SKIPPED, LEFTOVER_EXPECTED, "cannot read the lockout guards: %s" % exc)])
    module.exit_json(changed=False, leftover=[s["token"] for s in found], findings=leftover_findings(found, now))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["armed", "confirmed", "rolled_back", "audit"]),
            token=dict(type="str", no_log=False),  # an identifier, not a secret
            paths=dict(type="list", elements="path", default=[]),
            reload_units=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=300),
            change=dict(type="str"),
            connection=dict(type="str", default="ssh"),
            reason=dict(type="str", default="the fresh login of the automation account failed"),
            guard_root=dict(type="path", default=guard.GUARD_ROOT),
        ),
        required_if=[
            ("state", "confirmed", ["token"]),
            ("state", "rolled_back", ["token"]),
            ("state", "armed", ["paths"]),
        ],
        supports_check_mode=True,
    )
    params = module.params
    root = params["guard_root"]
    if params["state"] == "audit":
        audit(module, root)
    try:
        if params["state"] == "armed":
            if module.check_mode:
                module.exit_json(changed=True, token="", unit="", dir="", state="armed", paths=[], findings=[],
                                 msg="would arm a guard over %s" % ", ".join(params["paths"]))
            armed = guard.arm(module, params["paths"], params["reload_units"], params["timeout"], root)
            status = guard.read_status(armed["token"], root)
            module.exit_json(changed=True, findings=[], **status)

        status = guard.read_status(params["token"], root)
        if params["state"] == "confirmed":
            proven = guard.proves_access(params["connection"])
            if module.check_mode:
                module.exit_json(changed=status["state"] == guard.ARMED, previous=status["state"],
                                 findings=[_label(confirmed_finding(status), params["change"])], **status)
            status = guard.confirm(module, params["token"], root)
            item = _label(confirmed_finding(status), params["change"])
            if item["status"] == ERROR:
                module.fail_json(msg="change %s: %s" % (status["state"].replace("_", " "), item["actual"]),
                                 findings=[item], changed=False, **status)
            if not proven:
                item = _label(unproven_finding(status, params["connection"]), params["change"])
                module.warn("the %s change is kept but not proven: a fresh login over connection %s does not go "
                            "through sshd and PAM; log in over SSH to check it" % (params["change"] or "guarded", params["connection"]))
            module.exit_json(changed=status["previous"] == guard.ARMED, findings=[item], **status)

        # rolled_back
        if module.check_mode:
            module.exit_json(changed=status["state"] != guard.ROLLED_BACK, previous=status["state"],
                             findings=[_label(rolled_back_finding(status, params["reason"], True), params["change"])], **status)
        status = guard.rollback(module, params["token"], root)
        by_timer = status["previous"] == guard.ROLLED_BACK
        module.exit_json(changed=not by_timer, findings=[_label(rolled_back_finding(status, params["reason"], by_timer), params["change"])], **status)
    except guard.GuardError as exc:
        module.fail_json(msg=str(exc), findings=[finding(CONTROL, ERROR, EXPECTED, "guard failed", str(exc))])
