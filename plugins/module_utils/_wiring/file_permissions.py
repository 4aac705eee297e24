# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.file_permissions: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/file_permissions.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import errno
import glob
import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _walk
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils import _permissions as prm

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = FILE_FLAGS | os.O_DIRECTORY


def host(path):
    return ROOT + path


def lstat_info(path):
    try:
        return prm.info_of(os.lstat(host(path)))
    except (FileNotFoundError, NotADirectoryError):
        return None


def expand(pattern):
    return [path[len(ROOT):] for path in glob.glob(host(pattern))]


def change_mode(path, info, chmod, chown):
    """chmod/chown ``path`` through an fd that did not follow a symlink and is the inode
    lstat saw: a link planted after the read (a home is its owner's) is never followed."""
    fd = os.open(host(path), DIR_FLAGS if info.kind == "directory" else FILE_FLAGS)
    try:
        opened = prm.info_of(os.fstat(fd))
        if opened.kind != info.kind or (opened.uid, opened.gid, opened.mode) != (info.uid, info.gid, info.mode):
            raise OSError(errno.ESTALE, "changed since it was read")
        if chown:
            os.fchown(fd, chown[0], chown[1])
        if chmod is not None:
            # fchown drops setuid/setgid bits: set the mode after it
            os.fchmod(fd, chmod)
    finally:
        os.close(fd)


def walk_unowned(roots, skip, uids, gids, limit):
    """([(path, why)] up to ``limit``, how many more): the kit's walk (no symlink
    followed, no directory swapped in mid-walk entered), each root on its own filesystem."""
    found, more = [], 0
    skip = set(host(path) for path in skip)
    for root in sorted(set(roots)):
        top = host(root)
        try:
            info = os.lstat(top)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            continue
        for path, entry in _walk.walk(top, skip):
            for item in prm.unowned([(path[len(ROOT):], entry.st_uid, entry.st_gid)], uids, gids):
                if len(found) < limit:
                    found.append(item)
                else:
                    more += 1
    return found, more


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            umask=dict(type="str", default=prm.DEFAULT_UMASK),
            banner_text=dict(type="str", default="Authorized use only. Activity on this system is logged and monitored.\n"
                                                 "Report security incidents to: {contact}\n"),
            contact=dict(type="str", default=""),
            banner_paths=dict(type="list", elements="path", default=list(prm.BANNER_FILES)),
            scan_paths=dict(type="list", elements="path",
                            default=["/bin", "/boot", "/etc", "/lib", "/lib64", "/opt", "/root", "/sbin", "/srv", "/usr", "/var"]),
            skip_paths=dict(type="list", elements="path",
                            default=["/var/lib/docker", "/var/lib/containers", "/var/lib/lxd", "/var/lib/lxc"]),
            max_reported=dict(type="int", default=50),
        )),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "file_permissions", prm.CONTROLS, change="file permissions")
    if prm.umask_value(params["umask"]) is None:
        concern.refuse("umask %r is not an octal mode" % params["umask"])

    # read
    accounts = _hostfiles.parse_passwd(_files.read_text(host(_hostfiles.PASSWD)))
    group_rows = _hostfiles.parse_group(_files.read_text(host(_hostfiles.GROUP)))
    login_defs = _files.read_text(host(prm.LOGIN_DEFS))
    uids = dict((a.name, a.uid) for a in reversed(accounts))
    gids = dict((name, gid) for name, gid, _m in reversed(group_rows))
    names = dict((uid, name) for name, uid in uids.items())
    groups = dict((gid, name) for name, gid in gids.items())
    uid_min = _hostfiles.uid_range(_hostfiles.parse_login_defs(login_defs))[0]
    targets = prm.sensitive_targets(expand) + prm.home_targets(accounts, uid_min, concern.protected)
    before = dict((t.path, lstat_info(t.path)) for t in targets)
    texts = dict((path, _files.read_text(host(path))) for path in [prm.LOGIN_DEFS, prm.PROFILE_FILE] + params["banner_paths"])
    unowned, more = walk_unowned(params["scan_paths"], params["skip_paths"], set(names), set(groups),
                                 max(params["max_reported"], 0))

    # plan
    changes = []
    for target in targets:
        _problems, chmod, chown = prm.evaluate(target, before[target.path], uids, gids)
        if chmod is not None or chown:
            changes.append((target, chmod, chown))
    files = prm.plan_umask(params["umask"], login_defs, texts[prm.PROFILE_FILE])
    banner = prm.render_banner(params["banner_text"], params["contact"])
    for path in params["banner_paths"]:
        if texts[path] != banner:
            files[path] = (texts[path], banner)

    # act
    written, errors, planned = {}, {}, dict(before)
    with concern.changing(needed=bool(changes or files)):
        for path, (_before, text) in files.items():
            written[path] = _files.write_file(module, host(path), text, mode=0o644)[1]
        for target, chmod, chown in changes:
            planned[target.path] = prm.planned_info(before[target.path], chmod, chown)
            if module.check_mode:
                continue
            try:
                change_mode(target.path, before[target.path], chmod, chown)
            except OSError as exc:
                errors[target.path] = "%s: %s" % (os.strerror(exc.errno) if exc.errno else exc, target.path)

    # read back (or take the plan, in check mode)
    if module.check_mode:
        after, texts_after = planned, dict(texts)
        texts_after.update((path, text) for path, (_b, text) in files.items())
    else:
        after = dict((t.path, lstat_info(t.path)) for t in targets)
        texts_after = dict((path, _files.read_text(host(path))) for path in texts)

    findings = prm.target_findings([t for t in targets if t.control == "PRM-001"], before, after, uids, gids,
                                   names, groups, module.check_mode, errors)
    findings += prm.umask_findings(params["umask"], texts, texts_after, module.check_mode)
    findings += prm.target_findings([t for t in targets if t.control == "PRM-003"], before, after, uids, gids,
                                    names, groups, module.check_mode, errors)
    findings += prm.unowned_findings(unowned, more)
    findings += prm.banner_findings(params["banner_paths"], banner, params["contact"], texts, texts_after,
                                    module.check_mode)

    shown = dict((t.path, (prm.describe(before[t.path], names, groups),
                           prm.describe(after[t.path] or before[t.path], names, groups)))
                 for t, _m, _o in changes if t.path not in errors)
    modes = dict((path, "%s -> %s" % pair) for path, pair in shown.items())
    diff = [_files.file_diff(path, old, text) for path, (old, text) in files.items()]
    if shown:
        diff.append({"before_header": "modes", "after_header": "modes",
                     "before": "".join("%s %s\n" % (path, pair[0]) for path, pair in sorted(shown.items())),
                     "after": "".join("%s %s\n" % (path, pair[1]) for path, pair in sorted(shown.items()))})
    changed = bool(files) or bool(modes)
    concern.exit(findings, changed, diff, files=written, modes=modes)
