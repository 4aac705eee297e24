"""Make the working tree importable as the collection ``yoroi.baseline``.

Unit tests import ``ansible_collections.yoroi.baseline...`` and lab tests run ansible
against this checkout, not against a copy installed earlier: a link tree under ``.dev/``
points the collection name at the repository, and ANSIBLE_COLLECTIONS_PATH puts it first.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_COLLECTIONS = ROOT / ".dev" / "collections"


def _link_collection():
    link = DEV_COLLECTIONS / "ansible_collections" / "yoroi" / "baseline"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(ROOT, target_is_directory=True)
    return link


_link_collection()
sys.path.insert(0, str(DEV_COLLECTIONS))
sys.path.insert(0, str(ROOT / "src"))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(DEV_COLLECTIONS)
