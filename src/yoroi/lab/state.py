"""Where lab state lives: ``lab/`` under Yoroi's state directory (``$YOROI_STATE_DIR``
> ``$XDG_STATE_HOME/yoroi`` > ``~/.local/state/yoroi``, the same root as saved runs).
One folder per lab name."""

from __future__ import annotations

import os
import re
from pathlib import Path

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def state_root() -> Path:
    if os.environ.get("YOROI_STATE_DIR"):
        return Path(os.environ["YOROI_STATE_DIR"]) / "lab"
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]) / "yoroi" / "lab"
    return Path.home() / ".local" / "state" / "yoroi" / "lab"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError(
            f"invalid lab name {name!r}: use 1-40 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return name
