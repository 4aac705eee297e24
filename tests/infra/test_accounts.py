"""Accounts (ACC-001..005), verified on real lab hosts by independent means.

One lab of three bookworm hosts:

* ``unhardened``: left as seeded; every check must FAIL here (a check that cannot fail
  is a defect), and for the reason it is about (the ``match`` below).
* ``hardened``: `yoroi apply --tags accounts` with the lab inventory's settings (stale
  accounts locked, ``breakglass`` declared break-glass); every check must pass.
* ``removal``: `yoroi apply --tags accounts -e yoroi_accounts_stale_action=remove
  -e yoroi_break_glass_accounts=nobody`: bob is archived and removed, and, with
  breakglass no longer declared, the break-glass part of its check must fail.

The checks live in checks.py and are shared with Molecule's verifier.
"""

from __future__ import annotations

import pytest

import checks

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_nodes(module_lab):
    lab, nodes = module_lab(hosts=3)
    return lab, dict(zip(("unhardened", "hardened", "removal"), nodes))


@pytest.fixture(scope="module")
def unhardened(lab_nodes):
    return lab_nodes[1]["unhardened"]


@pytest.fixture(scope="module")
def applied(lab_nodes, apply_to):
    """Harden two of the hosts (in parallel) before any check logs into them: a login
    as bob would make him active again."""
    lab, nodes = lab_nodes
    # kuser: created in 2019 with a key and no password, logs in with the key without a
    # terminal (as scripts, scp and rsync do), which leaves no lastlog or wtmp record
    checks.add_key_user(nodes["hardened"].host, "kuser")
    assert checks.user_key_login(nodes["hardened"].ssh, "kuser")
    documents = apply_to(lab, {
        nodes["hardened"].name: [],
        nodes["removal"].name: ["yoroi_accounts_stale_action=remove", "yoroi_break_glass_accounts=nobody"],
    }, tags=("accounts",))
    return nodes, documents


@pytest.fixture(scope="module")
def hardened(applied):
    return applied[0]["hardened"]


@pytest.fixture(scope="module")
def removal(applied):
    return applied[0]["removal"]


# check name -> (how it is called on a node, what its failure on a neglected host says)
CHECKS = {
    "stale_account_locked": (
        lambda n: checks.check_stale_account_locked(n.host, n.ssh),
        "stale account bob still logs in over SSH"),
    "never_used_locked_breakglass_exempt": (
        lambda n: checks.check_never_used_locked_breakglass_exempt(n.host, n.ssh),
        "never-used account carol still logs in"),
    "empty_password_refused": (
        lambda n: checks.check_empty_password_refused(n.host),
        "dave has an empty password field"),
    "extra_uid0_locked": (
        lambda n: checks.check_extra_uid0_locked(n.host),
        "UID 0 account toor logs in"),
    "system_account_no_shell": (
        lambda n: checks.check_system_account_no_shell(n.host),
        "system account backupsvc has login shell /bin/bash"),
    "stale_account_removed_with_archive": (
        lambda n: checks.check_stale_account_removed_with_archive(n.host),
        "expected one archive of bob"),
}
ON_REMOVAL_HOST = {"stale_account_removed_with_archive"}


@pytest.mark.parametrize("name", CHECKS)
def test_check_fails_on_unhardened_host(name, unhardened):
    check, reason = CHECKS[name]
    with pytest.raises(AssertionError, match=reason):
        check(unhardened)


@pytest.mark.parametrize("name", CHECKS)
def test_check_passes_after_apply(name, hardened, removal):
    check = CHECKS[name][0]
    check(removal if name in ON_REMOVAL_HOST else hardened)


def test_lock_policy_keeps_bob_and_writes_no_archive(hardened):
    """The removal check fails where the policy is lock: nothing was archived or removed."""
    with pytest.raises(AssertionError, match="expected one archive of bob"):
        checks.check_stale_account_removed_with_archive(hardened.host)


def test_breakglass_part_fails_where_breakglass_is_not_declared(removal):
    """Without the break-glass declaration, the never-used breakglass account is locked
    like carol, and the exemption part of the check says so."""
    with pytest.raises(AssertionError, match="break-glass account breakglass is locked"):
        checks.check_never_used_locked_breakglass_exempt(removal.host, removal.ssh)


def test_removal_host_still_locks_the_rest(removal):
    for name in ("empty_password_refused", "extra_uid0_locked", "system_account_no_shell"):
        CHECKS[name][0](removal)


def test_key_only_user_that_logs_in_keeps_its_access(hardened):
    """ACC-002 must not take a key login without a terminal for "never used"."""
    checks.check_key_user_keeps_access(hardened.ssh, "kuser")
    fields = hardened.host.run("getent shadow kuser").stdout.split(":")
    assert fields[7] == "", "kuser was given an expiry date (%s)" % fields[7]
