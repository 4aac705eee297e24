"""The shared documentation lives once, in plugins/doc_fragments/concern.py.

Ansible merges DOCUMENTATION fragments but not RETURN: the shared return values are
checked here to be the fragment's text in every module that uses the kit.
"""

import ast
from pathlib import Path

import pytest
import yaml

from ansible_collections.yoroi.baseline.plugins.doc_fragments.concern import ModuleDocFragment

ROOT = Path(__file__).resolve().parents[3]
MODULES = ["stale_accounts", "password_policy", "sshd_hardening", "totp_mfa"]
SHARED = ("automation_account", "break_glass_accounts", "protected_accounts")


def docs(name):
    tree = ast.parse((ROOT / "plugins" / "modules" / ("%s.py" % name)).read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("DOCUMENTATION", "RETURN"):
            found[node.targets[0].id] = yaml.safe_load(node.value.value)
    return found


@pytest.mark.parametrize("name", MODULES)
def test_shared_options_come_from_the_fragment(name):
    doc = docs(name)["DOCUMENTATION"]
    assert "yoroi.baseline.concern" in doc["extends_documentation_fragment"]
    assert "yoroi.baseline.concern.guard" in doc["extends_documentation_fragment"]
    assert [option for option in SHARED if option in doc["options"]] == []
    # the guard option: only its default (or a module's own remark) in the module
    assert set(doc["options"]["guard_timeout"]) <= {"default", "description", "type"}


@pytest.mark.parametrize("name", MODULES)
def test_shared_return_values_are_the_fragment_text(name):
    shared = yaml.safe_load(ModuleDocFragment.RETURN)
    returned = docs(name)["RETURN"]
    assert dict((key, returned.get(key)) for key in shared) == shared
