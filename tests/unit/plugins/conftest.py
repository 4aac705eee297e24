"""Shared by every plugin unit test."""

import pytest


@pytest.fixture(autouse=True)
def guard_host(tmp_path_factory, monkeypatch):
    """Arming a lockout guard installs its boot unit and names the host lock: keep both
    in the test's temp dir, never in this machine's /etc/systemd or /var/lib/yoroi."""
    from ansible_collections.yoroi.baseline.plugins.module_utils import _guard, _lock

    # not tmp_path: tests that list their temp dir must find only their own files there
    base = tmp_path_factory.mktemp("guard-host")
    units = base / "systemd-units"
    units.mkdir()
    monkeypatch.setattr(_guard, "BOOT_UNIT_DIR", str(units))
    monkeypatch.setattr(_lock, "HOST_LOCK", str(base / "host.lock"))
    return {"units": units, "host_lock": base / "host.lock"}
