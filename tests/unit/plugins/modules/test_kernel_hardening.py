"""The kernel_hardening module on a tmp tree: /proc/sys holds the values recorded on a
bookworm lab host, the files start as on the lab image."""

import builtins
import errno
import importlib.util
import os
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import kernel_hardening as mod

RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "test_kernel_recorded.py"


def recorded():
    spec = importlib.util.spec_from_file_location("kernel_recorded", RECORDED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REC = recorded()
MANAGED = ("etc/sysctl.d/60-yoroi.conf", "etc/modprobe.d/yoroi.conf", "etc/security/limits.d/yoroi.conf",
           "etc/systemd/coredump.conf.d/yoroi.conf")


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for path, value in mod.krn.parse_sysctl_a(REC.BOOKWORM_CONTAINER_SYSCTL_A).items():
        target = root / "proc/sys" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value + "\n")
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "etc/sysctl.conf").write_text(REC.BOOKWORM_SYSCTL_CONF)
    os.symlink("../sysctl.conf", root / "etc/sysctl.d/99-sysctl.conf")
    (root / "usr/lib/sysctl.d").mkdir(parents=True)
    (root / "usr/lib/sysctl.d/99-protect-links.conf").write_text(REC.BOOKWORM_PROTECT_LINKS)
    (root / "etc/security/limits.d").mkdir(parents=True)
    monkeypatch.setattr(mod, "ROOT", str(root))
    return root


def refuse_writes(monkeypatch, prefixes):
    """/proc/sys keys under ``prefixes`` are read-only, as in a container."""
    real_open = builtins.open

    def fake_open(path, mode="r", *args, **kwargs):
        if "w" in mode and "/proc/sys/" in str(path) and str(path).split("/proc/sys/", 1)[1].startswith(prefixes):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(mod, "open", fake_open, raising=False)


def read_only_in_podman(tree, monkeypatch, prefixes):
    """A podman container: its marker files, and /proc/sys keys under ``prefixes`` that
    access(2) says are not writable (a read-only mount); a write would fail too."""
    (tree / "run/systemd").mkdir(parents=True)
    (tree / "run/systemd/container").write_text("podman\n")
    (tree / "run/.containerenv").write_text("")
    real_access = os.access

    def access(path, how):
        if "/proc/sys/" in str(path) and str(path).split("/proc/sys/", 1)[1].startswith(prefixes):
            return False
        return real_access(path, how)

    monkeypatch.setattr(mod.os, "access", access)
    refuse_writes(monkeypatch, prefixes)


def snapshot(root):
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[str(path.relative_to(root))] = (path.read_text(), stat.st_mtime_ns, stat.st_mode & 0o7777)
    return found


def statuses(result):
    return dict((item["subject"], item["status"]) for item in result["findings"])


# (name, module args, prefixes of /proc/sys the kernel refuses, {subject: status} after the
# first apply, {subject: status} on the second run where it differs from pass)
CASES = [
    ("defaults", {}, (), {"net.ipv4.conf.all.send_redirects": "fixed", "kernel.kptr_restrict": "fixed",
                          "kernel.randomize_va_space": "fixed", "kernel.yama.ptrace_scope": "skipped",
                          "cramfs": "fixed", "usb-storage": "fixed", "/etc/security/limits.d/yoroi.conf": "fixed"},
     {"kernel.yama.ptrace_scope": "skipped"}),
    # a host whose kernel refuses some writes: the refusal is drift, reported with its reason
    ("refused", {}, ("kernel/", "fs/"), {"net.ipv4.conf.all.send_redirects": "fixed", "kernel.kptr_restrict": "fail",
                                         "fs.protected_regular": "fail", "fs.suid_dumpable": "fixed"},
     {"kernel.kptr_restrict": "fail", "fs.protected_regular": "fail"}),
    # a podman container: /proc/sys is read-only, the kernel is the host's
    ("podman", {}, ("kernel/", "fs/", "net/"), {"net.ipv4.conf.all.send_redirects": "fixed", "kernel.kptr_restrict": "fixed",
                                                "net.ipv4.conf.default.accept_redirects": "fixed"},
     {"net.ipv4.conf.all.send_redirects": "skipped", "kernel.kptr_restrict": "skipped", "fs.protected_regular": "skipped",
      "net.ipv4.conf.all.accept_redirects": "pass"}),
    ("router", {"sysctl": {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.send_redirects": None},
                "ipv6_router_advertisements": True, "block_usb_storage": False, "disable_core_dumps": False},
     (), {"net.ipv4.ip_forward": "fixed", "usb-storage": "skipped", "/etc/security/limits.d/yoroi.conf": "skipped"},
     {"usb-storage": "skipped"}),
]


@pytest.mark.parametrize("name,args,refused,expected,second", CASES, ids=[c[0] for c in CASES])
def test_apply_then_second_run_then_check_mode(tree, run_module, monkeypatch, name, args, refused, expected, second):
    if name == "podman":
        read_only_in_podman(tree, monkeypatch, refused)
    elif refused:
        refuse_writes(monkeypatch, refused)
    before = snapshot(tree)
    # check mode first: drift reported, nothing on disk or in /proc/sys changes
    result, failed = run_module(mod, args, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert snapshot(tree) == before
    assert "fail" in statuses(result).values()
    assert any(d["after_header"] == "/etc/sysctl.d/60-yoroi.conf" for d in result["diff"])

    result, failed = run_module(mod, args, diff=True)
    assert not failed and result["changed"], result
    found = statuses(result)
    for subject, status in expected.items():
        assert found[subject] == status, (subject, [f for f in result["findings"] if f.get("subject") == subject])
    assert "error" not in found.values()
    sysctl_file = (tree / MANAGED[0]).read_text()
    if name == "router":
        assert "net.ipv4.ip_forward = 1" in sysctl_file
        assert "net.ipv4.conf.all.send_redirects" not in sysctl_file and "accept_ra" not in sysctl_file
        assert not (tree / MANAGED[2]).exists() and "usb-storage" not in (tree / MANAGED[1]).read_text()
    else:
        assert "kernel.kptr_restrict = 2" in sysctl_file
        assert (tree / MANAGED[2]).read_text().endswith("* hard core 0\n")
        assert "Storage=none\nProcessSizeMax=0\n" in (tree / MANAGED[3]).read_text()
        assert oct((tree / MANAGED[3]).stat().st_mode & 0o777) == "0o644"
    accept = (tree / "proc/sys/net/ipv4/conf/default/accept_redirects").read_text().strip()
    kptr = (tree / "proc/sys/kernel/kptr_restrict").read_text().strip()
    if name == "podman":
        assert (accept, kptr) == ("1", "0")
        assert result["refused_keys"]["kernel.kptr_restrict"] == "/proc/sys/kernel/kptr_restrict is not writable here"
        evidence = [f for f in result["findings"] if f.get("subject") == "kernel.kptr_restrict"][0]["evidence"]
        assert "in a container (podman) the kernel is the host's" in evidence
    elif refused:
        assert (accept, kptr) == ("0", "0")
        assert result["refused_keys"]["kernel.kptr_restrict"] == "Read-only file system"
    else:
        assert (accept, kptr) == ("0", "2") and result["refused_keys"] == {}

    # second run: nothing changes, no file rewritten (mtimes kept)
    applied = snapshot(tree)
    result2, failed = run_module(mod, args)
    assert not failed and not result2["changed"], result2
    assert snapshot(tree) == applied
    found2 = statuses(result2)
    # only the keys the kernel refuses may still fail
    assert set(v for k, v in found2.items() if k not in second and not (
        name == "refused" and k.startswith(("kernel.", "fs.")))) <= {"pass", "skipped"}
    for subject, status in second.items():
        assert found2[subject] == status

    # check mode after apply: the same verdicts, nothing touched
    result3, _failed = run_module(mod, args, check_mode=True)
    assert snapshot(tree) == applied
    assert statuses(result3) == found2
    assert result3["changed"] == (name == "refused")  # a refused write is drift the audit keeps showing


def test_a_later_sysctl_file_that_wins_at_boot_is_named(tree, run_module):
    (tree / "etc/sysctl.conf").write_text(REC.BOOKWORM_SYSCTL_CONF + "net.ipv4.conf.all.rp_filter=0\n")
    result, failed = run_module(mod, {})
    assert not failed
    item = [f for f in result["findings"] if f.get("subject") == "net.ipv4.conf.all.rp_filter"][0]
    assert item["status"] == "fail" and "/etc/sysctl.d/99-sysctl.conf (/etc/sysctl.conf) sets 0 at boot" in item["evidence"]


def test_a_loaded_module_is_reported(tree, run_module):
    (tree / "proc/modules").write_text(REC.PROC_MODULES)
    result, failed = run_module(mod, {})
    assert not failed
    found = dict((f["subject"], f) for f in result["findings"] if f["control"] in ("KRN-005", "KRN-007"))
    assert found["udf"]["status"] == "fail" and "not unloaded by force" in found["udf"]["evidence"]
    assert found["cramfs"]["status"] == "fixed"
    assert (tree / "proc/modules").read_text() == REC.PROC_MODULES
