"""Packages a concern needs: dpkg first, apt only for what is missing, never in check mode."""

import os
import time

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern, _packages


class FakeModule(object):
    def __init__(self, check_mode=False, dpkg_out="", rcs=None):
        self.check_mode = check_mode
        self.params = {}
        self.calls = []
        self.dpkg_out = dpkg_out
        self.rcs = rcs or {}

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name

    def run_command(self, argv, environ_update=None):
        self.calls.append((list(argv), dict(environ_update or {})))
        tool = os.path.basename(argv[0])
        if tool == "dpkg-query":
            return 1 if "not-installed" in self.dpkg_out else 0, self.dpkg_out, ""
        verb = "update" if "update" in argv else "install"
        return self.rcs.get(verb, 0), "", "E: %s broke" % verb if self.rcs.get(verb) else ""

    def fail_json(self, **kwargs):
        raise RuntimeError(kwargs)


def test_parse_status():
    out = "libpam-pwquality installed\nlibpam-google-authenticator not-installed\n"
    assert _packages.parse_status(out) == {"libpam-pwquality": True, "libpam-google-authenticator": False}


def test_installed_package_runs_no_apt(monkeypatch, tmp_path):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    module = FakeModule(dpkg_out="libpam-pwquality installed\n")
    concern = _concern.Concern(module, "password_policy", {"PWD-001": "x"})
    assert concern.install(["libpam-pwquality"]) == []
    assert [os.path.basename(c[0][0]) for c in module.calls] == ["dpkg-query"]
    assert concern.installed == []


def test_missing_package_is_installed_and_the_run_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(_packages, "lists_age", lambda: 10)
    module = FakeModule(dpkg_out="")  # dpkg does not know it at all
    concern = _concern.Concern(module, "mfa", {"MFA-001": "x"})
    assert concern.install(["libpam-google-authenticator"], cache_valid_time=3600) == ["libpam-google-authenticator"]
    argv, env = module.calls[-1]
    assert argv[0].endswith("apt-get") and argv[-3:] == ["install", "--", "libpam-google-authenticator"]
    assert "--no-remove" in argv  # a conflicting package fails the install, never removes sudo or sshd
    assert env["DEBIAN_FRONTEND"] == "noninteractive" and "DPkg::Lock::Timeout=300" in argv
    assert not any("update" in c[0] for c in module.calls)  # lists fresh enough
    result = {}

    def exit_json(**kwargs):
        result.update(kwargs)
    module.exit_json = exit_json
    module._diff = False
    concern.exit([], changed=False)
    assert result["changed"] and result["packages_installed"] == ["libpam-google-authenticator"]


def test_stale_lists_are_updated_first(monkeypatch, tmp_path):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(_packages, "lists_age", lambda: None)
    module = FakeModule(dpkg_out="libpam-pwquality not-installed\n")
    _concern.Concern(module, "password_policy", {}).install(["libpam-pwquality"], cache_valid_time=3600)
    verbs = ["update" if "update" in c[0] else "install" for c in module.calls[1:]]
    assert verbs == ["update", "install"]


def test_check_mode_never_runs_apt_and_says_what_the_apply_would_install():
    """Check mode asks dpkg only; a missing package is a change the apply would make, so
    the audit's plan is the apply's (check-first applies leave out "no change" hosts)."""
    module = FakeModule(check_mode=True, dpkg_out="libpam-pwquality not-installed\n")
    concern = _concern.Concern(module, "password_policy", {})
    assert concern.install(["libpam-pwquality"]) == []
    assert [c[0][0] for c in module.calls] == ["/usr/bin/dpkg-query"]
    result = {}
    module.exit_json = result.update
    module._diff = False
    concern.exit([], changed=False)
    assert result["changed"] and result["packages_to_install"] == ["libpam-pwquality"]
    assert "packages_installed" not in result
    # installed already: no change
    module = FakeModule(check_mode=True, dpkg_out="libpam-pwquality installed\n")
    concern = _concern.Concern(module, "password_policy", {})
    concern.install(["libpam-pwquality"])
    result = {}
    module.exit_json = result.update
    module._diff = False
    concern.exit([], changed=False)
    assert not result["changed"] and "packages_to_install" not in result


def test_a_failed_install_refuses_with_apt_s_words(monkeypatch, tmp_path):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(_packages, "lists_age", lambda: 10)
    module = FakeModule(dpkg_out="", rcs={"install": 100})
    with pytest.raises(RuntimeError) as failed:
        _concern.Concern(module, "password_policy", {"PWD-001": "x"}).install(["libpam-pwquality"])
    info = failed.value.args[0]
    assert "apt-get install libpam-pwquality failed: E: install broke" in info["msg"]
    assert [f["status"] for f in info["findings"]] == ["error"]


def test_lists_age_reads_the_newest_list(tmp_path):
    old = tmp_path / "deb_dists_bookworm_main_binary-amd64_Packages"
    new = tmp_path / "deb_dists_bookworm_InRelease"
    old.write_text("")
    new.write_text("")
    now = time.time()
    os.utime(old, (now - 7200, now - 7200))
    os.utime(new, (now - 60, now - 60))
    assert 59 <= _packages.lists_age(now=now, lists=str(tmp_path)) <= 61
    assert _packages.lists_age(lists=str(tmp_path / "none")) is None


# `apt-get -q -s install -- chrony systemd-timesyncd-` on a bookworm lab host with systemd-timesyncd
APT_SIMULATE_REPLACE = """\
Reading package lists...
Building dependency tree...
Reading state information...
Suggested packages:
  dnsutils networkd-dispatcher
The following packages will be REMOVED:
  systemd-timesyncd
The following NEW packages will be installed:
  chrony
0 upgraded, 1 newly installed, 1 to remove and 15 not upgraded.
Remv systemd-timesyncd [252.39-1~deb12u2]
Inst chrony (4.3-2+deb12u3 Debian:12.15/oldstable [amd64])
Conf chrony (4.3-2+deb12u3 Debian:12.15/oldstable [amd64])
"""


class SimulatingModule(FakeModule):
    def __init__(self, simulated, **kwargs):
        FakeModule.__init__(self, **kwargs)
        self.simulated = simulated

    def run_command(self, argv, environ_update=None):
        if "-s" in argv:
            self.calls.append((list(argv), dict(environ_update or {})))
            return 0, self.simulated, ""
        return FakeModule.run_command(self, argv, environ_update)


def test_a_conflicting_package_is_replaced_and_nothing_else(monkeypatch, tmp_path):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(_packages, "lists_age", lambda: 10)
    assert _packages.removals(APT_SIMULATE_REPLACE) == ["systemd-timesyncd"]
    module = SimulatingModule(APT_SIMULATE_REPLACE, dpkg_out="chrony not-installed\n")
    assert _concern.Concern(module, "time_sync", {}).install(["chrony"], replace=["systemd-timesyncd"]) == ["chrony"]
    simulate, install = [c[0] for c in module.calls[1:]]
    assert "-s" in simulate and simulate[-2:] == ["chrony", "systemd-timesyncd-"]
    assert install[-4:] == ["install", "--", "chrony", "systemd-timesyncd-"] and "--no-remove" not in install


def test_a_replacement_that_would_remove_more_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(_packages, "lists_age", lambda: 10)
    more = APT_SIMULATE_REPLACE.replace("Remv systemd-timesyncd", "Remv dbus [1.14.10-1~deb12u1]\nRemv systemd-timesyncd")
    module = SimulatingModule(more, dpkg_out="")
    with pytest.raises(RuntimeError) as failed:
        _concern.Concern(module, "time_sync", {"TIM-001": "x"}).install(["chrony"], replace=["systemd-timesyncd"])
    assert "installing chrony would also remove dbus: refused" in failed.value.args[0]["msg"]
    assert not [c for c in module.calls if "-y" in c[0]]


def test_without_recommends_only_the_package_is_asked_for(monkeypatch, tmp_path):
    # aide recommends aide-common, which recommends cron, a mailer and a mail server
    monkeypatch.setattr(_concern, "HOST_LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(_packages, "lists_age", lambda: 10)
    module = FakeModule(dpkg_out="")
    concern = _concern.Concern(module, "file_integrity", {"FIM-001": "x"})
    assert concern.install(["aide"], recommends=False) == ["aide"]
    argv = module.calls[-1][0]
    assert argv[-4:] == ["--no-install-recommends", "install", "--", "aide"] and "--no-remove" in argv
    concern.install(["aide"])
    assert "--no-install-recommends" not in module.calls[-1][0]  # the default keeps apt's own
