"""Run a module's main() in-process with given arguments and capture its result.

exit_json / fail_json raise instead of exiting (the community.general pattern), so a test
reads the module's whole result as a dict.
"""

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


@pytest.fixture(autouse=True)
def host_lock(tmp_path, monkeypatch):
    """Every module run that changes something takes the host lock: here, a temp file."""
    path = tmp_path / "host.lock"
    monkeypatch.setattr(_concern, "HOST_LOCK", str(path))
    return path


@pytest.fixture
def run_module(monkeypatch):
    """run_module(module, args, check_mode=False, diff=False) -> (result, failed)."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def run(module, args, check_mode=False, diff=False):
        args = dict(args)
        args["_ansible_check_mode"] = check_mode
        args["_ansible_diff"] = diff
        with patch_module_args(args):
            try:
                module.main()
            except AnsibleExitJson as exc:
                return exc.args[0], False
            except AnsibleFailJson as exc:
                return exc.args[0], True
        raise AssertionError("the module returned without exit_json or fail_json")

    return run
