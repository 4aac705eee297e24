"""Audit rules logic (_audit_rules): rendering, parsing, and findings before and after a run,
on the files and outputs recorded on a bookworm lab host (auditd 1:3.0.9-1)."""

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _audit_rules as aud

# /etc/audit/rules.d/audit.rules and /etc/audit/plugins.d/syslog.conf as Debian ships them
BOOKWORM_RULES = "## First rule - delete all\n-D\n\n## Increase the buffers to survive stress events.\n" \
                 "## Make this bigger for busy systems\n-b 8192\n\n## This determine how long to wait in burst of events\n" \
                 "--backlog_wait_time 60000\n\n## Set failure mode to syslog\n-f 1\n\n"
BOOKWORM_SYSLOG = "# This file controls the configuration of the syslog plugin.\n# It simply takes events and writes them.\n\n" \
                  "active = no\ndirection = out\npath = /sbin/audisp-syslog\ntype = always \nargs = LOG_INFO\nformat = string\n"
CHECK_CHANGED = "/sbin/augenrules: Rules have changed and should be updated"
CHECK_SAME = "/sbin/augenrules: No change"
# auditctl -l as it prints loaded rules (syscall rules with key=, watches with -k); written by
# hand in that form: no kernel here would load rules to record it
AUDITCTL_L = "-w /etc/group -p wa -k identity\n-a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change\n"
PROGRAMS = ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/chage", "/usr/lib/openssh/ssh-keysign")


def rendered(programs=PROGRAMS, immutable=True, watches=None):
    return aud.render(aud.ARCHES_64, 1000, programs, immutable, watches)


def state(files, check=CHECK_SAME, loaded=None, plugin=BOOKWORM_SYSLOG, enabled="enabled"):
    return aud.State(files, check, loaded, plugin, enabled)


def test_render_is_deterministic_and_sorted():
    text = rendered()
    assert text == rendered(list(reversed(PROGRAMS)))
    privileged = [line for line in text.splitlines() if line.endswith("-k privileged")]
    assert privileged == ["-a always,exit -F path=%s -F perm=x -F auid>=1000 -F auid!=unset -k privileged" % p
                          for p in sorted(PROGRAMS)]
    assert text.rstrip().splitlines()[-1] == "-e 2"
    assert "-e 2" not in rendered(immutable=False)


@pytest.mark.parametrize("line", [
    "-w /etc/shadow -p wa -k identity",
    "-w /etc/security/opasswd -p wa -k identity",
    "-w /etc/sudoers.d -p wa -k scope",
    "-w /var/log/auth.log -p wa -k auth_log",
    "-w /var/log/wtmp -p wa -k logins",
    "-w /var/log/btmp -p wa -k logins",
    "-w /etc/localtime -p wa -k time-change",
    "-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change",
    "-a always,exit -F arch=b32 -S adjtimex,settimeofday -k time-change",
    "-a always,exit -F arch=b32 -S clock_settime -F a0=0x0 -k time-change",
    "-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -F auid>=1000 -F auid!=unset -k kernel_modules",
    "-a always,exit -F arch=b32 -S init_module,finit_module,delete_module -F auid>=1000 -F auid!=unset -k kernel_modules",
    "-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=1000 -F auid!=unset -k kernel_modules",
])
def test_render_has_each_rule(line):
    assert line in rendered().splitlines()


def test_a_32_bit_host_gets_b32_only():
    assert aud.arches("i686") == ("b32",)
    text = aud.render(aud.arches("i686"), 1000, [], False)
    assert "arch=b64" not in text and "arch=b32" in text


def test_site_watches_are_rendered_sorted():
    text = rendered(watches={"/etc/ssh/sshd_config": "sshd", "/etc/cron.d": "cron"})
    lines = text.splitlines()
    assert lines.index("-w /etc/cron.d -p wa -k cron") < lines.index("-w /etc/ssh/sshd_config -p wa -k sshd")


def test_merge_rules_takes_files_in_augenrules_order_and_the_last_e():
    active, enabled = aud.merge_rules({"10-a.rules": "-e 1\n-w /x  -p wa -k k\n", "9-b.rules": "-e 2\n",
                                       "99-z.rules.bak": "-e 0\n"})
    assert enabled == "-e 1"  # 10 sorts after 9 (ls -v), the .bak is not read
    assert "-w /x -p wa -k k" in active


def test_render_plugin_sets_active_and_keeps_the_rest():
    text = aud.render_plugin(BOOKWORM_SYSLOG, True)
    assert aud.parse_plugin(text)["active"] == "yes"
    assert aud.parse_plugin(text)["path"] == "/sbin/audisp-syslog"
    assert aud.render_plugin(text, True) == text
    assert aud.render_plugin(None, True) is None


def test_loaded_keys_reads_both_forms():
    assert aud.loaded_keys(AUDITCTL_L) == {"identity", "time-change"}
    assert aud.loaded_keys(None) is None


def statuses(findings):
    return [(f["control"], f.get("subject"), f["status"]) for f in findings]


def evaluate(before, after, check_mode, attempted, load_error="", container=None, programs=PROGRAMS):
    findings = [aud.rule_findings("AUD-002", g[0], aud.group_lines(g, aud.ARCHES_64, 1000), g[1],
                                  before, after, check_mode, attempted, load_error, container) for g in aud.GROUPS]
    findings.append(aud.rule_findings("AUD-003", "p", aud.privileged_lines(programs, 1000), "privileged",
                                      before, after, check_mode, attempted, load_error, container))
    findings.append(aud.immutable_finding(True, before, after, check_mode, attempted))
    findings.append(aud.plugin_finding(True, before, after, check_mode, attempted, True))
    return set(f["status"] for f in findings), findings


UNHARDENED = {"audit.rules": BOOKWORM_RULES}
HARDENED = {"audit.rules": BOOKWORM_RULES, "50-yoroi.rules": rendered()}
ON = aud.render_plugin(BOOKWORM_SYSLOG, True)

# (case, before, after, check_mode, attempted, load_error, container, expected statuses)
CASES = [
    ("audit of an unhardened host", state(UNHARDENED, CHECK_SAME), state(HARDENED, CHECK_SAME, plugin=ON),
     True, True, "", None, {"fail"}),
    ("audit of an unhardened container: drift, not skipped", state(UNHARDENED, CHECK_SAME),
     state(HARDENED, CHECK_SAME, plugin=ON), True, True, "Operation not permitted", "podman", {"fail"}),
    ("apply on a real kernel", state(UNHARDENED, CHECK_SAME), state(HARDENED, CHECK_SAME, AUDITCTL_L.replace(
        "identity", "identity -k scope -k auth_log -k logins -k kernel_modules -k privileged"), plugin=ON),
     False, True, "", None, {"fixed"}),
    ("apply in a container: files right, not loaded", state(UNHARDENED, CHECK_SAME), state(HARDENED, CHECK_SAME, plugin=ON),
     False, True, "augenrules --load: You must be root", "podman", {"skipped", "fixed"}),
    ("second apply in a container", state(HARDENED, CHECK_SAME, plugin=ON), state(HARDENED, CHECK_SAME, plugin=ON),
     False, False, "Error sending status request (Operation not permitted)", "podman", {"skipped", "pass"}),
    ("second audit in a container", state(HARDENED, CHECK_SAME, plugin=ON), state(HARDENED, CHECK_SAME, plugin=ON),
     True, False, "Error sending status request (Operation not permitted)", "podman", {"skipped", "pass"}),
    ("rules written but not compiled", state(HARDENED, CHECK_CHANGED, plugin=ON), state(HARDENED, CHECK_CHANGED, plugin=ON),
     False, False, "", None, {"fail", "pass"}),
    ("real kernel refused the load", state(UNHARDENED), state(HARDENED, plugin=ON),
     False, True, "augenrules --load: Error sending add rule data request (Invalid argument)", None, {"fail", "fixed"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_findings(case):
    _name, before, after, check_mode, attempted, load_error, container, expected = case
    found, findings = evaluate(before, after, check_mode, attempted, load_error, container)
    assert found == expected, statuses(findings)


def test_skipped_says_why_and_a_new_program_without_rule_fails():
    after = state(HARDENED, plugin=ON)
    item = aud.rule_findings("AUD-003", "p", aud.privileged_lines(PROGRAMS + ("/usr/bin/newgrp",), 1000), "privileged",
                             after, after, False, False, "Operation not permitted", "podman")
    assert item["status"] == "fail" and "/usr/bin/newgrp" in item["evidence"]
    item = aud.rule_findings("AUD-003", "p", aud.privileged_lines(PROGRAMS, 1000), "privileged",
                             after, after, False, False, "Operation not permitted", "podman")
    assert item["status"] == "skipped" and "Operation not permitted" in item["evidence"] and "podman" in item["evidence"]


def test_a_later_file_that_unsets_immutable_fails():
    after = state(dict(HARDENED, **{"99-finalize.rules": "-e 1\n"}), plugin=ON)
    assert aud.immutable_finding(True, after, after, False, False)["status"] == "fail"
    assert aud.immutable_finding(False, after, after, False, False)["status"] == "skipped"


def test_service_finding():
    # applied in a container: installed and enabled, auditd cannot run there
    item = aud.service_finding(False, True, ("", ""), ("enabled", "failed"), "podman", False, True)
    assert item["status"] == "fixed" and "cannot run" in item["evidence"]
    # on a host it must run
    assert aud.service_finding(True, True, ("enabled", "failed"), ("enabled", "failed"), None, False, True)["status"] == "fail"
    assert aud.service_finding(True, True, ("enabled", "failed"), ("enabled", "active"), None, False, True)["status"] == "fixed"
    item = aud.service_finding(False, False, ("", ""), ("", ""), None, True, True)
    assert item["status"] == "fail" and "installed when applying" in item["evidence"]


def test_wanted_keys():
    assert aud.wanted_keys({"/etc/hosts": "hosts"}, ["/usr/bin/su"]) == {
        "identity", "scope", "auth_log", "logins", "time-change", "kernel_modules", "hosts", "privileged"}
    assert "privileged" not in aud.wanted_keys({}, [])


def test_check_mode_says_what_is_there_and_what_apply_would_do():
    before, after = state(UNHARDENED, CHECK_SAME), state(HARDENED, CHECK_SAME, plugin=ON)
    _found, findings = evaluate(before, after, True, True)
    rules = [f for f in findings if f["control"] in ("AUD-002", "AUD-003")]
    assert all(f["actual"].startswith("0 of ") and aud.RULES_FILE in f["evidence"] for f in rules), rules
    by_control = dict((f["control"], f) for f in findings)
    assert by_control["AUD-004"]["actual"] == "no -e line"
    assert by_control["AUD-005"]["actual"] == "active = no" and "apply sets active = yes" in by_control["AUD-005"]["evidence"]


def test_a_suid_file_named_to_inject_rules_is_refused_not_written():
    """Any user may set SUID on a file of their own and name it with a line break: the
    name must never become rule lines (-D would delete the rules loaded before it)."""
    hostile = "/home/alice/x\n-D\n-e 0\n#"
    usable, refused = aud.split_programs(["/usr/bin/sudo", hostile, "/home/bob/a b"])
    assert usable == ["/usr/bin/sudo"] and refused == ["/home/alice/x\n-D\n-e 0\n#", "/home/bob/a b"]
    text = aud.render(["b64"], 1000, ["/usr/bin/sudo", hostile], True)
    assert "\n-D\n" not in text and "-e 0" not in text
    assert text.rstrip().splitlines()[-1] == aud.IMMUTABLE
