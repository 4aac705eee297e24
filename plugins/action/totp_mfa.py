# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller half of yoroi.baseline.totp_mfa: the enrolment hand-off.

The module creates new secrets on the host and returns them (``handoff``); it never reads
back a file in a user's directory. This action, which Ansible runs in its place, takes
them out of the result on the controller, writes one otpauth URI per enrolment as
``<enrollment_dir>/<inventory_hostname>/<user>.otpauth`` (0600), then calls the module
again with ``confirm`` so the host stops counting those enrolments as pending.

Only the findings and the names leave this plugin: the task result, the runner's events
and the reports never see a secret, so the task needs no ``no_log`` and its findings
reach the report. A hand-off that fails turns that member's MFA-002 finding into an
error; the enrolment stays pending on the host and the next run enrols again.
"""

from __future__ import annotations

import json
import os
import secrets

from ansible.plugins.action import ActionBase

from ansible_collections.yoroi.baseline.plugins.module_utils import _mfa as mfa
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, FIXED
from ansible_collections.yoroi.baseline.plugins.plugin_utils import _deferred

MODULE = "yoroi.baseline.totp_mfa"
# Keys a module result may carry that could hold raw module output (a secret included).
RAW_OUTPUT = ("module_stdout", "handoff")


def write_private(directory, host, user, text):
    """Write ``text`` to ``<directory>/<host>/<user>.otpauth``, 0600, atomically.

    Both names are checked and the path must resolve inside ``directory``; below it,
    nothing is followed as a link: the host directory is opened O_NOFOLLOW, the temp file
    is created O_EXCL|O_NOFOLLOW and renamed over the name (a link there is replaced, its
    target untouched). Returns the path.
    """
    path = mfa.otpauth_path(directory, host, user)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            os.mkdir(host, 0o700, dir_fd=top)
        except FileExistsError:
            pass
        host_fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
    finally:
        os.close(top)
    tmp = ".%s.%s.tmp" % (user, secrets.token_hex(6))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=host_fd)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.basename(path), src_dir_fd=host_fd, dst_dir_fd=host_fd)
    finally:
        try:
            os.unlink(tmp, dir_fd=host_fd)
        except OSError:
            pass  # renamed into place
        os.close(host_fd)
    return path


def save_enrolments(handoff, directory, host, issuer):
    """Write every enrolment's URI: ([saved {user, digest}], {user: why it was not saved})."""
    saved, problems = [], {}
    for item in handoff:
        user = item.get("user")
        try:
            write_private(directory, host, user, mfa.otpauth_uri(issuer, user, host, item.get("secret")) + "\n")
        except (ValueError, OSError) as exc:
            problems[str(user)] = str(exc)
            continue
        saved.append({"user": user, "digest": item["digest"]})
    return saved, problems


def mark_unsaved(findings, problems):
    """Turn the MFA-002 finding of each member whose hand-off failed into an error."""
    for item in findings:
        if item.get("control") == "MFA-002" and item.get("subject") in problems and item.get("status") == FIXED:
            item["status"] = ERROR
            item["actual"] = "secret created, but its otpauth URI was not saved on the controller"
            item["evidence"] = "%s; the enrolment stays pending on the host and the next run enrols again" % (
                problems[item["subject"]])
    return findings


def withhold_secrets(result, secret_values):
    """``result`` without raw module output, and refused whole if a secret is still in it."""
    for key in RAW_OUTPUT:
        result.pop(key, None)
    text = json.dumps(result, default=str)
    if any(value and value in text for value in secret_values):
        return {"failed": True, "findings": [], "msg": "result withheld: it would have carried a TOTP secret"}
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        directory = os.path.expanduser(str(args.get("enrollment_dir") or ""))
        warnings = []
        if not directory and args.get("enroll", True):
            args["enroll"] = False
            warnings.append("no enrollment_dir: nobody is enrolled, a new secret would reach nobody")
        host = task_vars.get("inventory_hostname", "")
        # An audit of the baseline evaluates this module with the other concerns, in one
        # call (plugins/plugin_utils/_deferred.py); check mode hands nothing off.
        deferred = _deferred.defer(self._task, host, task_vars, args=args)
        if deferred is not None:
            if warnings:
                deferred["warnings"] = warnings
            return deferred
        try:
            module_result = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
            handoff = module_result.pop("handoff", None) or []
            secret_values = [str(item.get("secret") or "") for item in handoff]
            if handoff:
                saved, problems = save_enrolments(handoff, directory, host, args.get("issuer") or "Yoroi")
                if saved:
                    confirm = self._execute_module(module_name=MODULE, module_args=dict(args, confirm=saved),
                                                   task_vars=task_vars)
                    confirmed = confirm.get("confirmed") or []
                    for item in saved:
                        if item["user"] not in confirmed:
                            problems[item["user"]] = "saved, but the host did not confirm it (%s)" % (
                                confirm.get("msg") or "no pending record matched")
                mark_unsaved(module_result.get("findings") or [], problems)
                if problems:
                    warnings.append("enrolment hand-off failed for %s; they are enrolled again on the next run"
                                    % ", ".join(sorted(problems)))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(module_result)
        if warnings:
            result["warnings"] = list(result.get("warnings") or []) + warnings
        return withhold_secrets(result, secret_values)
