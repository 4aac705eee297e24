"""The SSH access engine: who loses SSH access under a candidate, per account and address."""

from ansible_collections.yoroi.baseline.plugins.module_utils import _access as access


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
