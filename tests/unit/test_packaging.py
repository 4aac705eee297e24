"""The repository builds as a wheel that carries the collection, and as a collection tarball."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "ansible_collections/yoroi/baseline/"


def test_collection_tarball_has_plugins_roles_and_no_tests(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "ansible.cli.galaxy", "collection", "build", str(ROOT), "--output-path", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )
    (tarball,) = tmp_path.glob("yoroi-baseline-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    for needed in ("MANIFEST.json", "plugins/modules/stale_accounts.py", "roles/accounts/tasks/main.yml",
                   "playbooks/site.yml", "controls/catalog.yml", "plugins/action/validate_inputs.py"):
        assert needed in names, needed
    assert not any(name.startswith(("tests/", "src/", ".ci/", "molecule/", "bench/", ".dev/", ".venv/", "scripts/")) for name in names)


def test_wheel_installs_the_cli_and_the_collection(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = tmp_path.glob("yoroi-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for needed in ("galaxy.yml", "meta/runtime.yml", "plugins/modules/stale_accounts.py",
                   "roles/password_policy/meta/argument_specs.yml", "playbooks/site.yml", "controls/catalog.yml"):
        assert PREFIX + needed in names, needed
    assert "yoroi/templates/report.html.j2" in names
    assert "yoroi = yoroi.cli:main" in entry_points
