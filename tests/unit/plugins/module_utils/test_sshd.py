"""sshd hardening logic on outputs recorded from real bookworm and trixie hosts."""

import os
import sys

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _sshd as sshd

sys.path.insert(0, os.path.dirname(__file__))
import test_sshd_recorded as rec  # noqa: E402

DROPIN = "/etc/ssh/sshd_config.d/00-yoroi.conf"
PARAMS = {
    "permit_root_login": "no",
    "max_auth_tries": 4,
    "login_grace_time": 60,
    "client_alive_interval": 300,
    "client_alive_count_max": 3,
    "allow_groups": ["ssh-users"],
    "banner_path": "/etc/issue.net",
    "x11_forwarding": False,
    "allow_agent_forwarding": False,
    "allow_tcp_forwarding": False,
    "contact": "soc@example.org",
}
ALLOWED = {"Ciphers": sshd.PREFERRED_CIPHERS, "MACs": sshd.PREFERRED_MACS, "KexAlgorithms": sshd.PREFERRED_KEX}
BANNER = sshd.render_banner("Authorized use only.\nReport incidents to: {contact}\n", "soc@example.org")


# --- algorithms -------------------------------------------------------------------------


@pytest.mark.parametrize("release, kex_first, kex_count", [
    ("bookworm", "sntrup761x25519-sha512", 11),
    ("trixie", "mlkem768x25519-sha256", 12),
])
def test_choose_algorithms_from_recorded_ssh_q(release, kex_first, kex_count):
    prefix = release.upper()
    kex = sshd.choose_algorithms(sshd.PREFERRED_KEX, sshd.parse_query(getattr(rec, prefix + "_Q_KEX")))
    ciphers = sshd.choose_algorithms(sshd.PREFERRED_CIPHERS, sshd.parse_query(getattr(rec, prefix + "_Q_CIPHER")))
    macs = sshd.choose_algorithms(sshd.PREFERRED_MACS, sshd.parse_query(getattr(rec, prefix + "_Q_MAC")))
    assert kex[0] == kex_first and len(kex) == kex_count
    assert ciphers == sshd.PREFERRED_CIPHERS  # all six strong ones exist on both
    assert macs == sshd.PREFERRED_MACS
    for weak in ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"):
        assert weak not in kex


def test_choose_keeps_preferred_order_not_ssh_q_order():
    assert sshd.choose_algorithms(["b", "a", "x"], ["a", "b", "c"]) == ["b", "a"]


# --- parsing and evaluating sshd -T ------------------------------------------------------


def test_parse_effective_keeps_every_line_of_accumulating_keywords():
    config = sshd.parse_effective("allowgroups a\nallowgroups b c\nmaxauthtries 4\n")
    assert sshd.words(config, "AllowGroups") == ["a", "b", "c"]
    assert sshd.value(config, "MaxAuthTries") == "4"


@pytest.mark.parametrize("recorded", ["BOOKWORM_T_STOCK", "TRIXIE_T_STOCK"])
def test_stock_debian_fails_the_controls_it_should(recorded):
    config = sshd.parse_effective(getattr(rec, recorded))
    result = sshd.evaluate(config, PARAMS, ALLOWED, "Debian GNU/Linux\n", BANNER)
    failing = sorted(c for c, (ok, _e, _a) in result.items() if not ok)
    # Debian's default ciphers and key exchanges are already strong (no CBC, no SHA-1
    # kex); its MACs are not (umac-64, hmac-sha1).
    assert failing == ["SSH-001", "SSH-003", "SSH-004", "SSH-005", "SSH-007",
                       "SSH-009", "SSH-010", "SSH-011", "SSH-012"]
    assert result["SSH-001"][2] == "PermitRootLogin without-password"
    assert "hmac-sha1" in result["SSH-007"][2] and "not in the strong list" in result["SSH-007"][2]


def test_weak_ciphers_and_kex_fail():
    weak = rec.BOOKWORM_T_C_HARDENED.replace("ciphers chacha20", "ciphers aes128-cbc,chacha20").replace(
        "kexalgorithms sntrup", "kexalgorithms diffie-hellman-group14-sha1,sntrup")
    result = sshd.evaluate(sshd.parse_effective(weak), PARAMS, ALLOWED, BANNER, BANNER)
    assert "(not in the strong list: aes128-cbc)" in result["SSH-006"][2] and not result["SSH-006"][0]
    assert not result["SSH-008"][0]


def test_trixie_stock_ciphers_are_all_strong_but_order_does_not_matter():
    config = sshd.parse_effective(rec.TRIXIE_T_STOCK)
    result = sshd.evaluate(config, PARAMS, ALLOWED, None, BANNER)
    assert result["SSH-006"][0]  # trixie's default cipher list has no CBC
    assert not result["SSH-007"][0]


def test_hardened_bookworm_passes_everything():
    config = sshd.parse_effective(rec.BOOKWORM_T_C_HARDENED)
    result = sshd.evaluate(config, PARAMS, ALLOWED, BANNER, BANNER)
    assert [c for c, (ok, _e, _a) in result.items() if not ok] == []


def test_banner_without_contact_fails():
    config = sshd.parse_effective(rec.BOOKWORM_T_C_HARDENED)
    params = dict(PARAMS, contact="")
    banner = sshd.render_banner("Report incidents to: {contact}\n", "")
    ok, _expected, actual = sshd.evaluate(config, params, ALLOWED, banner, banner)["SSH-010"]
    assert not ok and "yoroi_site_contact" in actual


def test_limits_accept_stricter_values_but_not_zero():
    base = rec.BOOKWORM_T_C_HARDENED
    stricter = base.replace("maxauthtries 4", "maxauthtries 3").replace("logingracetime 60", "logingracetime 30")
    result = sshd.evaluate(sshd.parse_effective(stricter), PARAMS, ALLOWED, BANNER, BANNER)
    assert result["SSH-003"][0] and result["SSH-004"][0]
    unlimited = base.replace("logingracetime 60", "logingracetime 0")
    assert not sshd.evaluate(sshd.parse_effective(unlimited), PARAMS, ALLOWED, BANNER, BANNER)["SSH-004"][0]


def test_allow_groups_must_be_exactly_the_configured_ones():
    extra = rec.BOOKWORM_T_C_HARDENED + "allowgroups admins\n"
    ok, _e, actual = sshd.evaluate(sshd.parse_effective(extra), PARAMS, ALLOWED, BANNER, BANNER)["SSH-009"]
    assert not ok and actual == "AllowGroups ssh-users admins"


# --- rendering --------------------------------------------------------------------------


def test_render_dropin_has_every_managed_keyword_once_and_extras_after():
    settings = sshd.desired_settings(PARAMS, ["aes256-gcm@openssh.com"], ["hmac-sha2-512-etm@openssh.com"], ["curve25519-sha256"])
    text = sshd.render_dropin(settings, sshd.extra_settings({"PasswordAuthentication": False}))
    keys = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert keys[:-1] == ["PermitRootLogin", "PermitEmptyPasswords", "MaxAuthTries", "LoginGraceTime", "ClientAliveInterval",
                         "ClientAliveCountMax", "Ciphers", "MACs", "KexAlgorithms", "AllowGroups", "Banner", "X11Forwarding",
                         "AllowAgentForwarding", "AllowTcpForwarding"]
    assert sorted(keys[:-1]) == sorted(sshd.MANAGED_KEYS)
    assert text.endswith("PasswordAuthentication no\n")
    assert "AllowGroups ssh-users\n" in text


def test_no_allow_groups_line_when_the_list_is_empty():
    settings = sshd.desired_settings(dict(PARAMS, allow_groups=[]), ["a"], ["b"], ["c"])
    assert "AllowGroups" not in dict(settings)


@pytest.mark.parametrize("extra, message", [
    ({"maxauthtries": 9}, "managed by the role"),
    ({"Match": "User x"}, "not allowed"),
    ({"Bad Key": "x"}, "not an sshd_config keyword"),
    ({"Banner": "/x"}, "managed"),
    ({"PrintMotd": "a\nb"}, "one-line"),
])
def test_extra_settings_are_refused_when_they_clash(extra, message):
    with pytest.raises(ValueError, match=message):
        sshd.extra_settings(extra)


def test_render_banner_puts_the_contact_in():
    assert sshd.render_banner("to: {contact}", "desk@x") == "to: desk@x\n"


# --- the main sshd_config -------------------------------------------------------------------

DEBIAN_MAIN = """\
# This is the sshd server system-wide configuration file.
Include /etc/ssh/sshd_config.d/*.conf
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
"""


def test_debian_main_file_is_left_alone():
    assert sshd.plan_main_config(DEBIAN_MAIN, DROPIN, sshd.MANAGED_KEYS) == (DEBIAN_MAIN, "", [])


def test_managed_keyword_before_the_include_moves_the_include_up():
    text = "Port 22\nPermitRootLogin yes\nInclude sshd_config.d/*.conf\nUsePAM yes\n"
    new, note, overriding = sshd.plan_main_config(text, DROPIN, sshd.MANAGED_KEYS)
    assert overriding == ["permitrootlogin"]
    assert "set permitrootlogin before the Include" in note
    directives = [l for l in new.splitlines() if l and not l.startswith("#")]
    assert directives[0] == "Include /etc/ssh/sshd_config.d/*.conf"
    assert directives.count("Include /etc/ssh/sshd_config.d/*.conf") == 1
    assert "# Yoroi moved this Include to the top: Include sshd_config.d/*.conf" in new


def test_unmanaged_keyword_before_the_include_is_fine():
    text = "Port 2222\nInclude /etc/ssh/sshd_config.d/*.conf\n"
    assert sshd.plan_main_config(text, DROPIN, sshd.MANAGED_KEYS)[1] == ""


def test_missing_include_is_added_and_every_control_gets_the_note():
    new, note, overriding = sshd.plan_main_config("UsePAM yes\n", DROPIN, sshd.MANAGED_KEYS)
    assert new.splitlines()[1] == "Include /etc/ssh/sshd_config.d/*.conf" and new.endswith("UsePAM yes\n")
    assert "had no Include" in note
    assert sorted(sshd.notes_for_main(note, overriding)) == sorted(sshd.CONTROL_KEYS)


def test_include_inside_match_is_moved():
    text = "Match User bob\n  Include /etc/ssh/sshd_config.d/*.conf\n"
    _new, note, _o = sshd.plan_main_config(text, DROPIN, sshd.MANAGED_KEYS)
    assert "inside a Match block" in note


def test_notes_only_for_the_overridden_controls():
    notes = sshd.notes_for_main("x", ["x11forwarding", "maxauthtries"])
    assert sorted(notes) == ["SSH-003", "SSH-011"]


def hardened(extra=""):
    return sshd.parse_effective(rec.BOOKWORM_T_C_HARDENED + extra)


# --- findings ------------------------------------------------------------------------------


def test_findings_statuses_through_a_run():
    stock = sshd.evaluate(sshd.parse_effective(rec.BOOKWORM_T_STOCK), PARAMS, ALLOWED, None, BANNER)
    done = sshd.evaluate(hardened(), PARAMS, ALLOWED, BANNER, BANNER)
    check = {f["control"]: f for f in sshd.control_findings(stock, done, True, False, "sshd -T (live)")}
    assert check["SSH-001"]["status"] == "fail" and "would become: PermitRootLogin no" in check["SSH-001"]["evidence"]
    assert check["SSH-002"]["status"] == "pass"
    applied = {f["control"]: f for f in sshd.control_findings(stock, done, False, True, "sshd -T")}
    assert applied["SSH-001"]["status"] == "fixed" and applied["SSH-001"]["actual"] == "PermitRootLogin no"
    again = {f["control"]: f for f in sshd.control_findings(done, done, False, False, "sshd -T")}
    assert set(f["status"] for f in again.values()) == {"pass"}
    overridden = {f["control"]: f for f in sshd.control_findings(stock, stock, False, True, "sshd -T",
                                                                 {"SSH-011": ["moved the Include"]})}
    assert overridden["SSH-011"]["status"] == "fail" and "moved the Include" in overridden["SSH-011"]["evidence"]


def test_login_methods_need_a_hash_or_a_key_and_an_unexpired_account():
    assert sshd.login_methods("$y$j9T$abc", False, True) == ["password", "publickey"]
    assert sshd.login_methods("!$y$j9T$abc", False, True) == ["publickey"]
    assert sshd.login_methods("*", False, False) == []
    assert sshd.login_methods("", False, False) == []
    assert sshd.login_methods("$y$j9T$abc", True, True) == []


def test_access_losses_compare_live_and_candidate_per_account():
    live = sshd.parse_effective("pubkeyauthentication yes\npasswordauthentication yes\nusepam yes\npermitrootlogin yes\n"
                                "authenticationmethods any\n")
    after = dict(live, allowgroups=["ssh-users"])
    candidates = [
        {"name": "alice", "uid": 1001, "shell": "/bin/bash", "methods": ["password"], "groups_before": {"alice"},
         "groups_after": {"alice", "ssh-users"}},
        {"name": "bob", "uid": 1002, "shell": "/bin/bash", "methods": ["publickey"], "groups_before": {"bob"},
         "groups_after": {"bob"}},
        {"name": "svc", "uid": 998, "shell": "/usr/sbin/nologin", "methods": ["password"], "groups_before": set(),
         "groups_after": set()},
        {"name": "carol", "uid": 1003, "shell": "/bin/bash", "methods": [], "groups_before": set(), "groups_after": set()},
    ]
    losses = sshd.ssh_access_losses(candidates, live, after, "192.0.2.1")
    assert [(name, methods) for name, methods, _problems in losses] == [("bob", ["publickey"])]
    assert "AllowGroups ssh-users: bob is in none of them" in losses[0][2][0]
    # already refused today: nothing is lost
    assert sshd.ssh_access_losses(candidates, after, after, "192.0.2.1") == []
