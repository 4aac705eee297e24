"""Where the collection yoroi.baseline is, and its control catalog."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import yaml


class CollectionNotFound(RuntimeError):
    pass


def _base() -> Path:
    """The first sys.path entry whose ansible_collections holds yoroi.baseline.

    An installed wheel puts it in site-packages; the test suite puts a link to the
    working tree first on sys.path.
    """
    for entry in sys.path:
        base = Path(entry or ".")
        if (base / "ansible_collections" / "yoroi" / "baseline" / "galaxy.yml").is_file():
            return base
    raise CollectionNotFound(
        "the collection yoroi.baseline is not installed: run `pip install .` in the Yoroi checkout"
    )


def collection_root() -> Path:
    """The directory of yoroi.baseline (a link to a working tree resolved)."""
    return (_base() / "ansible_collections" / "yoroi" / "baseline").resolve()


def collections_path() -> str:
    """The value for ANSIBLE_COLLECTIONS_PATH that finds this same copy of the collection
    (the directory holding ansible_collections, not resolved through the link)."""
    return str(_base().resolve())


def playbook(name: str) -> Path:
    path = collection_root() / "playbooks" / ("%s.yml" % name)
    if not path.is_file():
        raise CollectionNotFound("no playbook %s in the collection" % name)
    return path


@lru_cache(maxsize=1)
def _catalog_file() -> dict:
    with open(collection_root() / "controls" / "catalog.yml") as handle:
        return yaml.safe_load(handle)


def catalog() -> dict:
    """{control id: control} from controls/catalog.yml."""
    return {control["id"]: control for control in _catalog_file()["controls"]}


def seed_items() -> dict:
    """{seed item id: name} (1.1 Authentication, ...) from controls/catalog.yml."""
    return {str(key): name for key, name in _catalog_file()["seed_items"].items()}


@lru_cache(maxsize=1)
def concerns() -> list:
    """The roles the baseline (playbooks/site.yml) runs, in order; each is tagged with
    its name, so these are the values `--tags` takes."""
    with open(playbook("site")) as handle:
        plays = yaml.safe_load(handle)
    return [name.rsplit(".", 1)[-1] for play in plays for name in play_roles(play)]


IMPORT_ROLE = ("ansible.builtin.import_role", "import_role", "ansible.builtin.include_role", "include_role")


def play_roles(play: dict) -> list:
    """The roles a play runs, in order: its `roles:` list, then the roles its tasks
    import or include."""
    names = [entry["role"] if isinstance(entry, dict) else str(entry) for entry in play.get("roles") or []]
    for task in play.get("tasks") or []:
        for key in IMPORT_ROLE:
            if isinstance(task.get(key), dict):
                names.append(task[key]["name"])
    return names
