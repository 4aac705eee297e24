"""evidence_bundle in-process: bad limits refused, and the staging directory removed when
the collection fails."""

import os

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _evidence
from ansible_collections.yoroi.baseline.plugins.modules import evidence_bundle


def test_the_module_removes_its_staging_directory_when_the_collection_fails(run_module, tmp_path, monkeypatch):
    def fail(staging, *_args, **_kwargs):
        open(os.path.join(staging, "bundle.tar.gz"), "w").close()
        raise OSError("disk full")

    monkeypatch.setattr(_evidence, "collect", fail)
    result, failed = run_module(evidence_bundle, {"staging_parent": str(tmp_path)})
    assert failed and "disk full" in result["msg"]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args", [{"since_days": -1}, {"file_bytes": 0}])
def test_bad_limits_are_refused_before_anything_is_made(run_module, tmp_path, args):
    result, failed = run_module(evidence_bundle, dict(args, staging_parent=str(tmp_path)))
    assert failed and os.listdir(tmp_path) == []
