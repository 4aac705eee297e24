"""Kernel hardening logic (_kernel.py) on reads recorded on a bookworm lab host."""

import errno
import importlib.util
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _kernel as krn


def recorded():
    path = Path(__file__).resolve().parent / "test_kernel_recorded.py"
    spec = importlib.util.spec_from_file_location("kernel_recorded", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REC = recorded()
RUNTIME = krn.parse_sysctl_a(REC.BOOKWORM_CONTAINER_SYSCTL_A)


def by_subject(findings):
    return dict((item["subject"], item) for item in findings)


def test_recorded_sysctl_a_parses_to_proc_sys_paths():
    assert RUNTIME["net/ipv4/conf/all/send_redirects"] == "1"
    assert RUNTIME["kernel/randomize_va_space"] == "2"
    # a multi-value key: tabs become one space, as /proc/sys reads are normalized
    assert RUNTIME["net/ipv4/tcp_rmem"] == "4096 131072 33554432"
    # no Yama in this kernel
    assert "kernel/yama/ptrace_scope" not in RUNTIME


@pytest.mark.parametrize("key,path", [
    ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
    ("net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
    ("-kernel.dmesg_restrict", "kernel/dmesg_restrict"),
    (" fs.suid_dumpable ", "fs/suid_dumpable"),
])
def test_key_path(key, path):
    assert krn.key_path(key) == path


# (overrides, ipv6 RAs accepted, {path: (value, control)} expected, paths that must be absent)
WANTED_CASES = [
    ({}, False, {"net/ipv4/conf/all/rp_filter": ("1", "KRN-001"), "net/ipv6/conf/all/accept_ra": ("0", "KRN-002"),
                 "kernel/kptr_restrict": ("2", "KRN-003"), "kernel/randomize_va_space": ("2", "KRN-004"),
                 "fs/suid_dumpable": ("0", "KRN-008")}, []),
    ({}, True, {}, ["net/ipv6/conf/all/accept_ra", "net/ipv6/conf/default/accept_ra"]),
    # a router: forwarding on, redirects it sends are its business
    ({"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.send_redirects": None}, False,
     {"net/ipv4/ip_forward": ("1", "KRN-001")}, ["net/ipv4/conf/all/send_redirects"]),
    # a site value of a default keeps its control; a bool is 1/0; a kernel key is KRN-003
    ({"kernel/kptr_restrict": 1, "kernel.panic_on_oops": True}, False,
     {"kernel/kptr_restrict": ("1", "KRN-003"), "kernel/panic_on_oops": ("1", "KRN-003")}, []),
    ({"kernel.yama.ptrace_scope": None, "fs.suid_dumpable": None}, False, {},
     ["kernel/yama/ptrace_scope", "fs/suid_dumpable"]),
]


@pytest.mark.parametrize("overrides,accept_ra,expected,absent", WANTED_CASES)
def test_wanted_sysctl_merges_the_site_over_the_defaults(overrides, accept_ra, expected, absent):
    wanted = krn.wanted_sysctl(overrides, accept_ra)
    for path, (value, control) in expected.items():
        assert wanted[path][1:] == (value, control)
    for path in absent:
        assert path not in wanted
    assert krn.wanted_sysctl({"kernel.kptr_restrict": 1})["kernel/kptr_restrict"][0] == "kernel.kptr_restrict"


def test_rendered_file_parses_back_to_the_wanted_values():
    wanted = krn.wanted_sysctl({"net.ipv4.ip_forward": 1})
    parsed = krn.parse_sysctl_conf(krn.render_sysctl(wanted))
    assert dict((p, v) for p, (_k, v) in parsed.items()) == dict((p, v) for p, (_k, v, _c) in wanted.items())


def test_boot_overrides_name_the_later_file_that_wins():
    wanted = krn.wanted_sysctl()
    debian = [("/usr/lib/sysctl.d/99-protect-links.conf", REC.BOOKWORM_PROTECT_LINKS),
              ("/etc/sysctl.conf", REC.BOOKWORM_SYSCTL_CONF)]
    # the defaults agree with what Debian reads after them (found on a lab host: fifos 2 lost to 1)
    assert krn.boot_overrides(wanted, debian) == {}
    assert krn.boot_overrides(krn.wanted_sysctl({"fs.protected_fifos": 2}), debian) == {
        "fs/protected_fifos": ("/usr/lib/sysctl.d/99-protect-links.conf", "1")}
    later = [("/etc/sysctl.d/70-router.conf", "net.ipv4.conf.all.send_redirects = 1\nkernel.kptr_restrict=2\n"),
             ("/etc/sysctl.conf", "net.ipv4.conf.all.rp_filter=2\n")]
    assert krn.boot_overrides(wanted, later) == {
        "net/ipv4/conf/all/send_redirects": ("/etc/sysctl.d/70-router.conf", "1"),
        "net/ipv4/conf/all/rp_filter": ("/etc/sysctl.conf", "2"),
    }


def run_plan(files, runtime, wanted=None, modules=None, check_mode=False, refuse=(), loaded=frozenset()):
    """Plan, 'apply' on dicts (files written, /proc/sys writes accepted unless refused),
    and return (plan, findings, new files, new runtime)."""
    wanted = wanted or krn.wanted_sysctl()
    modules, allowed = modules or krn.wanted_modules()
    plan = krn.plan(wanted, modules, True, files, runtime)
    after_files, after_runtime, errors = dict(files), dict(runtime), {}
    after_files.update((path, text) for path, (_b, text) in plan.files.items())
    for path, value in plan.runtime:
        if path in refuse:
            errors[path] = (errno.EROFS, "Read-only file system")
        else:
            after_runtime[path] = value  # accepted (or, in check mode, planned)
    if check_mode:
        errors = {}
    findings = krn.sysctl_findings(wanted, krn.parse_sysctl_conf(files.get(krn.SYSCTL_FILE)),
                                   krn.parse_sysctl_conf(after_files.get(krn.SYSCTL_FILE)), runtime, after_runtime, {},
                                   errors, check_mode)
    findings += krn.module_findings(modules, allowed, krn.parse_modprobe(files.get(krn.MODPROBE_FILE)),
                                    krn.parse_modprobe(after_files.get(krn.MODPROBE_FILE)), loaded, check_mode,
                                    krn.MODPROBE_FILE in plan.files)
    findings += krn.core_dump_findings(True, files, after_files, check_mode)
    return plan, findings, (files if check_mode else after_files), (runtime if check_mode else after_runtime)


def test_recorded_host_first_run_fixes_second_run_changes_nothing():
    plan, findings, files, runtime = run_plan({}, RUNTIME)
    assert set(plan.files) == {krn.SYSCTL_FILE, krn.MODPROBE_FILE, krn.LIMITS_FILE, krn.COREDUMP_FILE}
    assert ("net/ipv4/conf/all/send_redirects", "0") in plan.runtime
    assert ("kernel/randomize_va_space", "2") not in plan.runtime  # already 2
    found = by_subject(findings)
    assert found["net.ipv4.conf.all.send_redirects"]["status"] == "fixed"
    assert found["kernel.yama.ptrace_scope"]["status"] == "skipped"
    assert "no /proc/sys/kernel/yama/ptrace_scope" in found["kernel.yama.ptrace_scope"]["evidence"]
    assert found["cramfs"]["status"] == "fixed" and found[krn.LIMITS_FILE]["status"] == "fixed"
    assert set(item["status"] for item in findings) == {"fixed", "skipped"}

    plan2, findings2, _f, _r = run_plan(files, runtime)
    assert not plan2
    assert set(item["status"] for item in findings2) == {"pass", "skipped"}


def test_check_mode_reports_drift_and_plans_without_changing():
    plan, findings, files, runtime = run_plan({}, RUNTIME, check_mode=True)
    assert plan and files == {} and runtime == RUNTIME
    found = by_subject(findings)
    assert found["net.ipv4.conf.all.send_redirects"]["status"] == "fail"
    # the audit's words say what would happen, not what did
    assert found["net.ipv4.conf.all.send_redirects"]["evidence"] == (
        "would be written to /etc/sysctl.d/60-yoroi.conf; running value 1 (would be set to 0)")
    assert found["net.ipv4.conf.all.send_redirects"]["actual"] == "net.ipv4.conf.all.send_redirects = 1"
    assert found["udf"]["status"] == "fail" and found["udf"]["actual"] == "loadable"
    assert found["udf"]["evidence"] == "would be blocked in /etc/modprobe.d/yoroi.conf; not loaded"
    assert found[krn.LIMITS_FILE]["actual"] == "missing or different"
    assert found["kernel.yama.ptrace_scope"]["status"] == "skipped"


def test_a_refused_write_is_a_finding_with_the_reason_not_an_error():
    refuse = {"kernel/kptr_restrict", "net/ipv4/conf/all/send_redirects"}
    plan, findings, files, runtime = run_plan({}, RUNTIME, refuse=refuse)
    found = by_subject(findings)
    for key in ("kernel.kptr_restrict", "net.ipv4.conf.all.send_redirects"):
        assert found[key]["status"] == "fail", found[key]
        assert "does not let it be set here (Read-only file system)" in found[key]["evidence"]
        assert "written to /etc/sysctl.d/60-yoroi.conf" in found[key]["evidence"]
    assert found["kernel.kptr_restrict"]["actual"] == "kernel.kptr_restrict = 0"
    assert "error" not in set(item["status"] for item in findings)
    # the second run: files in place, the kernel still refuses; still reported, nothing written
    plan2, findings2, _f, _r = run_plan(files, runtime, refuse=refuse)
    assert not plan2.files and sorted(path for path, _v in plan2.runtime) == sorted(refuse)
    assert by_subject(findings2)["kernel.kptr_restrict"]["status"] == "fail"


def test_another_write_failure_is_an_error():
    wanted = krn.wanted_sysctl()
    findings = krn.sysctl_findings(wanted, {}, krn.parse_sysctl_conf(krn.render_sysctl(wanted)), RUNTIME, RUNTIME, {},
                                   {"kernel/kptr_restrict": (errno.EINVAL, "Invalid argument")}, False)
    item = by_subject(findings)["kernel.kptr_restrict"]
    assert item["status"] == "error" and "failed: Invalid argument" in item["evidence"]


def test_a_key_overridden_at_boot_fails_naming_the_file():
    wanted = krn.wanted_sysctl()
    conf = krn.parse_sysctl_conf(krn.render_sysctl(wanted))
    runtime = dict(RUNTIME, **{"net/ipv4/conf/all/rp_filter": "1"})
    findings = krn.sysctl_findings(wanted, conf, conf, runtime, runtime,
                                   {"net/ipv4/conf/all/rp_filter": ("/etc/sysctl.conf", "0")}, {}, False)
    item = by_subject(findings)["net.ipv4.conf.all.rp_filter"]
    assert item["status"] == "fail" and "/etc/sysctl.conf sets 0 at boot" in item["evidence"]


def test_a_loaded_module_is_reported_and_not_unloaded():
    loaded = krn.parse_proc_modules(REC.PROC_MODULES)
    assert {"udf", "usb_storage"} <= loaded
    plan, findings, files, _r = run_plan({}, RUNTIME, loaded=loaded)
    found = by_subject(findings)
    for name in ("udf", "usb-storage"):
        assert found[name]["status"] == "fail"
        assert found[name]["actual"] == "loaded now; cannot be loaded"
        assert "not unloaded by force" in found[name]["evidence"]
    assert found["cramfs"]["status"] == "fixed"
    assert "install usb-storage /bin/false" in files[krn.MODPROBE_FILE]
    # no /proc/modules: a kernel without loadable modules
    assert krn.parse_proc_modules(None) is None
    _p, findings, _f, _r = run_plan({}, RUNTIME, loaded=None)
    assert "no loadable modules" in by_subject(findings)["cramfs"]["evidence"]


def test_modules_by_policy():
    modules, allowed = krn.wanted_modules(["cramfs", "sctp", "squashfs"], block_usb_storage=False, block_firewire=True)
    assert modules == {"cramfs": "KRN-005", "sctp": "KRN-006", "squashfs": "KRN-005", "firewire-core": "KRN-007"}
    assert allowed == {"usb-storage": "KRN-007"}
    findings = krn.module_findings(modules, allowed, {}, {}, frozenset(), True, False)
    assert by_subject(findings)["usb-storage"]["status"] == "skipped"
    # listed by the site as well: blocked once, under KRN-007, whatever the switch
    modules, allowed = krn.wanted_modules(["usb_storage", "cramfs"], block_usb_storage=False)
    assert modules == {"usb_storage": "KRN-007", "cramfs": "KRN-005", "firewire-core": "KRN-007"} and allowed == {}
    # another file that already blocks a module counts; '-' and '_' are one name
    assert krn.parse_modprobe("install usb_storage /bin/true\nblacklist usb-storage\n")["usb_storage"] == {"install", "blacklist"}


def test_core_dumps_allowed_by_policy_are_skipped_and_not_written():
    plan = krn.plan(krn.wanted_sysctl(), krn.wanted_modules()[0], False, {}, {})
    assert krn.LIMITS_FILE not in plan.files and krn.COREDUMP_FILE not in plan.files
    findings = krn.core_dump_findings(False, {}, {}, False)
    assert [item["status"] for item in findings] == ["skipped", "skipped"]


def test_every_control_is_reachable():
    _p, findings, _f, _r = run_plan({}, RUNTIME)
    assert set(item["control"] for item in findings) == set(krn.CONTROLS)


def test_a_read_only_proc_sys_is_known_before_any_write():
    wanted = krn.wanted_sysctl()
    writable = set(path for path in RUNTIME if path.startswith("net/"))
    changes, blocked = krn.runtime_changes(wanted, RUNTIME, writable)
    assert ("net/ipv4/conf/all/send_redirects", "0") in changes
    assert blocked["kernel/kptr_restrict"][0] == errno.EROFS and not any(p.startswith("kernel/") for p, _v in changes)
    assert krn.runtime_changes(wanted, RUNTIME)[1] == {}


@pytest.mark.parametrize("systemd,containerenv,dockerenv,name", [
    ("podman\n", True, False, "podman"), (None, True, False, "podman"), ("", False, True, "docker"),
    ("lxc", False, False, "lxc"), (None, False, False, None)])
def test_container_name(systemd, containerenv, dockerenv, name):
    assert krn.container_name(systemd, containerenv, dockerenv) == name


def test_in_a_container_an_unsettable_key_is_judged_on_the_file_then_skipped():
    wanted = krn.wanted_sysctl()
    conf = krn.parse_sysctl_conf(krn.render_sysctl(wanted))
    blocked = krn.runtime_changes(wanted, RUNTIME, set())[1]
    audit = by_subject(krn.sysctl_findings(wanted, {}, conf, RUNTIME, RUNTIME, {}, blocked, True, "podman"))
    apply = by_subject(krn.sysctl_findings(wanted, {}, conf, RUNTIME, RUNTIME, {}, blocked, False, "podman"))
    again = by_subject(krn.sysctl_findings(wanted, conf, conf, RUNTIME, RUNTIME, {}, blocked, False, "podman"))
    key = "kernel.kptr_restrict"
    assert (audit[key]["status"], apply[key]["status"], again[key]["status"]) == ("fail", "fixed", "skipped")
    assert again[key]["actual"] == "kernel.kptr_restrict = 0"
    # the same refusal outside a container stays a failure
    host = by_subject(krn.sysctl_findings(wanted, conf, conf, RUNTIME, RUNTIME, {}, blocked, False, None))
    assert host[key]["status"] == "fail"


@pytest.mark.parametrize("sysctl, modules", [
    ({"../../../etc/shadow": 1}, []),
    ({"net/ipv4/../../../../etc/shadow": 1}, []),
    ({"kernel.a\nkernel.modules_disabled": 1}, []),
    ({"kernel.kptr_restrict": "2\nkernel.modules_disabled = 1"}, []),
    ({"kernel.kptr_restrict\n": 1}, []),
    ({}, ["usb-storage /bin/sh -c 'id'; true"]),
    ({}, ["cramfs\n"]),
])
def test_the_module_refuses_keys_values_and_names_that_leave_their_place(sysctl, modules):
    """The controller checks these first; the module, run on its own, refuses them too:
    a key is a path read and written as root, a name a word in modprobe.d."""
    with pytest.raises(ValueError):
        krn.check_inputs(sysctl, modules)


def test_real_keys_and_names_pass_the_module_check():
    krn.check_inputs({"net.ipv4.conf.all.rp_filter": 1, "net/ipv4/conf/eth0.100/rp_filter": 1,
                      "kernel.yama.ptrace_scope": 1}, ["usb-storage", "firewire_core", "cramfs"])
