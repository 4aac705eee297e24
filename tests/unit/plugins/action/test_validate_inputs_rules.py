"""The input rules (meta/input_rules.yml, plugins/action/validate_inputs.py): every
malformed value stops the run with a message naming the variable; every default passes."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.yoroi.baseline.plugins.action import validate_inputs as vi

ROOT = Path(vi.COLLECTION_ROOT)
SSHD_RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "test_sshd_recorded.py"


def recorded():
    """`ssh -Q` outputs recorded on bookworm (OpenSSH 9.2) and trixie (OpenSSH 10.0)."""
    spec = importlib.util.spec_from_file_location("sshd_recorded", SSHD_RECORDED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def specs():
    return vi.load_specs()


@pytest.fixture(scope="module")
def rules():
    return vi.load_rules()


class InputFile(object):
    """A file the test writes into its temp directory; the variable gets its path."""

    def __init__(self, name, text):
        self.name, self.text = name, text

    def write(self, directory):
        path = directory / self.name
        path.write_text(self.text)
        return str(path)


KEV_ENTRY = {"cveID": "CVE-2024-3400", "vendorProject": "Palo Alto Networks", "product": "PAN-OS",
             "dueDate": "2024-04-19", "knownRansomwareCampaignUse": "Unknown"}


def exemption(**fields):
    item = {"user": "yoroi", "methods": "publickey", "from": ["192.0.2.0/24"]}
    item.update(fields)
    return [item]


# (variable, value, a fragment of the reason). Each alone must stop the run.
MALFORMED = [
    # user and group names
    ("yoroi_automation_account", "yoroi ops", "whitespace"),
    ("yoroi_automation_account", "yoroi\nPermitRootLogin yes", "newline"),
    ("yoroi_automation_account", "-oProxyCommand", "not an account or group name"),
    ("yoroi_break_glass_accounts", ["breakglass", "adm*"], "wildcard"),
    ("yoroi_break_glass_accounts", ["ALL"], "pam_access keyword"),
    ("yoroi_protected_accounts", ["!root"], "negates"),
    ("yoroi_protected_accounts", ["a,b"], "separates sshd pattern lists"),
    ("yoroi_ssh_allow_groups", ["ssh-users", "wheel "], "whitespace"),
    ("yoroi_ssh_allow_groups", ["ssh?users"], "wildcard"),
    ("yoroi_ssh_allow_groups", ["LOCAL"], "pam_access keyword"),
    ("yoroi_ssh_allow_group_members", ["alice@10.0.0.1"], "user@host"),
    ("yoroi_ssh_allow_group_members", ["x" * 33], "at most 32"),
    ("yoroi_mfa_groups", ["mfa-users", "[ab]"], "wildcard"),
    ("yoroi_mfa_groups", ["(admins)"], "parentheses"),
    ("yoroi_mfa_groups", ["except"], "pam_access keyword"),
    # MFA exemptions
    ("yoroi_mfa_exemptions", exemption(user="ALL"), "pam_access keyword"),
    ("yoroi_mfa_exemptions", exemption(user="all"), "pam_access keyword"),
    ("yoroi_mfa_exemptions", exemption(user="ops:dev"), "field separator"),
    ("yoroi_mfa_exemptions", exemption(**{"from": ["0.0.0.0/0"]}), "every address"),
    ("yoroi_mfa_exemptions", exemption(**{"from": ["::/0"]}), "every address"),
    ("yoroi_mfa_exemptions", exemption(**{"from": ["10.0.0.5/8"]}), "host bits set; the network is 10.0.0.0/8"),
    ("yoroi_mfa_exemptions", exemption(**{"from": ["vpn.example.org"]}), "not an IP address"),
    ("yoroi_mfa_exemptions", exemption(**{"from": ["10.0.0.0/8 192.0.2.1"]}), "not an IP address"),
    ("yoroi_mfa_exemptions", exemption(**{"from": ["10.0.0.0/33"]}), "not an IP address"),
    ("yoroi_mfa_exemptions", exemption(methods="publickey,otp"), "expected form"),
    ("yoroi_mfa_exemptions", exemption(methods="publickey keyboard-interactive"), "expected form"),
    # paths
    ("yoroi_accounts_archive_dir", "/home", "shared system directory"),
    ("yoroi_accounts_archive_dir", "/var/backups", "shared system directory"),
    ("yoroi_accounts_archive_dir", "/", "shared system directory"),
    ("yoroi_accounts_archive_dir", "/etc", "shared system directory"),
    ("yoroi_accounts_archive_dir", "/root", "shared system directory"),
    ("yoroi_accounts_archive_dir", "/var/lib/mysql", "belongs to some package"),
    ("yoroi_accounts_archive_dir", "/tmp/archives", "under /tmp"),
    ("yoroi_accounts_archive_dir", "/home/alice/archives", "under /home"),
    ("yoroi_accounts_archive_dir", "var/backups/yoroi", "not an absolute path"),
    ("yoroi_accounts_archive_dir", "/var/backups/yoroi/../../../home", "not normalized"),
    ("yoroi_accounts_archive_dir", "~/archives", "not an absolute path"),
    ("yoroi_accounts_archive_dir", "/var/backups/$USER", "not expanded on the host"),
    ("yoroi_accounts_nologin_shell", "/bin/bash", "expected form"),
    ("yoroi_accounts_nologin_shell", "nologin", "not an absolute path"),
    ("yoroi_ssh_banner_path", "/etc/issue.net\nPermitRootLogin yes", "newline"),
    ("yoroi_ssh_banner_path", "/etc/shadow", "expected form"),
    ("yoroi_ssh_banner_path", "/etc/ssh/sshd_config", "expected form"),
    ("yoroi_ssh_banner_path", "/etc/./issue.net", "not normalized"),
    ("yoroi_mfa_enrollment_dir", "/home", "shared system directory"),
    ("yoroi_mfa_enrollment_dir", "~", "home directory itself"),
    ("yoroi_mfa_enrollment_dir", "/tmp/otp", "another user can create it first"),
    ("yoroi_mfa_enrollment_dir", "~/../otp", "not normalized"),
    ("yoroi_mfa_enrollment_dir", "otp", "not an absolute path"),
    # free text that lands in config lines
    ("yoroi_ssh_extra_settings", {"AllowUsers": "alice\nPermitRootLogin yes"}, "newline"),
    ("yoroi_ssh_extra_settings", {"PermitRootLogin yes\nX": "y"}, "not an sshd_config keyword"),
    ("yoroi_ssh_extra_settings", {"Match": "User alice"}, "not allowed in the drop-in"),
    ("yoroi_ssh_extra_settings", {"Ciphers": "3des-cbc"}, "managed by the role"),
    ("yoroi_ssh_extra_settings", {"permitrootlogin": "yes"}, "managed by the role"),
    ("yoroi_ssh_service_name", "ssh\nExecStart=/bin/sh", "newline"),
    ("yoroi_ssh_service_name", "--force", "expected form"),
    ("yoroi_ssh_banner_text", "Authorized use only\x00", "control character"),
    ("yoroi_mfa_issuer", "Yoroi\r\nX", "newline"),
    ("yoroi_site_contact", "desk@example.org\nPermitRootLogin yes", "newline"),
    ("yoroi_site", "hq\nPermitRootLogin yes", "newline"),
    ("yoroi_timezone", "Asia/Tokyo\n", "newline"),
    ("yoroi_maintenance_window", "Sun\r01:00", "newline"),
    ("yoroi_lab_container", "lab\x1b[2J", "control character"),
    ("yoroi_lab_release", "bookworm\n", "newline"),
    ("yoroi_mfa_deadline", "next friday", "expected form"),
    ("yoroi_serial", "abc", "expected form"),
    ("yoroi_serial", "0", "expected form"),
    ("yoroi_serial", "101%", "expected form"),
    # kernel parameters and modules: each lands in one line of sysctl.d or modprobe.d
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict\nkernel.modules_disabled": 1}, "newline"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict\n": 1}, "newline"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict = 0 #": 1}, "expected form"),
    ("yoroi_kernel_sysctl", {"Kernel.Kptr_Restrict": 1}, "expected form"),
    ("yoroi_kernel_sysctl", {"../../../etc/shadow": 1}, "expected form"),
    ("yoroi_kernel_sysctl", {"net/ipv4/../../../../etc/shadow": 1}, "expected form"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict": "2\nkernel.modules_disabled = 1"}, "newline"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict": "2 # two"}, "expected form"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict": [1, 2]}, "expected form"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict": {"a": 1}}, "expected form"),
    ("yoroi_kernel_sysctl", {"kernel.kptr_restrict": " 2"}, "expected form"),
    ("yoroi_kernel_blocked_modules", ["cramfs", "udf /bin/true"], "expected form"),
    ("yoroi_kernel_blocked_modules", ["cramfs\ninstall ext4 /bin/false"], "newline"),
    ("yoroi_kernel_blocked_modules", ["Cramfs"], "expected form"),
    # permissions and banners: a umask lands in login.defs and a shell line; banners are rewritten
    ("yoroi_permissions_umask", "022\numask 000", "newline"),
    ("yoroi_permissions_umask", "u=rwx,g=rx", "expected form"),
    ("yoroi_permissions_umask", "0287", "expected form"),
    ("yoroi_permissions_banner_paths", ["/etc/issue", "/etc/shadow"], "expected form"),
    ("yoroi_permissions_banner_paths", ["/etc/./issue"], "not normalized"),
    ("yoroi_permissions_banner_text", "Authorized use only\x1b[2J", "control character"),
    ("yoroi_permissions_scan_paths", ["usr"], "expected form"),
    ("yoroi_permissions_skip_paths", ["/var/lib/docker/"], "expected form"),
    ("yoroi_permissions_max_reported", 0, "must be from 1 to 10000"),
    ("yoroi_protected_accounts", ["alice bob"], "whitespace"),
    # audit rules: a watched path and its key land in one "-w PATH -p wa -k KEY" line
    ("yoroi_audit_rules_watches", {"etc/hosts": "hosts"}, "expected form"),
    ("yoroi_audit_rules_watches", {"/etc/../etc/hosts": "hosts"}, "expected form"),
    ("yoroi_audit_rules_watches", {"/etc/hosts -k x -w /etc/y": "hosts"}, "expected form"),
    ("yoroi_audit_rules_watches", {"/etc/hosts\n-e 0": "hosts"}, "newline"),
    ("yoroi_audit_rules_watches", {"/etc/hosts": "two words"}, "expected form"),
    ("yoroi_audit_rules_watches", {"/etc/hosts": "hosts\n-D"}, "newline"),
    ("yoroi_audit_rules_watches", {"/etc/hosts": ""}, "expected form"),
    ("yoroi_audit_rules_privileged_search_paths", ["/usr/"], "expected form"),
    ("yoroi_audit_rules_privileged_search_paths", ["opt"], "expected form"),
    ("yoroi_audit_rules_apt_cache_valid_time", -1, "must be from 0"),
    ("yoroi_assets_privileged_groups", ["sudo", "wheel admin"], "expected form"),
    ("yoroi_assets_privileged_groups", ["sudo\nroot"], "newline"),
    # listening services: allowlist entries and the units handed to systemctl
    ("yoroi_services_allowlist", [{"port": 0}], "expected form"),
    ("yoroi_services_allowlist", [{"port": 70000, "protocol": "tcp"}], "expected form"),
    ("yoroi_services_allowlist", [{"port": 22, "protocol": "sctp"}], "expected form"),
    ("yoroi_services_allowlist", [{"port": 22, "process": "/usr/sbin/sshd"}], "expected form"),
    ("yoroi_services_allowlist", [{"port": 22, "process": "a-process-name-too-long"}], "expected form"),
    ("yoroi_services_stop_unlisted", ["--now"], "expected form"),
    ("yoroi_services_stop_unlisted", ["apache2 cups"], "expected form"),
    ("yoroi_services_stop_unlisted", ["cups\nssh"], "newline"),
    ("yoroi_services_stop_unlisted", ["ssh"], "expected form"),
    ("yoroi_services_stop_unlisted", ["sshd.service"], "expected form"),
    ("yoroi_services_stop_unlisted", ["*.service"], "expected form"),
    # backup: the repository lands in an environment file and a script; paths are read as root
    ("yoroi_backup_repository", "sftp:restic@backup1:/srv/restic repo", "expected form"),
    ("yoroi_backup_repository", "/srv/backup;rm -rf /", "expected form"),
    ("yoroi_backup_repository", "/srv/backup/../etc", "expected form"),
    ("yoroi_backup_repository", "srv/backup", "expected form"),
    ("yoroi_backup_repository", "sftp:restic@backup1:/srv/x\n", "newline"),
    ("yoroi_backup_repository", "s3:https://s3.example/bucket$(id)", "expected form"),
    ("yoroi_backup_password", "pass\nword", "newline"),
    ("yoroi_backup_environment", {"RESTIC_PASSWORD": "hunter2"}, "expected form"),
    ("yoroi_backup_environment", {"AWS_SECRET_ACCESS_KEY": "a\nb"}, "newline"),
    ("yoroi_backup_paths", ["etc"], "expected form"),
    ("yoroi_backup_paths", ["/srv/../etc"], "expected form"),
    ("yoroi_backup_paths", ["/srv/data/"], "expected form"),
    ("yoroi_backup_paths", ["/srv/a\nb"], "newline"),
    ("yoroi_backup_exclude", [" *.tmp"], "expected form"),
    ("yoroi_backup_exclude", ["*.tmp\n/etc"], "newline"),
    ("yoroi_backup_schedule", "daily; rm", "expected form"),
    ("yoroi_backup_schedule", "daily\nExecStart=/bin/sh", "newline"),
    ("yoroi_backup_check_subset", "5", "expected form"),
    ("yoroi_backup_check_subset", "500%", "expected form"),
    ("yoroi_backup_host_keys", ["backup1 ssh-dss AAAAB3NzaC1kc3M="], "expected form"),
    ("yoroi_backup_host_keys", ["backup1 ssh-ed25519 AAAA\nevil ssh-ed25519 AAAA"], "newline"),
    ("yoroi_backup_authorize_on", "backup1 -o ProxyCommand=x", "expected form"),
    ("yoroi_backup_max_age_hours", 0, "must be from 1"),
    ("yoroi_backup_drill_sample_files", -1, "must be from 0"),
    # guard timeouts: 0 (off) or long enough to confirm a change
    ("yoroi_ssh_guard_timeout", 5, "at least 20 seconds"),
    ("yoroi_mfa_guard_timeout", 1, "at least 20 seconds"),
    ("yoroi_password_policy_guard_timeout", 19, "at least 20 seconds"),
    ("yoroi_accounts_guard_timeout", 10, "at least 20 seconds"),
    ("yoroi_ssh_guard_timeout", -1, "must be from 0 to 3600"),
    # only the algorithms the role considers strong
    ("yoroi_ssh_ciphers", ["aes256-gcm@openssh.com", "3des-cbc"], "3des-cbc not among the strong ones"),
    ("yoroi_ssh_macs", ["hmac-md5"], "not among the strong ones"),
    ("yoroi_ssh_kex_algorithms", ["curve25519-sha256", "diffie-hellman-group1-sha1"], "not among the strong ones"),
    ("yoroi_ssh_kex_algorithms", [], "is empty"),
    # access review: the approved lists
    ("yoroi_access_review_privileged_groups", ["sudo", "wheel admins"], "whitespace"),
    ("yoroi_access_review_approved_privileged", {"sudo": ["alice", "ALL"]}, "pam_access keyword"),
    ("yoroi_access_review_approved_privileged", {"sudo*": ["alice"]}, "wildcard"),
    ("yoroi_access_review_approved_keys", {"alice,bob": ["SHA256:" + "A" * 43]}, "separates sshd pattern lists"),
    ("yoroi_access_review_approved_keys", {"alice": ["SHA256:" + "A" * 43 + "="]}, "expected form"),
    ("yoroi_access_review_approved_keys", {"alice": ["MD5:ab:cd"]}, "expected form"),
    ("yoroi_access_review_approved_sudoers", ["alice ALL=(ALL) ALL\n%sudo ALL=(ALL) NOPASSWD: ALL"], "newline"),
    ("yoroi_access_review_approved_sudoers", ["alice"], "expected form"),
    ("yoroi_access_review_scan_paths", ["usr"], "expected form"),
    ("yoroi_access_review_skip_paths", ["/var/lib/docker/"], "expected form"),
    ("yoroi_access_review_approved_suid", ["/usr//local/bin/x"], "expected form"),
    ("yoroi_access_review_approved_world_writable", ["tmp/x"], "expected form"),
    ("yoroi_access_review_min_rsa_bits", 1024, "must be from 2048 to 16384"),
    ("yoroi_access_review_max_reported", 0, "must be from 1 to 10000"),
    ("yoroi_access_review_result", {"findings": []}, "internal to the access_review role"),
    # variables internal to the roles
    ("yoroi_lockout_guard_timeout", 1, "internal to the lockout_guard role"),
    ("yoroi_lockout_guard_token", "x", "internal to the lockout_guard role"),
    ("yoroi_lockout_guard_change", "sshd", "internal to the lockout_guard role"),
    ("yoroi_ssh_result", {"guard_token": "x"}, "internal to the ssh role"),
    ("yoroi_mfa_result", {"guard_token": "x"}, "internal to the mfa role"),
    ("yoroi_lockout_guard_login", {}, "internal to the lockout_guard role"),
    # appliances: versions and names land in findings, one line each
    ("yoroi_appliance_firmware", "7.0.12\n7.2.0", "newline"),
    ("yoroi_appliance_firmware", 7.1, "7.1 is not text; quote it"),
    ("yoroi_appliance_firmware", 17, "17 is not text; quote it"),
    ("yoroi_appliance_vendor", "Kitsune\rNetworks", "newline"),
    ("yoroi_appliance_model", "KN-VPN\x00400", "control character"),
    ("yoroi_appliance_product", "KitsuneOS\n", "newline"),
    ("yoroi_appliance_address", "192.0.2.1\nx", "newline"),
    # the advisory and KEV files, read on the controller (the message names the file)
    ("yoroi_appliances_advisories", "/nonexistent/yoroi/advisories.yml", "/nonexistent/yoroi/advisories.yml: cannot be read"),
    ("yoroi_appliances_advisories", "advisories.yml", "not an absolute path"),
    ("yoroi_appliances_advisories", InputFile("advisories.yml", "advisories: [\n  - id: x\n bad"), "not YAML or JSON"),
    ("yoroi_appliances_advisories", InputFile("advisories.yml", "- id: x\n"), "not a mapping with a list `advisories`"),
    ("yoroi_appliances_advisories", InputFile("advisories.json", json.dumps({"advisories": [
        {"id": "X-1", "vendor": "V", "models": ["M"], "cves": []}]})), "advisories[0]: fixed is missing"),
    ("yoroi_appliances_advisories", InputFile("advisories.yml", yaml.safe_dump({"advisories": [
        {"id": "X-1", "vendor": "V", "models": ["M"], "cves": [], "fixed": {"7.2": "7.4.3"}}]})),
     "advisories[0] (X-1): fixed version '7.4.3' is not on train 7.2"),
    ("yoroi_appliances_kev", InputFile("kev.json", "vulnerabilities: []\n"), "not JSON"),
    ("yoroi_appliances_kev", InputFile("kev.json", json.dumps({"catalogVersion": "2024.11.27"})),
     "not the CISA KEV catalog format"),
    ("yoroi_appliances_kev", InputFile("kev.json", json.dumps({"vulnerabilities": [dict(KEV_ENTRY, dueDate=None)]})),
     "vulnerabilities[0]: needs the strings cveID, vendorProject, product, dueDate"),
    # file integrity: paths land in AIDE rule lines as literals, the schedule in OnCalendar=
    ("yoroi_file_integrity_extra_paths", ["opt/app/bin"], "expected form"),
    ("yoroi_file_integrity_extra_paths", ["/opt/../etc"], "expected form"),
    ("yoroi_file_integrity_extra_paths", ["/opt/app/"], "expected form"),
    ("yoroi_file_integrity_extra_paths", ["/opt/app\n!/etc"], "newline"),
    ("yoroi_file_integrity_extra_paths", ["/opt/app bin"], "expected form"),
    ("yoroi_file_integrity_exclude", ["/var/lib/*"], "expected form"),
    ("yoroi_file_integrity_exclude", ["/etc/ssh.*"], "expected form"),
    ("yoroi_file_integrity_exclude", ["@@include /tmp/x"], "expected form"),
    ("yoroi_file_integrity_exclude", ["/etc//ssh"], "expected form"),
    ("yoroi_file_integrity_exclude", ["/etc/ssh\n/etc"], "newline"),
    ("yoroi_file_integrity_schedule", "daily\nExecStart=/bin/sh", "newline"),
    ("yoroi_file_integrity_schedule", "daily; rm -rf /", "expected form"),
    ("yoroi_file_integrity_schedule", "", "expected form"),
    ("yoroi_file_integrity_timeout", 5, "must be from 60"),
    ("yoroi_file_integrity_max_age_days", 0, "must be from 1"),
    ("yoroi_file_integrity_max_check_age_hours", 0, "must be from 1"),
    ("yoroi_file_integrity_max_reported", 0, "must be from 1"),
    ("yoroi_file_integrity_randomized_delay", -1, "must be from 0"),
    ("yoroi_file_integrity_result", {"findings": []}, "internal to the file_integrity role"),
]

# time servers: each lands in a "server NAME iburst" or "NTP=" line
MALFORMED += [
    ("yoroi_time_sync_servers", ["a b"], "expected form"),
    ("yoroi_time_sync_servers", ["ntp1.example.org", "x\nserver evil"], "newline"),
    ("yoroi_time_sync_servers", ["-x"], "expected form"),
    ("yoroi_time_sync_servers", [""], "expected form"),
    ("yoroi_time_sync_servers", ["ntp.example.org iburst minpoll 0"], "expected form"),
    ("yoroi_time_sync_servers", ['"ntp.example.org"'], "expected form"),
    ("yoroi_time_sync_servers", ["ntp.example.org#"], "expected form"),
    ("yoroi_time_sync_servers", ["ntp_1.example.org"], "expected form"),
    ("yoroi_time_sync_max_offset_ms", 0, "must be from 1 to 3600000"),
    ("yoroi_time_sync_wait", 601, "must be from 0 to 600"),
    ("yoroi_time_sync_result", {"findings": []}, "internal to the time_sync role"),
]
# firmware: remote ids and device ids reach fwupdmgr's command line, the directory a
# remote file's MetadataURI
MALFORMED += [
    ("yoroi_firmware_remotes", ["--force"], "expected form"),
    ("yoroi_firmware_remotes", ["lvfs testing"], "expected form"),
    ("yoroi_firmware_remotes", ["lvfs\nEnabled=true"], "newline"),
    ("yoroi_firmware_exclude", ["Integrated Webcam"], "expected form"),
    ("yoroi_firmware_exclude", ["08d460be0f1f9f12"], "expected form"),
    ("yoroi_firmware_exclude", ["b585990a-003e-5270-89d5-3705a17f9a43\n"], "newline"),
    ("yoroi_firmware_local_dir", "srv/firmware", "expected form"),
    ("yoroi_firmware_local_dir", "/srv/../etc", "expected form"),
    ("yoroi_firmware_local_dir", "/srv/firmware\nEnabled=true", "newline"),
    ("yoroi_firmware_local_dir", "/srv/firm ware", "expected form"),
    ("yoroi_firmware_max_metadata_age_days", 0, "must be from 1 to 3650"),
    ("yoroi_firmware_reboot_timeout", 10, "must be from 60 to 7200"),
    ("yoroi_firmware_result", {"findings": []}, "internal to the firmware role"),
]
GOOD_FIRMWARE = [
    {"yoroi_firmware_remotes": ["lvfs", "fwupd-tests", "site_firmware.v2"],
     "yoroi_firmware_exclude": ["08d460be0f1f9f128413f816022a6439e0078018", "b585990a-003e-5270-89d5-3705a17f9a43"],
     "yoroi_firmware_local_dir": "/srv/firmware", "yoroi_firmware_policy": "apply"},
    {"yoroi_firmware_remotes": [], "yoroi_firmware_local_dir": ""},
]


def test_an_unknown_firmware_policy_is_refused(specs, rules):
    errors = vi.check({"yoroi_firmware_policy": "install"}, specs, rules)
    assert errors == ["yoroi_firmware_policy: value of yoroi_firmware_policy must be one of: report, apply, got: install"], errors


@pytest.mark.parametrize("variables", GOOD_FIRMWARE)
def test_firmware_inputs_that_are_ids_and_paths_pass(specs, rules, variables):
    assert vi.check(variables, specs, rules) == []


# OS patching: the window, the hold list, the health lists, the batches
MALFORMED += [
    ("yoroi_patch_window", "Saturday 02:00-04:00", "expected form"),
    ("yoroi_patch_window", "Sat 2:00-4:00", "expected form"),
    ("yoroi_patch_window", "Sat 25:00-04:00", "expected form"),
    ("yoroi_patch_window", "Sat 02:60-04:00", "expected form"),
    ("yoroi_patch_window", "Sat 02:00 04:00", "expected form"),
    ("yoroi_patch_window", "Sat,Foo 02:00-04:00", "expected form"),
    ("yoroi_patch_window", "Sat 02:00-04:00;", "expected form"),
    ("yoroi_patch_window", "Sat 02:00-04:00\nSun 02:00-04:00", "newline"),
    ("yoroi_patch_window", "always", "expected form"),
    ("yoroi_patch_window", "Sat 02:00-02:00", "expected form"),
    ("yoroi_patch_window", "Sat 01:00-03:00; Sun 12:30-12:30", "expected form"),
    ("yoroi_patch_hold", ["openssl", "-y"], "expected form"),
    ("yoroi_patch_hold", ["Nginx"], "expected form"),
    ("yoroi_patch_hold", ["nginx*"], "expected form"),
    ("yoroi_patch_hold", ["nginx\nsudo"], "newline"),
    ("yoroi_patch_hold", ["a b"], "expected form"),
    ("yoroi_patch_hold", ["nginx", ""], "expected form"),
    ("yoroi_patch_health_services", ["ssh.service; reboot"], "expected form"),
    ("yoroi_patch_health_services", ["--all"], "expected form"),
    ("yoroi_patch_health_ports", ["0"], "expected form"),
    ("yoroi_patch_health_ports", ["65536"], "expected form"),
    ("yoroi_patch_health_ports", ["sctp/22"], "expected form"),
    ("yoroi_patch_health_ports", ["ssh"], "expected form"),
    ("yoroi_patch_serial", "0", "expected form"),
    ("yoroi_patch_serial", "all", "expected form"),
    ("yoroi_patch_first_groups", ["gateways:all"], "expected form"),
    ("yoroi_patch_first_groups", ["!vpn"], "expected form"),
    ("yoroi_patch_max_pending_days", -1, "must be from 0 to 3650"),
    ("yoroi_patch_max_fail_percentage", 101, "must be from 0 to 100"),
    ("yoroi_patch_reboot_timeout", 5, "must be from 30 to 7200"),
    ("yoroi_patching_result", {"findings": []}, "internal to the patching role"),
]
GOOD_PATCH = [
    ("yoroi_patch_window", "Sat 02:00-04:00"),
    ("yoroi_patch_window", "Mon-Fri 22:00-02:00; sat,SUN 00:00-24:00"),
    ("yoroi_patch_window", "Sat 02:00-12:00"),
    ("yoroi_patch_window", ""),
    ("yoroi_patch_hold", ["postgresql-15", "libc6", "g++-12", "linux-image-6.1.0-13-amd64"]),
    ("yoroi_patch_health_ports", ["22", "tcp/443", "udp/53", "65535"]),
    ("yoroi_patch_health_services", ["ssh.service", "nginx", "getty@tty1.service"]),
    ("yoroi_patch_serial", "1"),
    ("yoroi_patch_first_groups", ["gateways", "vpn_hosts"]),
]


def test_an_unknown_patch_policy_is_refused(specs, rules):
    errors = vi.check({"yoroi_patch_upgrade": "everything", "yoroi_patch_unattended": "yes"}, specs, rules)
    assert len(errors) == 2, errors
    assert any("yoroi_patch_upgrade must be one of: security, all" in e for e in errors), errors
    assert any("yoroi_patch_unattended must be one of: report, enabled, disabled" in e for e in errors), errors


@pytest.mark.parametrize("name,value", GOOD_PATCH)
def test_a_sound_patch_input_passes(specs, rules, name, value):
    assert vi.check({name: value}, specs, rules) == []


# log forwarding and the collector: each value lands in an rsyslog action() or input()
MALFORMED += [
    ("yoroi_log_forwarding_collectors", ['log1.example.org" tls="off'], "expected form"),
    ("yoroi_log_forwarding_collectors", ["log1.example.org:2514\naction(type=omfwd)"], "newline"),
    ("yoroi_log_forwarding_collectors", ["log1.example.org 2514"], "expected form"),
    ("yoroi_log_forwarding_collectors", ["log1.example.org:port"], "expected form"),
    ("yoroi_log_forwarding_collectors", ["*.example.org"], "expected form"),
    ("yoroi_log_forwarding_queue_max_disk", "2 GB", "expected form"),
    ("yoroi_log_forwarding_journald_max_use", "1G\nStorage=volatile", "newline"),
    ("yoroi_log_forwarding_journald_retention_days", 0, "must be from 1 to 3650"),
    ("yoroi_log_forwarding_sudo_logfile", "var/log/sudo.log", "absolute"),
    ("yoroi_log_forwarding_result", {"findings": []}, "internal to the log_forwarding role"),
    ("yoroi_log_collector_permitted_peers", ['web1"] tls="off'], "expected form"),
    ("yoroi_log_collector_permitted_peers", ["web1\nweb2"], "newline"),
    ("yoroi_log_collector_port", 0, "must be from 1 to 65535"),
    ("yoroi_log_collector_retention_days", 0, "must be from 1 to 3650"),
]

GOOD_TIME_SERVERS = [["ntp1.head-office.example", "192.0.2.123", "2001:db8::123", "ntp.example.org."], []]


def test_an_unknown_time_daemon_or_clock_control_is_refused(specs, rules):
    errors = vi.check({"yoroi_time_sync_daemon": "ntpd", "yoroi_time_sync_clock_control": "yes"}, specs, rules)
    assert len(errors) == 2, errors
    assert any("yoroi_time_sync_daemon must be one of: chrony, timesyncd" in e for e in errors), errors
    assert any("yoroi_time_sync_clock_control must be one of: auto, set, measure" in e for e in errors), errors


@pytest.mark.parametrize("servers", GOOD_TIME_SERVERS)
def test_time_servers_that_are_names_or_addresses_pass(specs, rules, servers):
    assert vi.check({"yoroi_time_sync_servers": servers}, specs, rules) == []


# incident contacts: lines of the runbook page and of the notification draft
MALFORMED += [
    ("yoroi_incident_contacts", {"external": [{"name": "CSIRT\nTo: attacker@example.org"}]}, "newline"),
    ("yoroi_incident_contacts", {"internal": [{"name": "desk", "phone": "+81\r0"}]}, "newline"),
    ("yoroi_incident_contacts", {"management": [{"role": "CISO"}]}, "missing required arguments: name"),
    ("yoroi_incident_contacts", {"internal": [{"name": "desk", "pager": "1"}]}, "pager"),
    ("yoroi_incident_contacts", {"press": [{"name": "x"}]}, "press"),
    ("yoroi_incident_contacts", {"external": "JPCERT"}, "unable to convert"),
]

MALFORMED += [
    ("yoroi_firewall_management_addresses", ["0.0.0.0/0"], "every address"),
    ("yoroi_firewall_management_addresses", ["::/0"], "every address"),
    ("yoroi_firewall_management_addresses", ["10.0.0.1/8"], "host bits set"),
    ("yoroi_firewall_management_addresses", ["controller.example.org"], "not an IP address"),
    ("yoroi_firewall_management_addresses", ["10.0.0.1 }"], "not an IP address"),
    ("yoroi_firewall_allow", [{"port": 0, "from": ["10.0.0.0/8"]}], "yoroi_firewall_allow[0].port must be from 1 to 65535"),
    ("yoroi_firewall_allow", [{"port": 65536}], "must be from 1 to 65535"),
    ("yoroi_firewall_allow", [{"port": 80, "from": ["0.0.0.0/0"]}], "every address"),
    ("yoroi_firewall_allow", [{"port": 80, "from": ["10.1.2.3/16"]}], "host bits set"),
    ("yoroi_firewall_allow", [{"port": 80, "from": ["10.0.0.0/8; accept"]}], "not an IP address"),
    ("yoroi_firewall_allow", [{"port": 80, "sources": ["10.0.0.0/8"]}], "sources"),
    ("yoroi_firewall_ssh_ports", [0], "yoroi_firewall_ssh_ports[0] must be from 1 to 65535"),
    ("yoroi_firewall_client_address", "any", "expected form"),
    ("yoroi_firewall_client_address", "10.0.0.1\n", "newline"),
    ("yoroi_firewall_log_rate", "5/min", "expected form"),
    ("yoroi_firewall_log_rate", "0/minute", "expected form"),
    ("yoroi_firewall_log_rate", '5/minute log prefix "x"', "expected form"),
    ("yoroi_firewall_guard_timeout", 5, "at least 20"),
    ("yoroi_firewall_result", {"findings": []}, "internal to the firewall role"),
]


@pytest.mark.parametrize("entry,reason", [({"port": 80, "proto": "icmp"}, "proto must be one of: tcp, udp"),
                                          ({"from": ["10.0.0.0/8"]}, "missing required arguments: port")])
def test_a_malformed_allowlist_entry_is_refused_by_its_spec(specs, rules, entry, reason):
    errors = vi.check({"yoroi_firewall_allow": [entry]}, specs, rules)
    assert len(errors) == 1 and reason in errors[0] and "yoroi_firewall_allow" in errors[0], errors


def test_a_site_allowlist_passes(specs, rules):
    allow = [{"port": 443, "proto": "tcp", "from": ["10.20.0.0/16", "2001:db8::/32"]}, {"port": 53, "proto": "udp"},
             {"port": 8080, "from": []}]
    assert vi.check({"yoroi_firewall_allow": allow, "yoroi_firewall_management_addresses": ["192.0.2.10", "2001:db8:10::/64"],
                     "yoroi_firewall_log_rate": "10/second", "yoroi_firewall_ssh_ports": [22, 2222]}, specs, rules) == []


def test_the_table_is_large_and_covers_every_rule_kind(rules):
    assert len(MALFORMED) >= 40
    listed = set(vi._parse_path(path)[0] for kind in vi.RULE_KINDS if kind not in ("ranges", "internal", "controller_ssh")
                 for path in rules[kind])
    assert listed <= set(case[0] for case in MALFORMED)


@pytest.mark.parametrize("name,value,reason", MALFORMED, ids=["%s-%d" % (c[0], i) for i, c in enumerate(MALFORMED)])
def test_a_malformed_input_is_refused_naming_the_variable(specs, rules, tmp_path, name, value, reason):
    if isinstance(value, InputFile):
        value = value.write(tmp_path)
        reason = reason if reason.startswith("/") else "%s: %s" % (value, reason)  # the file is named
    errors = vi.check({name: value}, specs, rules)
    assert errors, "%s=%r passed" % (name, value)
    assert all(error.startswith(name) for error in errors), errors
    assert any(reason in error for error in errors), errors


def role_defaults():
    values = {}
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        values.update(yaml.safe_load(path.read_text()) or {})
    return values


def test_every_role_default_passes(specs, rules):
    values = role_defaults()
    values["yoroi_automation_account"] = "yoroi"  # the default is a template of ansible_user
    assert vi.check(values, specs, rules) == []


def test_the_documented_defaults_equal_the_role_defaults():
    defaults = vi.load_defaults()
    for name, value in role_defaults().items():
        assert defaults[name] == value, name


GOOD = [
    ("yoroi_mfa_exemptions", [{"user": "yoroi", "methods": "publickey", "from": ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]}]),
    ("yoroi_mfa_exemptions", [{"user": "svc.backup", "methods": "publickey,password"}]),
    ("yoroi_accounts_archive_dir", "/var/backups/yoroi/accounts"),
    ("yoroi_accounts_archive_dir", "/var/lib/yoroi-archives"),
    ("yoroi_accounts_archive_dir", "/srv/backups/accounts"),
    ("yoroi_accounts_nologin_shell", "/bin/false"),
    ("yoroi_ssh_banner_path", "/etc/ssh/yoroi-banner"),
    ("yoroi_mfa_enrollment_dir", "~/.local/state/yoroi/mfa"),
    ("yoroi_mfa_enrollment_dir", "/tmp/pytest-of-root/pytest-1/otp0"),
    ("yoroi_ssh_extra_settings", {"AllowUsers": "nobody", "PasswordAuthentication": False, "MaxSessions": 4}),
    ("yoroi_ssh_guard_timeout", 0),
    ("yoroi_ssh_guard_timeout", 20),
    ("yoroi_ssh_kex_algorithms", ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"]),
    ("yoroi_ssh_allow_groups", ["ssh-users", "Domain_Admins", "_ops"]),
    ("yoroi_serial", "25%"),
    ("yoroi_serial", "3"),
    ("yoroi_ssh_banner_text", "Line one\n\tLine two\n"),
    ("yoroi_access_review_approved_sudoers", ["yoroi ALL=(ALL:ALL) NOPASSWD:ALL", "Defaults:backup !authenticate"]),
    ("yoroi_access_review_approved_privileged", {"sudo": ["breakglass", "yoroi"], "adm": []}),
    ("yoroi_access_review_approved_keys", {"yoroi": ["SHA256:dxFD5MecmzYyL7E6hf8KIqsWnEAZ/wA0lQeG+aGMgK8"]}),
    ("yoroi_access_review_scan_paths", ["/"]),
    ("yoroi_permissions_umask", "0077"),
    ("yoroi_permissions_banner_paths", ["/etc/issue", "/etc/issue.net", "/etc/ssh/yoroi-banner"]),
]


def test_an_unknown_appliance_role_is_refused(specs, rules):
    errors = vi.check({"yoroi_appliance_role": "toaster", "yoroi_appliances_internet_facing_roles": ["vpn", "dmz"]},
                      specs, rules)
    assert len(errors) == 2, errors
    assert any("yoroi_appliance_role must be one of: vpn, gateway, firewall" in e and "got: toaster" in e for e in errors)
    assert any("yoroi_appliances_internet_facing_roles must be one or more of" in e and "dmz" in e for e in errors)


def test_the_example_advisories_and_a_kev_excerpt_pass(specs, rules):
    data = Path(__file__).resolve().parents[1] / "data"
    values = {"yoroi_appliances_advisories": str(ROOT / "inventories" / "example" / "advisories.yml"),
              "yoroi_appliances_kev": str(data / "kev_excerpt.json"), "yoroi_appliance_firmware": "9.1.3-h4",
              "yoroi_appliance_role": "vpn"}
    assert vi.check(values, specs, rules) == []
    assert vi.check({"yoroi_appliances_advisories": "", "yoroi_appliances_kev": ""}, specs, rules) == []


@pytest.mark.parametrize("name,value", GOOD)
def test_a_sound_input_passes(specs, rules, name, value):
    assert vi.check({name: value}, specs, rules) == []


def test_the_default_automation_account_is_held_to_the_name_rule():
    assert vi.default_account_errors({}, "ops team") == [
        "yoroi_automation_account (its default, ansible_user): 'ops team' contains whitespace, a newline or NUL"]
    assert vi.default_account_errors({}, "yoroi") == []
    assert vi.default_account_errors({}, None) == []
    # set explicitly, the variable itself is checked by the rules
    assert vi.default_account_errors({"yoroi_automation_account": "yoroi"}, "ops team") == []


# --- the controller's SSH client ------------------------------------------------------------


def supported(release):
    data = recorded()
    prefix = release.upper() + "_Q_"
    return dict((kind, vi.parse_ssh_query(getattr(data, prefix + kind.upper()))) for kind in ("cipher", "mac", "kex"))


def test_a_kex_list_the_controller_cannot_use_is_refused(specs, rules):
    # the trixie host offers mlkem768x25519-sha256; a bookworm controller's OpenSSH 9.2 does not
    values = {"yoroi_ssh_kex_algorithms": ["mlkem768x25519-sha256"]}
    assert vi.check(values, specs, rules, supported("trixie")) == []
    errors = vi.check(values, specs, rules, supported("bookworm"))
    assert len(errors) == 1
    assert errors[0] == (
        "yoroi_ssh_kex_algorithms: the controller's OpenSSH client (ssh -Q kex) supports none of mlkem768x25519-sha256, "
        "so the fresh login that proves the change could not connect; keep one it supports: sntrup761x25519-sha512, "
        "sntrup761x25519-sha512@openssh.com, curve25519-sha256, curve25519-sha256@libssh.org, ecdh-sha2-nistp521, "
        "ecdh-sha2-nistp384, ecdh-sha2-nistp256, diffie-hellman-group18-sha512, diffie-hellman-group16-sha512, "
        "diffie-hellman-group-exchange-sha256, diffie-hellman-group14-sha256")


def test_one_algorithm_the_controller_has_is_enough(specs, rules):
    values = {"yoroi_ssh_kex_algorithms": ["mlkem768x25519-sha256", "curve25519-sha256"],
              "yoroi_ssh_ciphers": ["chacha20-poly1305@openssh.com"], "yoroi_ssh_macs": ["hmac-sha2-256-etm@openssh.com"]}
    assert vi.check(values, specs, rules, supported("bookworm")) == []


def test_ciphers_and_macs_are_compared_too(specs, rules):
    controller = supported("bookworm")
    controller["cipher"] = [c for c in controller["cipher"] if "gcm" not in c]
    controller["mac"] = ["hmac-sha1"]
    errors = vi.check({"yoroi_ssh_ciphers": ["aes256-gcm@openssh.com"], "yoroi_ssh_macs": ["hmac-sha2-512"]},
                      specs, rules, controller)
    assert [e.split(":")[0] for e in errors] == ["yoroi_ssh_ciphers", "yoroi_ssh_macs"]


def test_without_an_ssh_connection_the_controller_is_not_asked(specs, rules):
    assert vi.check({"yoroi_ssh_kex_algorithms": ["mlkem768x25519-sha256"]}, specs, rules, None) == []


class Proc(object):
    def __init__(self, stdout, returncode=0):
        self.stdout, self.returncode = stdout, returncode


def test_ssh_query_is_asked_once_per_run(tmp_path):
    data = recorded()
    calls = []

    def run(argv, **_kwargs):
        calls.append(argv)
        return Proc(getattr(data, "BOOKWORM_Q_" + argv[-1].upper()))

    first = vi.cached_ssh_query("/usr/bin/ssh", str(tmp_path), run)
    second = vi.cached_ssh_query("/usr/bin/ssh", str(tmp_path), run)
    assert first == second == supported("bookworm")
    assert calls == [["/usr/bin/ssh", "-Q", "cipher"], ["/usr/bin/ssh", "-Q", "mac"], ["/usr/bin/ssh", "-Q", "kex"]]


def test_a_client_that_cannot_be_asked_gives_none(tmp_path):
    assert vi.query_ssh("ssh", lambda argv, **kw: Proc("", 255)) is None
    assert vi.cached_ssh_query(str(tmp_path / "no-such-ssh"), str(tmp_path)) is None


class Connection(object):
    def __init__(self, transport, executable=None):
        self.transport, self.executable = transport, executable

    def get_option(self, name):
        assert name == "ssh_executable"
        if self.executable is None:
            raise KeyError(name)
        return self.executable


def test_only_the_ssh_connection_asks_the_client():
    assert vi.ssh_client(Connection("ssh", "/opt/ssh/bin/ssh")) == "/opt/ssh/bin/ssh"
    assert vi.ssh_client(Connection("ssh")) == "ssh"
    assert vi.ssh_client(Connection("local")) is None
    assert vi.ssh_client(Connection("containers.podman.podman")) is None
    assert vi.ssh_client(None) is None


# --- the whole play: stopped before any host task -------------------------------------------

FAKE_SSH = """#!/bin/sh
# ssh -Q as a bookworm controller (OpenSSH 9.2) answers it; anything else fails
[ "$1" = "-Q" ] || exit 255
case "$2" in
  cipher) printf '%s' "$CIPHER" ;; mac) printf '%s' "$MAC" ;; kex) printf '%s' "$KEX" ;;
  *) exit 1 ;;
esac
"""


def playbook(tmp_path, extra, connection="ssh"):
    data = recorded()
    fake = tmp_path / "ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o755)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"unreachable-host": {
        "ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_connection": connection,
        "ansible_ssh_executable": str(fake), "yoroi_break_glass_accounts": ["breakglass"]}}}}))
    env = dict(os.environ, CIPHER=data.BOOKWORM_Q_CIPHER, MAC=data.BOOKWORM_Q_MAC, KEX=data.BOOKWORM_Q_KEX,
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"), ANSIBLE_NOCOLOR="1")
    playbook = ROOT / "playbooks" / "site.yml"
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook), "-i", str(inventory),
         "--check", "-e", json.dumps(extra), "--tags", "no-role-runs"],
        capture_output=True, check=False, text=True, env=env, timeout=300)


def test_the_play_stops_before_any_host_task_naming_the_variable(tmp_path):
    proc = playbook(tmp_path, {"yoroi_mfa_exemptions": [{"user": "ALL", "from": ["10.0.0.0/8"]}]}, connection="local")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "yoroi_mfa_exemptions[0].user: 'ALL' is a pam_access keyword" in out, out
    assert "ok=0" in out and "failed=1" in out, out


def test_the_play_refuses_a_kex_list_the_controller_lacks_over_ssh(tmp_path):
    proc = playbook(tmp_path, {"yoroi_ssh_kex_algorithms": ["mlkem768x25519-sha256"]})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "yoroi_ssh_kex_algorithms: the controller's OpenSSH client (ssh -Q kex) supports none of mlkem768x25519-sha256" in out, out
    # and a list it can use passes, without connecting to the host
    # (the check passes; in check mode the GRD-002 task is deferred to the batch, which
    # runs whatever the tags and then finds the host unreachable: exit 4, not a refusal)
    proc = playbook(tmp_path, {"yoroi_ssh_kex_algorithms": ["mlkem768x25519-sha256", "curve25519-sha256"]})
    out = proc.stdout + proc.stderr
    assert "supports none" not in out, out
    assert proc.returncode in (0, 4), out
    assert "ok=2" in out and "failed=0" in out and "unreachable=1" in out, out


def test_a_secret_is_never_quoted_in_an_error(specs, rules):
    """Options declared no_log (the backup password, credentials) are checked like the
    others, but the message that names the variable never shows the value."""
    errors = vi.check({"yoroi_backup_password": "hunter2\nsecret", "yoroi_backup_environment": {"AWS_SECRET_ACCESS_KEY": "k3y\nx"}},
                      specs, rules)
    assert any(e.startswith("yoroi_backup_password") for e in errors), errors
    assert any(e.startswith("yoroi_backup_environment") for e in errors), errors
    assert not [e for e in errors if "hunter2" in e or "k3y" in e], errors


def test_good_log_forwarding_inputs_pass(specs, rules):
    good = {"yoroi_log_forwarding_collectors": ["log1.branch.example.org:2514", "log2.branch.example.org", "10.0.0.5"],
            "yoroi_log_collector_permitted_peers": ["*.branch.example.org", "web1"],
            "yoroi_log_forwarding_queue_max_disk": "512M", "yoroi_log_forwarding_journald_max_use": "4G"}
    assert vi.check(good, specs, rules) == []
