"""A stand-in for ansible_runner.run: it records what the CLI asked for and replays events."""

from __future__ import annotations

import io
from types import SimpleNamespace

import ansible_runner
import pytest


@pytest.fixture
def fake_runner(monkeypatch):
    """`fake_runner.events` are fed to the event handler; `fake_runner.calls` holds the kwargs."""
    state = SimpleNamespace(calls=[], events=[], rc=0, stdout="")

    def run(**kwargs):
        state.calls.append(kwargs)
        for item in state.events:
            kwargs["event_handler"](item)
        return SimpleNamespace(rc=state.rc, stdout=io.StringIO(state.stdout))

    monkeypatch.setattr(ansible_runner, "run", run)
    return state
