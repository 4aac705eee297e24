"""The kit's tree walk: what it yields, and what a user who owns part of the tree cannot
make it do (follow a link, enter a directory swapped in mid-walk, exhaust descriptors)."""

import os

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _walk


def names(top, found):
    return sorted(os.path.relpath(path, top) for path, _info in found)


@pytest.fixture
def tree(tmp_path):
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    (top / "skipme" / "inner").mkdir(parents=True)
    (top / "g").write_text("y")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (top / "link").symlink_to(outside)
    return top, outside


def test_every_entry_once_no_link_followed_skip_not_entered(tree):
    top, _outside = tree
    report = {}
    found = list(_walk.walk(str(top), skip=[str(top / "skipme")], report=report))
    assert names(top, found) == ["a", "a/b", "a/b/f", "g", "link", "skipme"]
    assert report == {"other_filesystems": [], "changed_during_walk": []}


def test_a_top_that_is_a_link_or_a_file_or_missing_yields_nothing(tree, tmp_path):
    top, _outside = tree
    assert list(_walk.walk(str(top / "link"))) == []
    assert list(_walk.walk(str(top / "g"))) == []
    assert list(_walk.walk(str(tmp_path / "missing"))) == []


def test_a_directory_swapped_for_a_link_mid_walk_is_not_entered(tree, monkeypatch):
    """The owner of `a` replaces `a/b` with a symlink to a directory outside after the
    walk listed `a` (it saw a directory) and before it opens `a/b`."""
    top, outside = tree
    listing = _walk._listing

    def listing_then_swap(fd):
        found = listing(fd)
        if any(name == "b" for name, _info in found):
            os.rename(top / "a" / "b", top / "a" / "b.old")
            os.symlink(outside, top / "a" / "b")
        return found

    monkeypatch.setattr(_walk, "_listing", listing_then_swap)
    report = {}
    found = names(top, _walk.walk(str(top), report=report))
    assert "a/b/secret" not in found and "a/b/f" not in found
    assert report["changed_during_walk"] == [str(top / "a" / "b")]


def test_a_directory_swapped_for_another_directory_is_not_entered(tree, monkeypatch):
    top, outside = tree
    listing = _walk._listing

    def listing_then_swap(fd):
        found = listing(fd)
        if any(name == "b" for name, _info in found):
            os.rename(top / "a" / "b", top / "a" / "b.old")
            os.rename(outside, top / "a" / "b")
        return found

    monkeypatch.setattr(_walk, "_listing", listing_then_swap)
    report = {}
    assert "a/b/secret" not in names(top, _walk.walk(str(top), report=report))
    assert report["changed_during_walk"] == [str(top / "a" / "b")]


def test_one_descriptor_per_level_and_none_left_open(tmp_path):
    top = tmp_path / "wide"
    for index in range(2000):
        (top / ("d%04d" % index)).mkdir(parents=True)
    deep = top / "d0000"
    for index in range(60):
        deep = deep / "x"
    deep.mkdir(parents=True)
    before = len(os.listdir("/proc/self/fd"))
    peak = 0
    count = 0
    for _path, _info in _walk.walk(str(top)):
        count += 1
        peak = max(peak, len(os.listdir("/proc/self/fd")))
    assert count == 2000 + 60
    assert peak - before <= 62  # the depth, not the 2000 directories waiting
    assert len(os.listdir("/proc/self/fd")) == before


def test_an_abandoned_walk_closes_its_descriptors(tree):
    top, _outside = tree
    before = len(os.listdir("/proc/self/fd"))
    walk = _walk.walk(str(top))
    next(walk)
    next(walk)
    walk.close()
    assert len(os.listdir("/proc/self/fd")) == before
