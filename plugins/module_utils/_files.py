# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where Yoroi modules write files.

Every write is: compare first (an unchanged file is never rewritten, so its mtime stays),
back up the old file next to it, write a temporary file in the same directory, validate it
when a validator is given, then move it into place atomically.
"""

from __future__ import annotations

import os
import tempfile


class ValidationFailed(RuntimeError):
    """A candidate file failed its validator; nothing was written. The concern kit turns
    it into an ERROR finding per control (``Concern.changing``)."""


def read_text(path, default=None):
    """Return the text of ``path`` or ``default`` when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except FileNotFoundError:
        return default


def file_diff(path, before, after):
    """An Ansible diff entry for one file."""
    return {
        "before_header": path,
        "after_header": path,
        "before": before or "",
        "after": after,
    }


def write_file(module, path, content, mode=0o644, validate=None, backup=True):
    """Write ``content`` to ``path`` unless it is already there.

    Returns ``(changed, backup_path)``. In check mode nothing is written.
    ``validate`` is an argv list with ``%s`` standing for the candidate file; the write is
    refused (ValidationFailed) when it exits non-zero.
    """
    before = read_text(path)
    if before == content:
        return False, None
    if module.check_mode:
        return True, None
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=".yoroi-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        if validate:
            argv = [part.replace("%s", tmp) for part in validate]
            rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
            if rc != 0:
                raise ValidationFailed("refused to write %s: validation failed: %s" % (path, (err or out).strip()))
        backup_path = None
        if backup and before is not None:
            backup_path = module.backup_local(path)
        module.atomic_move(tmp, path)
        tmp = None
        if before is None:
            # atomic_move gives a new file the umask's mode; an existing file keeps its own.
            os.chmod(path, mode)
        return True, backup_path
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def restore_file(module, path, backup_path):
    """Put a backup made by write_file back in place (used by rollbacks)."""
    if backup_path is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".yoroi-", dir=directory)
    os.close(fd)
    module.preserved_copy(backup_path, tmp)
    module.atomic_move(tmp, path)
