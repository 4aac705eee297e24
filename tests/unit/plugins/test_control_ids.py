"""Every control id a module can emit is in controls/catalog.yml, and each role's
module emits exactly the catalog's controls for that role (DESIGN invariant 4)."""

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.yoroi.baseline.plugins.module_utils import (
    _access_review, _accounts, _appliances, _audit_rules, _backup, _kernel,
    _mfa, _password_policy, _permissions, _services, _sshd,
)
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import change_guard
from ansible_collections.yoroi.baseline.plugins.module_utils import _time_sync
from ansible_collections.yoroi.baseline.plugins.module_utils import _patching
from ansible_collections.yoroi.baseline.plugins.module_utils import _file_integrity
from ansible_collections.yoroi.baseline.plugins.module_utils import _firmware
from ansible_collections.yoroi.baseline.plugins.module_utils import _firewall
from ansible_collections.yoroi.baseline.plugins.module_utils import _log_forwarding
from yoroi import assets

ROOT = Path(__file__).resolve().parents[3]
CATALOG = yaml.safe_load((ROOT / "controls" / "catalog.yml").read_text())["controls"]
# (SHA-256 and the like are algorithm names, not controls)
CONTROL_ID = re.compile(r"\b(?!SHA-)[A-Z]{3}-\d{3}\b")

# role -> (the controls its module declares to the kit, the files of its module and logic)
ROLES = {
    "accounts": (set(_accounts.CONTROLS.values()), ["plugins/module_utils/_wiring/stale_accounts.py", "plugins/module_utils/_accounts.py"]),
    "password_policy": (set(_password_policy.CONTROLS),
                        ["plugins/module_utils/_wiring/password_policy.py", "plugins/module_utils/_password_policy.py"]),
    "ssh": (set(_sshd.CONTROL_KEYS), ["plugins/module_utils/_wiring/sshd_hardening.py", "plugins/module_utils/_sshd.py"]),
    "mfa": (set(_mfa.CONTROLS), ["plugins/module_utils/_wiring/totp_mfa.py", "plugins/module_utils/_mfa.py"]),
    "kernel": (set(_kernel.CONTROLS), ["plugins/module_utils/_wiring/kernel_hardening.py", "plugins/module_utils/_kernel.py"]),
    "permissions": (set(_permissions.CONTROLS), ["plugins/module_utils/_wiring/file_permissions.py", "plugins/module_utils/_permissions.py"]),
    "audit_rules": (set(_audit_rules.CONTROLS), ["plugins/module_utils/_wiring/audit_rules.py", "plugins/module_utils/_audit_rules.py"]),
    "services": (set(_services.CONTROLS), ["plugins/module_utils/_wiring/listening_services.py", "plugins/module_utils/_services.py"]),
    "access_review": (set(_access_review.CONTROLS), ["plugins/module_utils/_wiring/access_review.py", "plugins/module_utils/_access_review.py"]),
    "appliances": (set(_appliances.CONTROLS), ["plugins/action/appliance_advisories.py", "plugins/module_utils/_appliances.py"]),
    # the register's differences are found on the controller; the role only reads (asset_info)
    "assets": (set(assets.CONTROLS.values()), ["src/yoroi/assets.py", "plugins/modules/asset_info.py", "plugins/module_utils/_assets.py"]),
    "backup": (set(_backup.CONTROLS) | set(_backup.DRILL_CONTROLS),
               ["plugins/module_utils/_wiring/restic_backup.py", "plugins/modules/backup_drill.py", "plugins/module_utils/_backup.py"]),
    "time_sync": (set(_time_sync.CONTROLS), ["plugins/module_utils/_wiring/time_sync.py", "plugins/module_utils/_time_sync.py"]),
    "lockout_guard": ({change_guard.CONTROL, change_guard.LEFTOVER_CONTROL},
                      ["plugins/module_utils/_wiring/change_guard.py", "plugins/module_utils/_guard.py"]),
    "file_integrity": (set(_file_integrity.CONTROLS),
                       ["plugins/module_utils/_wiring/file_integrity.py", "plugins/module_utils/_file_integrity.py"]),
    "firmware": (set(_firmware.CONTROLS), ["plugins/module_utils/_wiring/firmware.py", "plugins/module_utils/_firmware.py"]),
    # PAT-007 (health) and PAT-008 (the window, on the controller) are not part of a refusal
    "patching": (set(_patching.CONTROLS) | {_patching.HEALTH_CONTROL, _patching.WINDOW_CONTROL},
                 ["plugins/module_utils/_wiring/patching.py", "plugins/module_utils/_patching.py",
                  "plugins/action/patch_window.py"]),
    "firewall": (set(_firewall.CONTROLS), ["plugins/module_utils/_wiring/firewall.py", "plugins/module_utils/_firewall.py"]),
    # one logic and one wiring serve both roles: each module's documentation names its own
    "log_forwarding": (set(_log_forwarding.CLIENT_CONTROLS), ["plugins/modules/log_forwarding.py"]),
    "log_collector": (set(_log_forwarding.COLLECTOR_CONTROLS), ["plugins/modules/log_collector.py"]),
}


def catalog_ids(role=None):
    return set(c["id"] for c in CATALOG if role is None or c["role"] == role)


def test_catalog_ids_are_unique_and_every_role_is_covered():
    ids = [c["id"] for c in CATALOG]
    assert len(ids) == len(set(ids))
    assert set(c["role"] for c in CATALOG) == set(ROLES)
    assert all((ROOT / "roles" / role).is_dir() for role in ROLES)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_emits_the_catalog_controls_for_it(role):
    declared, _files = ROLES[role]
    assert declared == catalog_ids(role)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_id_in_a_module_is_in_the_catalog(role):
    _declared, files = ROLES[role]
    found = set()
    for name in files:
        found |= set(CONTROL_ID.findall((ROOT / name).read_text()))
    # a module names its own controls, and GRD-001 when it arms the guard
    assert found - catalog_ids() == set()
    assert found - catalog_ids(role) <= {"GRD-001"}


def test_no_other_module_or_logic_names_an_unknown_control():
    found = set()
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        found |= set(CONTROL_ID.findall(path.read_text()))
    assert found - catalog_ids() == set()
