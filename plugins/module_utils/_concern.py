# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The concern kit: what every Yoroi module needs, once.

A module is wiring: arguments, read, call the logic, act, exit. Around that wiring,
every concern needs the same parts, and they live here:

* the shared arguments (:func:`argument_spec`): ``automation_account`` (a string; the
  ``SUDO_USER`` of the run is treated as one too), ``break_glass_accounts``,
  ``protected_accounts`` (lists) and ``guard_timeout``;
* the protected accounts (:attr:`Concern.protected`): root, the automation account(s),
  the break-glass accounts and the protected allowlist, each with the reason, which no
  module changes; and the accounts that must keep a way in (:meth:`Concern.must_keep_access`);
* refusing (:meth:`Concern.refuse`): an ERROR finding for every control of the concern,
  so a refused concern never vanishes from the report;
* the host-wide lock (:meth:`Concern.changing`): every run that changes anything holds
  it (``_lock.host_lock``); a busy host is a refusal, not a hang;
* arming the lockout guard (:meth:`Concern.arm_guard`): one call, one result key
  ``guard_token`` (and ``guard``: token, unit, dir, timeout, change - what the role that
  proves the fresh login reads), one message when it cannot be armed;
* the packages it needs (:meth:`Concern.install`): installed in the same module call,
  only when applying and only when missing (``_packages``);
* the exit (:meth:`Concern.exit`): findings, changed, diff (only in diff mode), and a
  message when a finding is an error.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _guard
from ansible_collections.yoroi.baseline.plugins.module_utils import _lock
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, finding

# Tests point these at a temporary file and no wait; the guard's restore uses _lock's path.
HOST_LOCK = _lock.HOST_LOCK
LOCK_WAIT = _lock.WAIT_SECONDS

AUTOMATION = "automation account"
SUDO = "automation account (SUDO_USER)"
BREAK_GLASS = "break-glass account"
PROTECTED = "protected account"


def argument_spec(own, guard_timeout=None, protected=True, packages=False):
    """The module's argument spec: the shared options, then its ``own``.

    ``guard_timeout``: the default of the guard option, or None for a module without a
    guard. ``protected``: whether the module changes accounts and so takes the allowlist.
    ``packages``: whether it installs packages it needs (:meth:`Concern.install`).
    """
    spec = dict(
        automation_account=dict(type="str"),
        break_glass_accounts=dict(type="list", elements="str", default=[]),
    )
    if protected:
        spec["protected_accounts"] = dict(type="list", elements="str", default=[])
    if guard_timeout is not None:
        spec["guard_timeout"] = dict(type="int", default=guard_timeout)
    if packages:
        spec["packages"] = dict(type="list", elements="str", default=[])
        spec["apt_cache_valid_time"] = dict(type="int", default=3600)
    spec.update(own)
    return spec


def protected_accounts(params, environ=None):
    """{name: reason} of every account no module changes, in a stable order."""
    environ = os.environ if environ is None else environ
    protected = {"root": "root"}
    if params.get("automation_account"):
        protected.setdefault(params["automation_account"], AUTOMATION)
    if environ.get("SUDO_USER"):
        protected.setdefault(environ["SUDO_USER"], SUDO)
    for name in params.get("break_glass_accounts") or []:
        protected.setdefault(name, BREAK_GLASS)
    for name in params.get("protected_accounts") or []:
        protected.setdefault(name, PROTECTED)
    return protected


class Concern(object):
    """One module run of one concern.

    ``controls``: {control id: what it expects} for every control the module can emit;
    refusals give one ERROR finding for each. ``change``: what a guarded change is called
    (sshd, PAM, ...) in the lockout_guard role's messages; the module name by default.
    """

    def __init__(self, module, name, controls, environ=None, change=None):
        self.module = module
        self.name = name
        self.change = change or name
        self.controls = dict(controls)
        self.protected = protected_accounts(module.params, environ)
        self.installed = []
        self.to_install = []  # check mode: the packages an apply would install

    # --- accounts -----------------------------------------------------------------------

    @property
    def automation(self):
        """The automation account(s): the one configured and the SUDO_USER of this run."""
        return [name for name, reason in self.protected.items() if reason in (AUTOMATION, SUDO)]

    @property
    def break_glass(self):
        return [name for name, reason in self.protected.items() if reason == BREAK_GLASS]

    def must_keep_access(self):
        """[(name, "automation" | "break-glass")]: the accounts a change must not lock out."""
        return [(name, "automation") for name in self.automation] + [(name, "break-glass") for name in self.break_glass]

    # --- refusing and failing ----------------------------------------------------------

    def error_findings(self, evidence, actual=None):
        """An ERROR finding for every control; ``actual`` maps a control to what was found."""
        actual = actual or {}
        findings = []
        for control, expected in sorted(self.controls.items()):
            if isinstance(expected, tuple):
                expected, found = expected[0], expected[1]
            else:
                found = "not evaluated"
            findings.append(finding(control, ERROR, expected, actual.get(control, found), evidence))
        return findings

    def refuse(self, reason, actual=None, **extra):
        """Stop before any change: ``refused: <reason>; nothing was changed``."""
        extra = dict((k, v) for k, v in extra.items() if k not in ("changed", "findings", "msg"))
        self.module.fail_json(msg="refused: %s; nothing was changed" % reason,
                              findings=self.error_findings("refused before any change: %s" % reason, actual),
                              changed=False, **extra)

    def fail(self, message, changed=True, **extra):
        """Stop after a change began: ERROR findings that carry ``message``."""
        extra = dict((k, v) for k, v in extra.items() if k not in ("changed", "findings", "msg"))
        self.module.fail_json(msg=message, findings=self.error_findings(message), changed=changed, **extra)

    # --- acting --------------------------------------------------------------------------

    @contextlib.contextmanager
    def changing(self, needed=True):
        """Hold the host-wide lock while the run changes the host: never in check mode,
        nor when ``needed`` is false (nothing to change). A file that fails its validator
        inside the block fails the run with an ERROR finding per control."""
        stack = contextlib.ExitStack()
        if needed and not self.module.check_mode:
            try:
                stack.enter_context(_lock.host_lock(self.name, path=HOST_LOCK, wait=LOCK_WAIT))
            except _lock.HostBusy as exc:
                self.refuse("the host is busy: %s" % exc)
        with stack:
            try:
                yield
            except _files.ValidationFailed as exc:
                self.fail(str(exc))

    def install(self, packages, cache_valid_time=3600, replace=(), recommends=True):
        """Install the Debian ``packages`` the concern needs that are missing, under the
        host lock. In check mode nothing is installed, but a missing package is a change
        the apply would make: the result says "changed" (and ``packages_to_install``), so
        that an audit's plan is the apply's (`yoroi apply` leaves out the hosts whose
        audit would change nothing). ``replace``: installed packages that conflict with
        them and go in the same apt run (and nothing else). ``recommends=False`` leaves
        out what they only recommend. Refuses, changing nothing more, when apt fails."""
        if self.module.check_mode:
            try:
                self.to_install.extend(_packages.missing(self.module, list(packages)))
            except OSError as exc:
                self.refuse(str(exc))
            return []
        try:
            wanted = _packages.missing(self.module, list(packages))
            if wanted:
                with self.changing():
                    _packages.install(self.module, wanted, cache_valid_time, replace=list(replace),
                                      recommends=recommends)
        except OSError as exc:
            self.refuse(str(exc))
        self.installed.extend(wanted)
        return wanted

    def arm_guard(self, paths, reload_units, timeout, root=None):
        """Arm the lockout guard over ``paths``; {} when the guard is off (0) or nothing
        changes, else {"guard_token", "guard"} for the result. ``guard`` holds all that the
        lockout_guard role needs: token, unit, dir, timeout and change. Refuses when it
        cannot be armed."""
        if not timeout or not paths or self.module.check_mode:
            return {}
        try:
            where = (root,) if root else ()
            armed = _guard.arm(self.module, list(paths), list(reload_units), timeout, *where)
        except (_guard.GuardError, OSError) as exc:
            self.refuse("the lockout guard could not be armed: %s" % exc)
        return {"guard_token": armed["token"], "guard": dict(armed, timeout=int(timeout), change=self.change)}

    def exit(self, findings, changed, diff=None, **extra):
        """Exit with the findings; ``diff`` is returned in diff mode only."""
        result = dict(extra, changed=bool(changed or self.installed or self.to_install), findings=findings)
        if self.installed:
            result["packages_installed"] = list(self.installed)
        if self.to_install:
            result["packages_to_install"] = list(self.to_install)
        if diff and self.module._diff:
            result["diff"] = diff
        if any(item["status"] == ERROR for item in findings) and "msg" not in result:
            result["msg"] = "some controls could not be enforced; see findings"
        self.module.exit_json(**result)


def run_tool(module, argv, environ=None):
    """(rc, output) of a host tool by name - stdout and stderr together, stripped - with
    ``LC_ALL=C``; (None, "NAME not found") when it is not installed, so a missing tool is
    a finding, never a crash."""
    path = module.get_bin_path(argv[0])
    if not path:
        return None, "%s not found" % argv[0]
    rc, out, err = module.run_command([path] + list(argv[1:]), environ_update=dict(environ or {"LC_ALL": "C"}))
    return rc, (out + err).strip()
