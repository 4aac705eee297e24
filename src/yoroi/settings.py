"""Settings, resolved in one order: defaults -> file -> environment -> flags.

Every value remembers where it came from, so an error can say which file, variable or
flag gave the wrong value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml


class SettingsError(ValueError):
    pass


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be 1 or more")
    return number


def _serial(value: Any) -> str:
    text = str(value).strip()
    if text.endswith("%"):
        number = int(text[:-1])
        if not 1 <= number <= 100:
            raise ValueError("a percentage must be from 1% to 100%")
        return text
    return str(_positive_int(text))


def _path(value: Any) -> str:
    return str(Path(os.path.expanduser(str(value))))


def _inventory(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("empty")
    return text if is_host_list(text) else _path(text)


def is_host_list(value: str) -> bool:
    """Ansible's rule (its host_list inventory plugin): a value with a comma that is not
    an existing path is a list of hosts, such as `host1,host2,` or `host1,`."""
    return "," in value and not os.path.exists(os.path.expanduser(value))


def inventory_source(value: str | None) -> str | None:
    """The inventory as `ansible-playbook -i` takes it: a host list as given, a path made
    absolute. A path that does not exist is an error (ansible-runner would otherwise
    take the text for an inventory holding one host of that name)."""
    if value is None or is_host_list(value):
        return value
    if not os.path.exists(value):
        raise SettingsError(
            "inventory %s does not exist (hosts given inline need a comma: host1,host2, or host1,)" % value
        )
    return os.path.abspath(value)


def _text(value: Any) -> str:
    return str(value)


@dataclass(frozen=True)
class Spec:
    name: str
    default: Any
    convert: Callable[[Any], Any]
    help: str


def _default_state_dir() -> str:
    if os.environ.get("XDG_STATE_HOME"):
        return str(Path(os.environ["XDG_STATE_HOME"]) / "yoroi")
    return str(Path.home() / ".local" / "state" / "yoroi")


SPECS = [
    Spec("inventory", None, _inventory,
         "Ansible inventory: a file, a directory or host1,host2,; none means the local machine (audit only)"),
    Spec("forks", 10, _positive_int, "hosts worked on at once"),
    Spec("serial", None, _serial, "rolling batches for apply: a count or a percentage"),
    Spec("state_dir", None, _path, "where runs are kept (default $XDG_STATE_HOME/yoroi)"),
    Spec("output", "text", _text, "what is printed: text or json"),
]
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
CONFIG_NAMES = ("yoroi.yml", ".yoroi.yml")


@dataclass
class Entry:
    value: Any
    source: str


class Settings:
    def __init__(self, entries: dict[str, Entry]):
        self._entries = entries

    def __getattr__(self, name: str) -> Any:
        try:
            return self._entries[name].value
        except KeyError:
            raise AttributeError(name) from None

    def source(self, name: str) -> str:
        return self._entries[name].source

    def items(self):
        return [(spec.name, self._entries[spec.name]) for spec in SPECS]

    @property
    def runs_dir(self) -> Path:
        return Path(self.state_dir) / "runs"


def find_config(explicit: str | None, cwd: Path | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SettingsError("config file %s does not exist" % path)
        return path
    cwd = cwd or Path.cwd()
    for name in CONFIG_NAMES:
        if (cwd / name).is_file():
            return cwd / name
    user = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "yoroi" / "config.yml"
    return user if user.is_file() else None


def resolve(flags: dict[str, Any], config_file: str | None = None, environ=None, cwd=None) -> Settings:
    environ = os.environ if environ is None else environ
    entries = {spec.name: Entry(spec.default, "default") for spec in SPECS}
    entries["state_dir"] = Entry(_default_state_dir(), "default")

    def put(name, raw, source):
        spec = SPEC_BY_NAME[name]
        try:
            entries[name] = Entry(spec.convert(raw), source)
        except (TypeError, ValueError) as exc:
            raise SettingsError("%s from %s: %r is not valid (%s)" % (name, source, raw, exc)) from None

    path = find_config(config_file, cwd)
    if path is not None:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise SettingsError("%s must hold a mapping" % path)
        for key, raw in data.items():
            if key not in SPEC_BY_NAME:
                raise SettingsError("%s: unknown setting %r (known: %s)" % (path, key, ", ".join(SPEC_BY_NAME)))
            put(key, raw, "file %s" % path)
    for spec in SPECS:
        variable = "YOROI_" + spec.name.upper()
        if environ.get(variable):
            put(spec.name, environ[variable], "environment %s" % variable)
    for name, raw in flags.items():
        if raw is not None:
            put(name, raw, "flag --%s" % name.replace("_", "-"))
    if entries["output"].value not in ("text", "json"):
        raise SettingsError("output must be text or json, not %r" % entries["output"].value)
    return Settings(entries)
