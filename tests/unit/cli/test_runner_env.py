"""The environment ansible-playbook is started with, whatever the caller's PATH."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from yoroi import runner


def _started_path(call: dict) -> str:
    # ansible-runner starts ansible-playbook with os.environ updated by envvars
    return call["envvars"].get("PATH", os.environ.get("PATH", os.defpath))


def test_ansible_playbook_is_found_beside_this_python_with_a_plain_path(fake_runner, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    runner.run(runner.RunRequest(mode="audit", inventory=None))
    path = _started_path(fake_runner.calls[0])
    found = shutil.which("ansible-playbook", path=path)
    assert found is not None, path
    # the program installed with this Python's ansible-core, not another one on the system
    assert Path(found).read_text().splitlines()[0] == "#!" + sys.executable
    # the caller's PATH follows, so ssh and the other programs the run starts are found
    assert path.split(os.pathsep)[-2:] == ["/usr/bin", "/bin"]
    assert shutil.which("ssh", path=path) == shutil.which("ssh", path="/usr/bin:/bin")


def test_ansible_bin_dir_holds_every_ansible_program():
    directory = Path(runner.ansible_bin_dir())
    for program in ("ansible-playbook", "ansible-config", "ansible-galaxy"):
        assert os.access(directory / program, os.X_OK), program


def test_no_path_in_the_environment_still_finds_system_programs(fake_runner, monkeypatch):
    monkeypatch.delenv("PATH")
    runner.run(runner.RunRequest(mode="audit", inventory=None))
    path = _started_path(fake_runner.calls[0])
    assert shutil.which("ansible-playbook", path=path)
    assert set(os.defpath.split(os.pathsep)) - {""} <= set(path.split(os.pathsep))
