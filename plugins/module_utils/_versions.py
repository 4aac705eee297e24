# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ordering of appliance firmware versions as vendors write them. Pure: no I/O.

Vendors do not follow one scheme, so a comparison that cannot be sure says so: ``compare``
returns LESS, EQUAL, GREATER or UNKNOWN, and UNKNOWN (with the reason from ``why``) is
never read as "fixed". What it orders:

* dotted numbers, missing parts counting as 0: ``7.0.12``, ``10.2.0.5``, ``7.0`` == ``7.0.0``;
* a ``v`` in front is dropped (``v7.0.12``); any other letters in front are a product line
  that must be the same on both sides (Check Point ``R81.20`` vs ``R80.40``);
* one letter right after the last number is a rebuild after it (Cisco IOS XE ``17.9.4a``,
  camera firmware ``2.0.1b``): ``17.9.4`` < ``17.9.4a`` < ``17.9.4b`` < ``17.9.5``;
* a hotfix ``-hN`` after it (PAN-OS ``9.1.3-h4``): ``9.1.3`` < ``9.1.3-h4`` < ``9.1.3-h11`` < ``9.1.4``;
* a pre-release ``alpha``/``beta``/``rc`` (with a number) before it: ``2.0.1-rc1`` < ``2.0.1``;
* a build number (FortiOS ``6.4.2 build 1234``, ``v7.0.12,build0523,230612 (GA.M)``):
  builds order two builds of the same version; a version written without its build is
  that same version (the build only identifies it).

UNKNOWN: text it cannot parse (Cisco IOS classic ``15.2(4)M7``, ``1.0-SNAPSHOT``, an empty
string, anything with a newline), different product lines, and a rebuild letter against
a hotfix of the same version (two schemes it cannot place against each other).

Trains (a vendor's parallel branches: 7.0.x, 7.2.x) are chosen with ``train_of``: a fixed
version only says something about versions of its own train.
"""

from __future__ import annotations

import re
from collections import namedtuple

LESS = "less"
EQUAL = "equal"
GREATER = "greater"
UNKNOWN = "unknown"

PRE_RELEASES = {"alpha": 0, "beta": 1, "rc": 2}

_VERSION = re.compile(
    r"""^
    (?:v|(?P<line>[A-Za-z]{1,3}))?                 # v7.0.12 (dropped); R81.20 (a product line)
    (?P<release>\d+(?:\.\d+)*)                     # 7.0.12
    (?P<letter>[a-z])?                             # 17.9.4a: a rebuild after 17.9.4
    (?:[-_.]?(?P<pre>alpha|beta|rc)\.?(?P<pre_n>\d+)?)?   # 2.0.1-rc1: before 2.0.1
    (?:[-_.]?h(?P<hotfix>\d+))?                    # 9.1.3-h4: hotfix 4 of 9.1.3
    (?:(?:\s*,\s*|\s+\(?|[-_])build\s*(?P<build>\d+)\)?   # 6.4.2 build 1234, 7.0.12,build0523
       (?:,\d{6})?(?:\s+\([A-Za-z.]+\))?)?         # FortiOS: ,230612 (GA.M)
    $""",
    re.VERBOSE | re.IGNORECASE,
)

Version = namedtuple("Version", "text line release letter pre hotfix build")


def parse(text):
    """A Version, or None when ``text`` is not a version this module can order."""
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if "\n" in text or "\r" in text or not stripped:
        return None
    match = _VERSION.match(stripped)
    if not match:
        return None
    release = tuple(int(part) for part in match.group("release").split("."))
    while len(release) > 1 and release[-1] == 0:  # 7.0 == 7.0.0
        release = release[:-1]
    letter = match.group("letter")
    pre = match.group("pre")
    return Version(
        text=stripped,
        line=(match.group("line") or "").upper(),
        release=release,
        letter=ord(letter.lower()) - ord("a") + 1 if letter else 0,
        pre=(PRE_RELEASES[pre.lower()], int(match.group("pre_n") or 0)) if pre else None,
        hotfix=int(match.group("hotfix")) if match.group("hotfix") else 0,
        build=int(match.group("build")) if match.group("build") else None,
    )


def _cmp(a, b):
    return (a > b) - (a < b)


def why(a, b):
    """Why ``a`` and ``b`` cannot be ordered, or None when they can."""
    left, right = parse(a), parse(b)
    for text, parsed in ((a, left), (b, right)):
        if parsed is None:
            return "cannot compare: %r is not a version this comparison can order" % (text,)
    if left.line != right.line:
        return "cannot compare: %r and %r belong to different product lines" % (a, b)
    if left.release == right.release and ((left.letter and right.hotfix) or (left.hotfix and right.letter)):
        return "cannot compare: %r and %r mark their updates in different ways (a letter, a hotfix)" % (a, b)
    return None


def compare(a, b):
    """LESS, EQUAL or GREATER for ``a`` against ``b``; UNKNOWN when they cannot be ordered."""
    if why(a, b):
        return UNKNOWN
    left, right = parse(a), parse(b)
    # a pre-release comes before its release; no pre-release sorts after every one
    order = _cmp(
        (left.release, left.letter, left.pre or (99, 0), left.hotfix),
        (right.release, right.letter, right.pre or (99, 0), right.hotfix),
    )
    if order == 0 and left.build is not None and right.build is not None:
        order = _cmp(left.build, right.build)
    return {-1: LESS, 0: EQUAL, 1: GREATER}[order]


def at_least(version, fixed):
    """True when ``version`` is ``fixed`` or later, False when earlier, None when unknown."""
    result = compare(version, fixed)
    return None if result == UNKNOWN else result in (EQUAL, GREATER)


def train_of(version, trains):
    """The train among ``trains`` (strings such as ``"7.0"``, ``"R81.20"``, ``"*"``) that
    ``version`` belongs to: the longest whose numbers start the version's numbers, in the
    same product line; else ``"*"`` when listed; else None."""
    parsed = parse(version)
    best = None
    if parsed is not None:
        for train in trains:
            if train == "*":
                continue
            head = parse(train)
            if head is None or head.line != parsed.line or head.letter or head.pre or head.hotfix or head.build:
                continue
            numbers = tuple(int(part) for part in re.findall(r"\d+", train))
            padded = parsed.release + (0,) * max(0, len(numbers) - len(parsed.release))
            if padded[:len(numbers)] == numbers and (best is None or len(numbers) > best[0]):
                best = (len(numbers), train)
    if best:
        return best[1]
    return "*" if "*" in trains else None
