# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one walk of a directory tree as root, safe against the users who own parts of it.

Walking by path name (os.walk, os.scandir(path)) lets a user who owns a directory on the
way swap a subdirectory for a symlink between the moment the walk saw a directory and
the moment it lists it: the walk then lists whatever the link points to (/root, another
file system, a loop) as if it were under the tree. This walk never names a path twice:
each directory is opened relative to its parent's descriptor with O_NOFOLLOW, and only
if it is still the very directory (device and inode) that the parent's listing showed;
a directory swapped in between is not entered and is reported. It stays on the root's
file system, never follows a symlink, and holds one descriptor per level of depth, not
one per directory waiting to be listed.
"""

from __future__ import annotations

import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _listing(fd):
    """[(name, lstat)] of the directory open at ``fd``; an entry that vanished is left out."""
    found = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                found.append((entry.name, entry.stat(follow_symlinks=False)))
            except OSError:
                continue
    return found


def open_dir(name, dir_fd, seen):
    """A descriptor of directory ``name`` (relative to ``dir_fd``, or a path when it is
    None) if it is still the directory ``seen`` (an lstat result) describes, else None."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    current = os.fstat(fd)
    if (current.st_dev, current.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        return None
    return fd


def walk(top, skip=(), report=None):
    """Yield (path, lstat) for every entry below the directory ``top``, depth first.

    Directories on another file system than ``top`` and those in ``skip`` are yielded but
    not entered; a directory that is no longer the one its parent's listing showed (a
    symlink or another directory swapped in) is yielded as listed and not entered.
    ``report`` (a dict) receives ``other_filesystems`` and ``changed_during_walk``, lists
    of paths. Nothing is yielded when ``top`` is not a directory (or is a symlink).
    """
    report = {} if report is None else report
    mounts = report.setdefault("other_filesystems", [])
    changed = report.setdefault("changed_during_walk", [])
    skip = set(skip)
    try:
        top_stat = os.lstat(top)
    except OSError:
        return
    if not stat.S_ISDIR(top_stat.st_mode):
        return
    fd = open_dir(top, None, top_stat)
    if fd is None:
        changed.append(top)
        return
    try:
        listing = _listing(fd)
    except OSError:
        os.close(fd)
        return
    stack = [(fd, top, iter(listing))]
    try:
        while stack:
            fd, directory, entries = stack[-1]
            item = next(entries, None)
            if item is None:
                stack.pop()
                os.close(fd)
                continue
            name, info = item
            path = os.path.join(directory, name)
            yield path, info
            if not stat.S_ISDIR(info.st_mode):
                continue
            if info.st_dev != top_stat.st_dev:
                mounts.append(path)
                continue
            if path in skip:
                continue
            child = open_dir(name, fd, info)
            if child is None:
                changed.append(path)
                continue
            try:
                listing = _listing(child)
            except OSError:
                os.close(child)
                continue
            stack.append((child, path, iter(listing)))
    finally:
        for fd, _directory, _entries in stack:
            os.close(fd)
