"""The one write helper: no rewrite when unchanged, backup first, modes, validation."""

import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.yoroi.baseline.plugins.module_utils import _files


@pytest.fixture
def module(monkeypatch):
    def fail_json(self, msg, **kwargs):
        raise RuntimeError(msg)

    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    with patch_module_args({"_ansible_check_mode": False}):
        yield basic.AnsibleModule(argument_spec={}, supports_check_mode=True)


def test_new_file_gets_the_requested_mode(module, tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "secret.conf"
        changed, backup = _files.write_file(module, str(path), "x\n", mode=0o600)
    finally:
        os.umask(old)
    assert changed and backup is None
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_unchanged_file_is_not_rewritten(module, tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("same\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert _files.write_file(module, str(path), "same\n") == (False, None)
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_changed_file_is_backed_up_and_keeps_its_mode(module, tmp_path):
    path = tmp_path / "b.conf"
    path.write_text("old\n")
    path.chmod(0o640)
    changed, backup = _files.write_file(module, str(path), "new\n", mode=0o644)
    assert changed and open(backup).read() == "old\n"
    assert path.read_text() == "new\n" and oct(path.stat().st_mode & 0o777) == "0o640"


def test_failed_validation_leaves_the_file_and_no_temp(module, tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("good\n")
    with pytest.raises(RuntimeError, match="validation failed"):
        _files.write_file(module, str(path), "bad\n", validate=["/bin/false", "%s"])
    assert path.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.conf"]


def test_check_mode_writes_nothing(tmp_path, monkeypatch):
    with patch_module_args({"_ansible_check_mode": True}):
        module = basic.AnsibleModule(argument_spec={}, supports_check_mode=True)
    path = tmp_path / "d.conf"
    assert _files.write_file(module, str(path), "x\n") == (True, None)
    assert not path.exists()
