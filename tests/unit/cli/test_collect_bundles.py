"""yoroi collect on the controller: bundles stored with a manifest that verifies, a
tampered bundle that does not, hostile host names kept out of paths, and the exit code."""

import hashlib
import io
import json
import os
import tarfile

import pytest
from click.testing import CliRunner

from yoroi.cli import main
from yoroi.commands import collect


def make_tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def fetched(tmp_path):
    directory = tmp_path / "fetch"
    directory.mkdir()
    return directory


def document_for(hosts, fetched, members=None):
    evidence = {}
    for name, status in hosts.items():
        if status == "ok":
            make_tarball(fetched / collect.fetched_name(name), members or {"01-processes/processes.json": b"[]"})
            evidence[name] = {"seconds": 1.5, "timings": [{"step": "processes", "seconds": 0.1}],
                              "truncated": [], "deleted_binaries": [{"pid": 7}]}
    return {"hosts": {name: {"status": status} for name, status in hosts.items()}, "findings": [],
            "evidence": evidence, "exit_code": 1}


def test_bundles_and_manifests_are_private_and_verify(tmp_path, fetched):
    out = collect.prepare_out(tmp_path / "out")
    document = document_for({"web1": "ok", "db1": "unreachable"}, fetched)
    document["hosts"]["db1"]["errors"] = ["unreachable: ssh: connect to host db1 port 22: Connection refused"]
    lines = collect.store_all(document, fetched, out)
    assert document["exit_code"] == 1  # db1 is unreachable
    assert lines[0] == ("collect on db1: NOT collected (unreachable): "
                        "unreachable: ssh: connect to host db1 port 22: Connection refused")
    assert lines[1].startswith("collect on web1 took 1.5 s: %s/web1-" % out)
    bundle = next(out.glob("web1-*.tar.gz"))
    manifest = json.loads(collect.manifest_path(bundle).read_text())
    assert manifest["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert manifest["members"] == {"01-processes/processes.json": hashlib.sha256(b"[]").hexdigest()}
    assert manifest["collected"]["by"] and manifest["collected"]["yoroi_version"]
    assert manifest["deleted_binaries"] == [{"pid": 7}]
    assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {"0o600"}
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert collect.verify(bundle) == []
    result = CliRunner().invoke(main, ["collect", "--verify", str(bundle)])
    assert result.exit_code == 0 and "verifies" in result.output


def test_every_host_stored_is_success(tmp_path, fetched):
    document = document_for({"web1": "ok"}, fetched)
    collect.store_all(document, fetched, collect.prepare_out(tmp_path / "out"))
    assert document["exit_code"] == 0


def test_a_tampered_or_swapped_bundle_does_not_verify(tmp_path, fetched):
    out = collect.prepare_out(tmp_path / "out")
    collect.store_all(document_for({"web1": "ok"}, fetched, {"a": b"1", "b": b"2"}), fetched, out)
    bundle = next(out.glob("web1-*.tar.gz"))
    manifest_text = collect.manifest_path(bundle).read_text()
    os.chmod(bundle, 0o600)
    make_tarball(bundle, {"a": b"1", "b": b"changed", "c": b"new"})
    problems = collect.verify(bundle)
    assert problems == ["the tarball's SHA-256 differs from the manifest's", "member differs: b",
                        "member not in the manifest: c"]
    assert collect.manifest_path(bundle).read_text() == manifest_text
    result = CliRunner().invoke(main, ["collect", "--verify", str(bundle)])
    assert result.exit_code == 1


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "..", ".hidden", "a b", "x\ny", ""])
def test_a_hostile_host_name_never_becomes_a_path(tmp_path, fetched, name):
    out = collect.prepare_out(tmp_path / "deep" / "out")
    document = document_for({name: "ok"}, fetched)
    lines = collect.store_all(document, fetched, out)
    assert "NOT stored" in lines[0] and document["exit_code"] == 1
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    # the fetch name is a hash: the playbook never builds a path from the host's name
    assert collect.fetched_name(name).count("/") == 0


def test_an_existing_file_or_link_at_the_name_is_never_overwritten(tmp_path):
    out = collect.prepare_out(tmp_path / "out")
    target = tmp_path / "target"
    target.write_text("keep")
    (out / "f").symlink_to(target)
    with pytest.raises(FileExistsError):
        collect.write_new(out, "f", b"x")
    assert target.read_text() == "keep"
    with pytest.raises(ValueError):
        collect.write_new(out, "../f", b"x")


def test_collect_needs_an_inventory_and_asks_first(tmp_path):
    result = CliRunner().invoke(main, ["collect"])
    assert result.exit_code == 64 and "needs an inventory" in result.output
    result = CliRunner().invoke(main, ["collect", "-i", "h1,", "--out", str(tmp_path / "o")], input="n\n")
    assert result.exit_code != 0 and "Aborted" in result.output
    assert not (tmp_path / "o").exists()
