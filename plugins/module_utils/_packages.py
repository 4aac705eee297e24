# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Debian packages a concern needs, installed by the concern's own module call.

An audit (check mode) never touches apt: the module reads the host as it is and its
findings say what is not installed yet. An apply asks dpkg, and runs apt only for what
is missing (opening apt's whole cache costs seconds per host, so a second apply must not
pay it). ``apt-get update`` runs only when the package lists are older than
``cache_valid_time`` seconds.
"""

from __future__ import annotations

import glob
import os
import time

LISTS = "/var/lib/apt/lists"
# apt waits this long for another package manager's lock instead of failing at once.
LOCK_TIMEOUT = 300


def parse_status(text):
    """{package: installed?} from ``dpkg-query --show --showformat='${Package} ${db:Status-Status}\\n'``."""
    status = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            status[parts[0]] = parts[1] == "installed"
    return status


def lists_age(now=None, lists=LISTS):
    """Seconds since the package lists were last refreshed; None when there are none."""
    stamps = [os.stat(path).st_mtime for path in glob.glob(os.path.join(lists, "*_Packages*"))
              + glob.glob(os.path.join(lists, "*Release"))]
    if not stamps:
        return None
    return (time.time() if now is None else now) - max(stamps)


def missing(module, names):
    """The names of ``names`` that dpkg does not list as installed."""
    if not names:
        return []
    dpkg_query = module.get_bin_path("dpkg-query", required=True)
    # rc 1 only means some package is unknown to dpkg: its line is then missing.
    rc, out, err = module.run_command([dpkg_query, "--show", "--showformat=${Package} ${db:Status-Status}\\n"] + list(names),
                                      environ_update={"LC_ALL": "C"})
    if rc not in (0, 1):
        raise OSError("dpkg-query failed: %s" % (err or out).strip())
    status = parse_status(out)
    return [name for name in names if not status.get(name)]


def removals(text):
    """The packages ``apt-get -s`` would remove (its ``Remv NAME [...]`` lines)."""
    return [line.split()[1] for line in (text or "").splitlines() if line.startswith("Remv ") and len(line.split()) > 1]


def install(module, names, cache_valid_time, replace=(), recommends=True):
    """Install ``names`` (all missing); raises OSError with apt's words when it fails.
    ``recommends=False``: without the packages they recommend (``aide`` alone, without
    ``aide-common``'s cron job, mailer and mail server).

    ``replace``: installed packages that conflict with ``names`` (Debian's time daemons
    all conflict with one another) and are removed in the same apt run - and only they:
    apt's simulation must remove nothing else, or nothing is done."""
    apt_get = module.get_bin_path("apt-get", required=True)
    env = {"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=%d" % LOCK_TIMEOUT]
    age = lists_age()
    if age is None or age > cache_valid_time:
        rc, out, err = module.run_command([apt_get] + lock + ["-q", "update"], environ_update=env)
        if rc != 0:
            raise OSError("apt-get update failed: %s" % (err or out).strip()[-500:])
    # --no-remove: a package that conflicts with one installed (sudo, an SSH server) must
    # fail the install, never remove it; "--": a name is never read as an option.
    extra = [] if recommends else ["--no-install-recommends"]
    keep = ["--no-remove"]
    if replace:
        wanted = list(names) + ["%s-" % name for name in replace]
        rc, out, err = module.run_command([apt_get] + lock + ["-q", "-s"] + extra + ["install", "--"] + wanted,
                                          environ_update=env)
        if rc != 0:
            raise OSError("apt-get install %s failed: %s" % (" ".join(wanted), (err or out).strip()[-500:]))
        beyond = sorted(set(removals(out)) - set(replace))
        if beyond:
            raise OSError("installing %s would also remove %s: refused" % (" ".join(names), " ".join(beyond)))
        keep, names = [], wanted
    rc, out, err = module.run_command([apt_get] + lock + ["-q", "-y"] + keep + extra + ["install", "--"] + list(names),
                                      environ_update=env)
    if rc != 0:
        raise OSError("apt-get install %s failed: %s" % (" ".join(names), (err or out).strip()[-500:]))
