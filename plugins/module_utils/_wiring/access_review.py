# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.access_review: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/access_review.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import stat
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _access
from ansible_collections.yoroi.baseline.plugins.module_utils import _access_review as review
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _walk
from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles as hostfiles
from ansible_collections.yoroi.baseline.plugins.module_utils._files import read_text

SUDOERS = "/etc/sudoers"
DPKG_INFO = "/var/lib/dpkg/info"
ROOT = "/"
MAX_KEY_FILE = 1 << 20
# The top-level directories that merged /usr turns into symlinks.
USR_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class Refused(Exception):
    """A file the review will not read."""


def open_no_follow(path, home):
    """A read fd of ``path``; below ``home`` no component is followed if it is a symlink
    (the account owns them all and could plant one to make root read another file).
    Above the home (and for files outside it) only the last component is not followed."""
    home = home.rstrip("/")
    if not home or not path.startswith(home + "/"):
        return os.open(path, READ_FLAGS)
    parts = [part for part in path[len(home) + 1:].split("/") if part]
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            # O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR, which reads as "no file"
            if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                raise OSError(errno.ELOOP, "a symlink", part)
            inner = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], READ_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def read_key_file(path, home, uid):
    """The text of an authorized_keys file, None when there is none; Refused when it is a
    symlink (or below one), not a regular file, or owned by another account than ``uid`` or root."""
    try:
        fd = open_no_follow(path, home)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        if exc.errno == errno.ELOOP:
            raise Refused("a symlink (or below one); sshd would follow it, the review does not")
        raise Refused(str(exc))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused("not a regular file")
        if info.st_uid not in (uid, 0):
            raise Refused("owned by uid %d, neither the account nor root" % info.st_uid)
        return handle.read(MAX_KEY_FILE).decode("utf-8", "replace")


def key_holdings(module, accounts, today):
    """[(account, path, [SshKey] or None, refusal or None)] and the AuthorizedKeysCommand."""
    sshd_bin = module.get_bin_path("sshd", opt_dirs=["/usr/sbin"])
    config = {}
    if sshd_bin:
        rc, out, _err = module.run_command([sshd_bin, "-T"], environ_update={"LC_ALL": "C"})
        config = _access.parse_effective(out) if rc == 0 else {}
    holdings = []
    for account in accounts:
        if account.disabled(today) or not account.home:
            continue
        for path in _access.authorized_keys_paths(config, account.name, account.home, account.uid):
            try:
                text = read_key_file(path, account.home, account.uid)
            except Refused as exc:
                holdings.append((account.name, path, None, str(exc)))
                continue
            if text is not None:
                holdings.append((account.name, path, review.parse_authorized_keys(text), None))
    return holdings, review.authorized_keys_command(config)


def listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return None


def walk(roots, skip, limit):
    """One pass over ``roots`` (the kit's walk: no symlink followed, no directory swapped
    in mid-walk entered, one filesystem per root).

    Returns (world-writable [(path, mode, kind)], SUID/SGID [(path, mode, uid, gid)],
    world-writable not listed past ``limit``, {entries, roots, other_filesystems}).
    """
    writable, special, more = [], [], 0
    entries, walked, mounts, changed = 0, [], [], []
    skip = set(skip)
    chosen = sorted(set(r.rstrip("/") or "/" for r in roots))
    chosen = [r for r in chosen if not any(r != o and r.startswith(o.rstrip("/") + "/") for o in chosen)]
    for root in chosen:
        try:
            info = os.lstat(root)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or root in skip:
            continue
        walked.append(root)
        device = info.st_dev
        if info.st_mode & 0o002 and not info.st_mode & 0o1000:
            writable.append((root, info.st_mode, "directory"))
        report = {}
        for path, info in _walk.walk(root, skip, report):
            entries += 1
            mode = info.st_mode
            if stat.S_ISDIR(mode):
                if info.st_dev != device or path in skip:
                    continue  # a mount point or a skipped tree: not walked, not judged
                flagged = mode & 0o002 and not mode & 0o1000
                kind = "directory"
            elif stat.S_ISREG(mode):
                flagged = mode & 0o002
                kind = "file"
                if mode & 0o6000:
                    special.append((path, mode, info.st_uid, info.st_gid))
            else:
                continue  # symlinks (always 0777), sockets, fifos, devices
            if flagged:
                if len(writable) < limit:
                    writable.append((path, mode, kind))
                else:
                    more += 1
        mounts += report["other_filesystems"]
        changed += report["changed_during_walk"]
    writable.sort()
    special.sort()
    return writable, special, more, {"entries": entries, "roots": walked, "other_filesystems": sorted(mounts),
                                     "changed_during_walk": sorted(changed)}


def merged_usr(root=ROOT):
    """{"/bin": "/usr/bin", ...} for the top-level directories that are symlinks."""
    merged = {}
    for name in USR_MERGED:
        path = os.path.join(root, name)
        if os.path.islink(path):
            merged["/" + name] = os.path.normpath(os.path.join(root, os.readlink(path)))
    return merged


def md5_of(path):
    digest = hashlib.md5()
    fd = os.open(path, READ_FLAGS)
    with os.fdopen(fd, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def package_owners(paths, merged, info_dir=None):
    """({path: package} for the ``paths`` a dpkg file list names, {path: why} for those whose
    content differs from the package's md5sums). Each list is read once, as bytes."""
    info_dir = info_dir or DPKG_INFO
    # {name as a list writes it: path}; each list is read line by line and each line
    # looked up once, so the cost is the lists' size plus the paths', not their product
    # (a user can make as many SUID files of their own as they like)
    wanted = {}
    for path in paths:
        for name in review.usr_aliases(path, merged):
            wanted.setdefault(name.encode("utf-8", "surrogateescape"), path)
    owners, changed = {}, {}
    if not wanted:
        return owners, changed
    for list_path in sorted(glob.glob(os.path.join(info_dir, "*.list"))):
        package = os.path.basename(list_path)[:-len(".list")]
        try:
            with open(list_path, "rb") as handle:
                for line in handle:
                    path = wanted.get(line.rstrip(b"\n"))
                    if path is not None and path not in owners:
                        owners[path] = package
        except OSError:
            continue
    for path, package in owners.items():
        sums = read_text(os.path.join(info_dir, package + ".md5sums"), "")
        listed = dict((line[34:].strip(), line[:32]) for line in sums.splitlines() if len(line) > 34)
        expected = next((listed[n.lstrip("/")] for n in review.usr_aliases(path, merged) if n.lstrip("/") in listed), None)
        if expected is None:
            continue
        try:
            actual = md5_of(path)
        except OSError as exc:
            changed[path] = "cannot be read to compare with %s's md5sums: %s" % (package, exc)
            continue
        if actual != expected:
            changed[path] = "named by %s but its content differs from the package's md5sums" % package
    return owners, changed


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            approved_sudoers=dict(type="list", elements="str", default=list(review.DEBIAN_SUDOERS)),
            privileged_groups=dict(type="list", elements="str",
                                   default=["root", "sudo", "wheel", "adm", "shadow", "disk", "staff", "docker", "lxd",
                                            "incus-admin", "libvirt"]),
            approved_privileged=dict(type="dict", default={}),
            approved_keys=dict(type="dict", default={}, no_log=False),  # fingerprints, not keys
            min_rsa_bits=dict(type="int", default=2048),
            scan_paths=dict(type="list", elements="path",
                            default=["/bin", "/boot", "/etc", "/lib", "/lib64", "/opt", "/root", "/sbin", "/srv", "/usr", "/var"]),
            skip_paths=dict(type="list", elements="path", default=["/var/lib/docker", "/var/lib/containers", "/var/lib/lxd", "/var/lib/lxc"]),
            approved_suid=dict(type="list", elements="path", default=[]),
            approved_world_writable=dict(type="list", elements="path", default=[]),
            max_reported=dict(type="int", default=50),
        ), protected=False),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "access_review", review.CONTROLS)
    if params["max_reported"] < 1:
        concern.refuse("max_reported must be 1 or more, got %d" % params["max_reported"])
    shadow_text = read_text(hostfiles.SHADOW)
    if shadow_text is None or not os.access(hostfiles.SHADOW, os.R_OK):
        concern.refuse("cannot read %s: run as root (become: true)" % hostfiles.SHADOW)
    check_mode = module.check_mode
    today = int(time.time() // 86400)
    accounts = hostfiles.join_shadow(hostfiles.parse_passwd(read_text(hostfiles.PASSWD, "")), hostfiles.parse_shadow(shadow_text))
    group_rows = hostfiles.parse_group(read_text(hostfiles.GROUP, ""))

    findings = review.uid0_findings(accounts, today, check_mode)
    entries, problems = review.load_sudoers(SUDOERS, read_text, listdir)
    findings += review.sudo_findings(entries, problems, params["approved_sudoers"], check_mode)
    members = review.privileged_members(group_rows, accounts, set(params["privileged_groups"]))
    findings += review.group_findings(members, accounts, params["approved_privileged"], today, check_mode)
    holdings, keys_command = key_holdings(module, accounts, today)
    findings += review.key_findings(holdings, params["approved_keys"], params["min_rsa_bits"], check_mode, keys_command)
    limit = params["max_reported"]
    writable, special, more, covered = walk(params["scan_paths"], params["skip_paths"], limit)
    findings += review.world_writable_findings(writable, more, params["approved_world_writable"], limit, check_mode)
    owners, changed = package_owners([item[0] for item in special], merged_usr())
    findings += review.suid_findings(special, owners, changed, params["approved_suid"], limit, check_mode)
    concern.exit(findings, False, walk=covered)
