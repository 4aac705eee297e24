"""Password policy (PWD-001..013), verified on real lab hosts by independent means.

One lab of two bookworm hosts: ``unhardened`` (as seeded: every check must FAIL there,
for the reason it is about) and ``hardened`` (`yoroi apply --tags password_policy` with
``yoroi_password_policy_faillock_unlock_time=20`` so that the unlock can be waited for;
every check must pass). Passwords are changed for real through PAM (chpasswd as root,
which is what enforce_for_root is about) and put back afterwards; faillock is driven by
real SSH password logins.
"""

from __future__ import annotations

import pytest

import checks

pytestmark = pytest.mark.lab

UNLOCK_TIME = 20


@pytest.fixture(scope="module")
def lab_nodes(module_lab):
    lab, nodes = module_lab(hosts=2)
    return lab, dict(zip(("unhardened", "hardened"), nodes))


@pytest.fixture(scope="module")
def unhardened(lab_nodes):
    return lab_nodes[1]["unhardened"]


@pytest.fixture(scope="module")
def hardened(lab_nodes, apply_to):
    lab, nodes = lab_nodes
    host = nodes["hardened"].host
    # kpass: a password set in 2019 and never changed, logs in with its key;
    # konly: no password, a key, and a maximum password age (useradd after PASS_MAX_DAYS 365)
    checks.add_key_user(host, "kpass", password="Kpass-Lab-2026!x")
    checks.add_key_user(host, "konly", max_days=365)
    apply_to(lab, {nodes["hardened"].name: [f"yoroi_password_policy_faillock_unlock_time={UNLOCK_TIME}"]},
             tags=("password_policy",))
    return nodes["hardened"]


CHECKS = {
    "weak_password_refused": (
        lambda n: checks.check_weak_password_refused(n.host),
        "the weak password 'abc12' was accepted"),
    "password_reuse_refused": (
        lambda n: checks.check_password_reuse_refused(n.host),
        "could set a password used two changes ago again"),
    "faillock": (
        lambda n: checks.check_faillock(n.host, n.ssh, unlock_time=UNLOCK_TIME),
        "alice still logs in with the right password after 5 failed logins"),
    "faillock_spares_breakglass": (
        lambda n: checks.check_faillock_spares_breakglass(n.host, n.ssh),
        "alice still logs in with the right password after 5 failed logins"),
    "password_aging": (
        lambda n: checks.check_password_aging(n.host),
        "login.defs has .*PASS_MAX_DAYS.*99999"),
}


@pytest.mark.parametrize("name", CHECKS)
def test_check_fails_on_unhardened_host(name, unhardened):
    check, reason = CHECKS[name]
    with pytest.raises(AssertionError, match=reason):
        check(unhardened)


@pytest.mark.parametrize("name", CHECKS)
def test_check_passes_after_apply(name, hardened):
    CHECKS[name][0](hardened)


def test_hardening_locked_nobody_out(hardened):
    """The PAM change keeps the automation account and an active user able to log in."""
    assert checks.key_login(hardened.ssh)
    assert checks.password_login(hardened.ssh, "alice", checks.PASSWORDS["alice"])


@pytest.mark.parametrize("user", ["kpass", "konly"])
def test_password_aging_does_not_lock_key_users_out(hardened, user):
    """An expired password refuses key logins too, without a terminal ("Password change
    required but no TTY available"), even when the password field is locked."""
    checks.check_key_user_keeps_access(hardened.ssh, user)
