"""Firmware version ordering on real vendor strings (plugins/module_utils/_versions.py)."""

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _versions as v
from ansible_collections.yoroi.baseline.plugins.module_utils._versions import EQUAL, GREATER, LESS, UNKNOWN

# (a, b, compare(a, b)); each pair is also checked the other way round.
PAIRS = [
    # dotted numbers (FortiOS, Ivanti, SonicOS, camera firmware)
    ("7.0.12", "7.0.14", LESS),
    ("7.0.14", "7.0.12", GREATER),
    ("7.2.7", "7.2.7", EQUAL),
    ("7.0", "7.0.0", EQUAL),
    ("7.0.9", "7.0.10", LESS),              # numbers, not text: 9 < 10
    ("10.2.0.5", "10.2.0.8", LESS),
    ("10.2.1.0", "10.2.0.8", GREATER),
    ("v7.0.12", "7.0.12", EQUAL),           # a leading v is dropped
    ("V6.4.15", "v6.4.2", GREATER),
    # PAN-OS hotfixes
    ("9.1.3-h4", "9.1.3", GREATER),
    ("9.1.3-h4", "9.1.3-h11", LESS),
    ("9.1.3-h11", "9.1.4", LESS),
    ("10.2.9-h1", "10.2.9-h1", EQUAL),
    ("11.1.0-h3", "10.2.9-h1", GREATER),
    # Cisco IOS XE rebuild letters, camera firmware letters
    ("17.9.4a", "17.9.4", GREATER),
    ("17.9.4a", "17.9.4b", LESS),
    ("17.9.4a", "17.9.5", LESS),
    ("17.12.1a", "17.9.4a", GREATER),
    ("2.0.1b", "2.0.1a", GREATER),
    ("2.0.1b", "2.0.2", LESS),
    # pre-releases come before their release
    ("2.0.1-rc1", "2.0.1", LESS),
    ("2.0.1-beta2", "2.0.1-rc1", LESS),
    ("2.0.1rc2", "2.0.1-rc1", GREATER),
    # FortiOS builds
    ("6.4.2 build 1234", "6.4.2", EQUAL),   # the build only identifies 6.4.2
    ("6.4.2 build 1234", "6.4.3", LESS),
    ("6.4.2 build 1234", "6.4.2 build 1240", LESS),
    ("v7.0.12,build0523,230612 (GA.M)", "7.0.13", LESS),
    ("6.4.2 (build 1723)", "6.4.1", GREATER),
    # Check Point product lines
    ("R81.20", "R81.10", GREATER),
    ("R80.40", "R81.20", LESS),
    ("R81.20", "R81.20", EQUAL),
    # cannot be ordered: UNKNOWN, never a guess
    ("R81.20", "81.20", UNKNOWN),           # a product line against none
    ("15.2(4)M7", "15.2(7)E3", UNKNOWN),    # IOS classic trains (M, E)
    ("15.2(4)M7", "15.2(4)M8", UNKNOWN),    # not parsed at all
    ("9.1.3-h4", "9.1.3a", UNKNOWN),        # a hotfix against a rebuild letter of one version
    ("1.0-SNAPSHOT", "1.0", UNKNOWN),
    ("7.0.12-xyz", "7.0.12", UNKNOWN),      # letters it cannot place
    ("7.0.12 beta", "7.0.12", UNKNOWN),     # a word after a space: not a form it knows
    ("", "7.0.12", UNKNOWN),
    ("7.0.12\n7.2.0", "7.0.12", UNKNOWN),   # a newline is never a version
    ("latest", "7.0.12", UNKNOWN),
    ("7.0.12ab", "7.0.12", UNKNOWN),
]

OPPOSITE = {LESS: GREATER, GREATER: LESS, EQUAL: EQUAL, UNKNOWN: UNKNOWN}


def test_the_table_has_enough_pairs_and_unknown_ones():
    assert len(PAIRS) >= 30
    assert sum(1 for pair in PAIRS if pair[2] == UNKNOWN) >= 8


@pytest.mark.parametrize("first,second,expected", PAIRS, ids=["%s|%s" % pair[:2] for pair in PAIRS])
def test_compare(first, second, expected):
    assert v.compare(first, second) == expected
    assert v.compare(second, first) == OPPOSITE[expected]
    assert (v.why(first, second) is None) == (expected != UNKNOWN)


def test_unknown_says_why():
    assert v.why("15.2(4)M7", "15.2(4)M8") == "cannot compare: '15.2(4)M7' is not a version this comparison can order"
    assert "different product lines" in v.why("R81.20", "81.20")
    assert "different ways" in v.why("9.1.3-h4", "9.1.3a")


def test_at_least_is_never_true_for_unknown():
    assert v.at_least("7.0.14", "7.0.14") is True
    assert v.at_least("7.0.12", "7.0.14") is False
    assert v.at_least("15.2(4)M7", "15.2(4)M8") is None
    assert v.at_least(None, "1.0") is None


TRAINS = ["7.4", "7.2", "7.0", "6", "R81.20", "10.2.0"]


@pytest.mark.parametrize("version,train", [
    ("7.0.12", "7.0"),
    ("7.2.0", "7.2"),
    ("7.4.3 build 2573", "7.4"),
    ("v7.0.12,build0523,230612 (GA.M)", "7.0"),
    ("6.4.15", "6"),
    ("7.1.5", None),          # between listed trains: no fixed version says anything about it
    ("7.10.1", None),         # 7.10 is not 7.1
    ("R81.20", "R81.20"),
    ("81.20", None),          # no product line
    ("10.2.0.5", "10.2.0"),
    ("10.2.1.1", None),
    ("15.2(4)M7", None),
])
def test_train_of(version, train):
    assert v.train_of(version, TRAINS) == train


def test_a_star_train_takes_every_other_version():
    assert v.train_of("2.0.1b", ["*"]) == "*"
    assert v.train_of("7.0.12", ["7.0", "*"]) == "7.0"
    assert v.train_of("15.2(4)M7", ["*"]) == "*"
