"""The variables shared by every role are declared alike wherever a role declares them.

Ansible has no fragments for role argument specs, and each role keeps its own copy so
that its entry point checks them even outside the site playbook; this test keeps the
copies from drifting apart (type, elements, default).
"""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("yoroi_automation_account", "yoroi_break_glass_accounts", "yoroi_protected_accounts")


def declarations():
    found = {}
    for spec in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        options = yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"]
        defaults_file = spec.parent.parent / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        for name in SHARED:
            if name in options:
                option = options[name]
                found.setdefault(name, {})[spec.parts[-3]] = (
                    option["type"], option.get("elements"), option.get("default"), (defaults or {}).get(name, option.get("default")))
    return found


def test_shared_variables_are_declared_alike_in_every_role():
    found = declarations()
    assert set(found) == set(SHARED)
    for name, by_role in found.items():
        assert len(set(repr(value) for value in by_role.values())) == 1, (name, by_role)
        kind, _elements, default, role_default = next(iter(by_role.values()))
        assert default == role_default, (name, by_role)


def test_every_role_that_changes_access_declares_the_accounts_it_must_keep():
    found = declarations()
    for role in ("accounts", "password_policy", "ssh", "mfa"):
        assert role in found["yoroi_automation_account"] and role in found["yoroi_break_glass_accounts"]
