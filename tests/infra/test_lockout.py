"""Faillock never locks the automation account out (issue: lockout guard).

pam_faillock counts failed *password* authentications. The automation account logs in
with a key, which skips PAM's auth phase, and the account phase of pam_faillock clears
the tally after a successful login. The check proves both halves on a real host: the
failures ARE counted (so faillock is live, and the check fails on a host without it),
and the key login still works afterwards.
"""

import pytest

from checks import key_login, password_login

pytestmark = pytest.mark.lab

WRONG = "Wrong-Passw0rd-2026!"


def _failures(host, user):
    """Valid failure records faillock holds for ``user``."""
    out = host.run("faillock --user %s" % user)
    assert out.rc == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.rstrip().endswith(" V")]


def check_automation_survives_faillock(node, deny=5):
    ssh = node.ssh
    for dummy in range(deny + 1):
        assert not password_login(ssh, ssh.automation_user, WRONG)
    assert len(_failures(node.host, ssh.automation_user)) >= deny, "faillock did not count the failed logins"
    assert key_login(ssh), "the automation account's key login was refused after failed password logins"
    assert _failures(node.host, ssh.automation_user) == [], "the successful login did not clear the tally"


@pytest.fixture(scope="module")
def nodes(module_lab, apply_to):
    lab, (hardened, unhardened) = module_lab(hosts=2)
    apply_to(lab, {hardened.name: []}, tags=("password_policy",))
    return hardened, unhardened


def test_unhardened_host_does_not_count_failures(nodes):
    unhardened = nodes[1]
    with pytest.raises(AssertionError, match="faillock did not count"):
        check_automation_survives_faillock(unhardened)


def test_automation_account_keeps_its_key_login_through_faillock(nodes):
    hardened = nodes[0]
    check_automation_survives_faillock(hardened)
