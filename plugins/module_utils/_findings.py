# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The findings contract shared by every Yoroi module.

A finding says, for one control (and optionally one subject such as an account or a
file), what was expected, what was found, and whether it passes. Reports are rendered
from findings alone, so a module never signals a finding by faking ``changed``.
"""

from __future__ import annotations

PASS = "pass"
FAIL = "fail"
FIXED = "fixed"
ERROR = "error"
SKIPPED = "skipped"
STATUSES = (PASS, FAIL, FIXED, ERROR, SKIPPED)


def finding(control, status, expected, actual, evidence="", subject=None):
    """Build one finding; ``status`` must be one of STATUSES."""
    if status not in STATUSES:
        raise ValueError("unknown finding status %r" % (status,))
    result = {
        "control": control,
        "status": status,
        "expected": expected,
        "actual": actual,
        "evidence": evidence,
    }
    if subject is not None:
        result["subject"] = subject
    return result


def fold(ok_before, ok_after, check_mode, attempted=True, applied_ok=True):
    """The one rule that turns a control's state before and after a run into its status.

    ``ok_before``: the control passed on the state read first. ``ok_after``: it passes on
    the planned state (check mode) or on the state read back after the run. ``attempted``:
    the run changed something for it (False when nothing was to be done, or the policy is
    only to report). ``applied_ok``: the change it attempted succeeded.

    * check mode: ``pass`` when it passes now and would still pass, else ``fail`` (drift,
      or a planned change that would break it);
    * nothing attempted: ``pass`` or ``fail`` as it stands;
    * a change that was attempted and failed: ``error``;
    * passing after the run: ``fixed`` when the run made it pass, else ``pass``;
    * failing after the run: ``error`` when it passed before (the run broke it), else
      ``fail`` (drift the run did not or could not remove).
    """
    if check_mode:
        return PASS if ok_before and ok_after else FAIL
    if not attempted:
        return PASS if ok_after else FAIL
    if not applied_ok:
        return ERROR
    if ok_after:
        return PASS if ok_before else FIXED
    return ERROR if ok_before else FAIL
