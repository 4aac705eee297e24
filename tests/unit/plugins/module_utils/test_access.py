"""The SSH access engine: who loses SSH access under a candidate, per account and address.

The sshd -T -C outputs were recorded on real bookworm and trixie hosts
(test_sshd_recorded.py).
"""

import os
import sys

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles

sys.path.insert(0, os.path.dirname(__file__))
import test_sshd_recorded as rec  # noqa: E402


def _eff(**values):
    base = {"usepam": "yes", "kbdinteractiveauthentication": "yes", "pubkeyauthentication": "yes",
            "passwordauthentication": "yes", "authenticationmethods": "any"}
    base.update(values)
    return base


def _way_in(config, capabilities):
    return access.way_in(config, access.usable_methods(config, dict(capabilities, uid=1000)))


def test_way_in_for_a_key_only_account():
    key_only = {"key": True, "password": False, "kbdint": False}
    assert _way_in(_eff(authenticationmethods="publickey"), key_only)[0]
    assert _way_in(_eff(), key_only)[0]
    assert not _way_in(_eff(authenticationmethods="publickey,keyboard-interactive"), key_only)[0]
    assert not _way_in(_eff(authenticationmethods="publickey", pubkeyauthentication="no"), key_only)[0]


class Candidate(object):
    """sshd -T -C answers by address: {address: config}."""

    def __init__(self, by_address):
        self.by_address = by_address
        self.asked = []

    def effective(self, user=None, conn=None):
        self.asked.append((user, conn["addr"]))
        return access.parse_effective(self.by_address[conn["addr"]]), ""


BASE = ("usepam yes\npubkeyauthentication yes\npasswordauthentication no\nkbdinteractiveauthentication yes\n"
        "authenticationmethods any\npermitrootlogin no\nauthorizedkeysfile .ssh/authorized_keys\n")


def test_allow_groups_cuts_an_account_outside_the_groups_from_every_address():
    candidate = Candidate({"10.0.0.1": BASE + "allowgroups ssh-users\n", "10.0.0.2": BASE + "allowgroups ssh-users\n"})
    automation = access.account("yoroi", 1005, {"yoroi"}, key=True, role="automation")
    member = access.account("alice", 1001, {"alice", "ssh-users"}, key=True, role="user")
    results, errors = access.who_loses_access(candidate, [automation, member], [{"addr": "10.0.0.1"}, {"addr": "10.0.0.2"}])
    assert errors == []
    assert results["alice"]["problems"] == []
    assert [row["addr"] for row in results["yoroi"]["by_address"]] == ["10.0.0.1", "10.0.0.2"]
    assert all("AllowGroups ssh-users: yoroi is in none of them" in row["problems"][0]
               for row in results["yoroi"]["by_address"])
    assert results["yoroi"]["problems"][0].startswith("from 10.0.0.1: AllowGroups")


def test_need_any_is_satisfied_by_one_address_and_every_is_not():
    candidate = Candidate({"10.0.0.1": BASE, "192.0.2.9": BASE.replace("authenticationmethods any",
                                                                       "authenticationmethods password")})
    conns = [{"addr": "10.0.0.1"}, {"addr": "192.0.2.9"}]
    every = access.account("yoroi", 1005, {"yoroi"}, key=True, need="every")
    anyone = access.account("breakglass", 1000, {"breakglass"}, key=True, need="any")
    results, _errors = access.who_loses_access(candidate, [every, anyone], conns)
    assert results["yoroi"]["problems"] and "from 192.0.2.9" in results["yoroi"]["problems"][0]
    assert results["breakglass"]["problems"] == []
    nowhere = dict(anyone, key=False)
    results, _errors = access.who_loses_access(candidate, [nowhere], conns)
    assert results["breakglass"]["problems"][0].startswith("no way in from any of 10.0.0.1, 192.0.2.9")


def test_capabilities_can_differ_by_address_and_keys_are_looked_up():
    # keyboard-interactive works only where an exemption skips the code
    config = BASE.replace("authenticationmethods any", "authenticationmethods keyboard-interactive")
    candidate = Candidate({"10.0.0.1": config, "192.0.2.9": config})
    acct = access.account("bg", 1000, {"bg"}, key=None, password=True, kbdint=False, need="every", home="/home/bg")
    acct["at"] = {"10.0.0.1": {"kbdint": True}}
    results, _errors = access.who_loses_access(candidate, [acct], [{"addr": "10.0.0.1"}, {"addr": "192.0.2.9"}],
                                               read=lambda path: None)
    assert [bool(row["problems"]) for row in results["bg"]["by_address"]] == [False, True]
    keys = {"/home/k/.ssh/authorized_keys": "ssh-ed25519 AAAA k\n"}
    key_user = access.account("k", 1003, {"k"}, key=None, home="/home/k")
    results, _errors = access.who_loses_access(Candidate({"10.0.0.1": BASE}), [key_user], [{"addr": "10.0.0.1"}],
                                               read=keys.get)
    assert results["k"]["problems"] == []
    results, _errors = access.who_loses_access(Candidate({"10.0.0.1": BASE}), [key_user], [{"addr": "10.0.0.1"}],
                                               read=lambda path: None)
    assert "no authorized key found" in results["k"]["problems"][0]


# --- sshd allowed_user() on recorded sshd -T -C outputs (moved from test_sshd) ------------

def test_staged_main_points_the_dropin_include_at_the_stage():
    text = "Include sshd_config.d/*.conf other.conf\nUsePAM yes\n"
    staged = access.staged_main_config(text, "/etc/ssh/sshd_config.d", "/tmp/stage/d")
    assert staged.splitlines()[0] == "Include /tmp/stage/d/*.conf /etc/ssh/other.conf"


# --- the lockout pre-check on recorded sshd -T -C outputs ----------------------------------

AUTOMATION = {"name": "yoroi", "uid": 1005, "groups": {"yoroi", "ssh-users"}, "shell": "/bin/bash", "shell_ok": True,
              "methods": ["publickey"], "keys_found": True}
BREAKGLASS = {"name": "breakglass", "uid": 1000, "groups": {"breakglass", "sudo", "ssh-users"}, "shell": "/bin/bash",
              "shell_ok": True, "methods": ["password"]}


def hardened(extra=""):
    return access.parse_effective(rec.BOOKWORM_T_C_HARDENED + extra)


def problems(config, account, address="10.89.3.1"):
    return access.access_problems(config, account, address, address)


def test_hardened_config_keeps_automation_and_break_glass_in():
    assert problems(hardened(), AUTOMATION) == []
    assert problems(hardened(), BREAKGLASS) == []


@pytest.mark.parametrize("account, change, fragment", [
    (AUTOMATION, {"groups": {"yoroi"}}, "AllowGroups ssh-users: yoroi is in none of them"),
    (BREAKGLASS, {"groups": {"breakglass", "sudo"}}, "breakglass is in none of them"),
    (AUTOMATION, {"keys_found": False}, "no authorized key found"),
    (AUTOMATION, {"shell_ok": False}, "login shell"),
    (AUTOMATION, {"uid": 0, "name": "root"}, "PermitRootLogin no refuses root"),
])
def test_account_changes_that_lock_out(account, change, fragment):
    found = problems(hardened(), dict(account, **change))
    assert any(fragment in p for p in found), found


@pytest.mark.parametrize("extra, account, fragment", [
    ("allowusers nobody\n", AUTOMATION, "AllowUsers nobody does not include yoroi"),
    ("denyusers yo*\n", AUTOMATION, "DenyUsers yo* matches yoroi"),
    ("denygroups sudo\n", BREAKGLASS, "DenyGroups sudo matches breakglass's group sudo"),
    ("allowusers yoroi@192.168.0.0/16\n", AUTOMATION, "AllowUsers"),
])
def test_settings_that_lock_out(extra, account, fragment):
    found = problems(hardened(extra), account)
    assert any(fragment in p for p in found), found


def test_user_at_address_patterns_match_the_connection():
    assert problems(hardened("allowusers yoroi@10.89.0.0/16 breakglass\n"), AUTOMATION) == []
    assert problems(hardened("allowusers yoroi@10.89.3.* breakglass\n"), AUTOMATION) == []


def test_authentication_methods():
    no_pubkey = rec.BOOKWORM_T_C_HARDENED.replace("pubkeyauthentication yes", "pubkeyauthentication no")
    assert any("could not authenticate with publickey" in p for p in problems(access.parse_effective(no_pubkey), AUTOMATION))
    no_password = rec.BOOKWORM_T_C_HARDENED.replace("passwordauthentication yes", "passwordauthentication no")
    assert problems(access.parse_effective(no_password), BREAKGLASS)
    # keyboard-interactive through PAM still asks for the password
    kbd = no_password.replace("kbdinteractiveauthentication no", "kbdinteractiveauthentication yes")
    assert problems(access.parse_effective(kbd), BREAKGLASS) == []
    # MFA for everyone (publickey AND a code) locks the automation out; either-or does not
    mfa = rec.BOOKWORM_T_C_HARDENED.replace("authenticationmethods any", "authenticationmethods publickey,keyboard-interactive")
    assert problems(access.parse_effective(mfa), AUTOMATION)
    either = rec.BOOKWORM_T_C_HARDENED.replace("authenticationmethods any",
                                               "authenticationmethods publickey,keyboard-interactive publickey")
    assert problems(access.parse_effective(either), AUTOMATION) == []


def test_root_with_prohibit_password_keeps_keys_only():
    config = access.parse_effective(rec.BOOKWORM_T_STOCK)  # permitrootlogin without-password
    root_key = dict(AUTOMATION, name="root", uid=0, groups={"root"})
    assert problems(config, root_key) == []
    root_password = dict(BREAKGLASS, name="root", uid=0, groups={"root"})
    assert problems(config, root_password)


def test_match_pattern_list_negation():
    assert access.match_pattern_list("admins", "adm*,!admins") == -1
    assert access.match_pattern_list("adm1", "adm*,!admins") == 1
    assert access.match_pattern_list("x", "adm*") == 0


def test_authorized_keys_paths_expand_tokens():
    config = access.parse_effective("authorizedkeysfile .ssh/authorized_keys /etc/ssh/keys/%u %%h\n")
    assert access.authorized_keys_paths(config, "yoroi", "/home/yoroi", 1005) == [
        "/home/yoroi/.ssh/authorized_keys", "/etc/ssh/keys/yoroi", "/home/yoroi/%h"]


def test_account_groups_include_the_primary_group():
    rows = hostfiles.parse_group("yoroi:x:1005:\nsudo:x:27:breakglass\nssh-users:x:1010:alice,yoroi\n")
    assert hostfiles.account_groups("yoroi", 1005, rows) == {"yoroi", "ssh-users"}
    assert hostfiles.account_groups("breakglass", 1000, rows) == {"sudo"}


# --- where the automation connects from -------------------------------------------------------

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0A00590A:0016 0103590A:D2F4 01 00000000:00000000 02:0009A1B6 00000000     0        0 2 2 0000000000000000 20 4 31 10 -1
   2: 0A00590A:0050 0203590A:D2F5 01 00000000:00000000 02:0009A1B6 00000000     0        0 3 2 0000000000000000 20 4 31 10 -1
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st
   0: 0000000000000000FFFF00000A00590A:0016 0000000000000000FFFF00000103590A:C350 01 0
"""


def test_established_peers_of_sshd_only():
    assert access.established_peers(PROC_NET_TCP, ["22"]) == ["10.89.3.1"]
    assert access.established_peers(PROC_NET_TCP6, ["22"]) == ["10.89.3.1"]
    assert access.established_peers(PROC_NET_TCP, ["2222"]) == []


def test_ssh_connection_and_the_connection_spec():
    conn = access.parse_ssh_connection("10.89.3.1 53994 10.89.0.10 22")
    assert access.connection_spec("yoroi", conn) == "user=yoroi,host=10.89.3.1,addr=10.89.3.1,laddr=10.89.0.10,lport=22"
    assert access.connection_spec("yoroi", {}) == "user=yoroi,host=127.0.0.1,addr=127.0.0.1"
