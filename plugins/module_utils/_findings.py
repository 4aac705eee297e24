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


def resolve(planned_fail, check_mode, applied_ok=True):
    """The status of a control that failed before the run.

    In check mode it stays ``fail`` (drift); after a successful remediation it is
    ``fixed``; when remediation was attempted and did not succeed, ``error``.
    """
    if not planned_fail:
        return PASS
    if check_mode:
        return FAIL
    return FIXED if applied_ok else ERROR
