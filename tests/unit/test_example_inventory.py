"""The example fleet is valid input: every host's yoroi_ variables pass validate_inputs."""

import json
import subprocess
import sys
from pathlib import Path

from ansible_collections.yoroi.baseline.plugins.action import validate_inputs as vi

INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "example"


def hostvars():
    out = subprocess.run(
        [sys.executable, "-m", "ansible.cli.inventory", "-i", str(INVENTORY), "--list"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["_meta"]["hostvars"]


def test_every_site_has_hosts_and_a_site_name():
    hosts = hostvars()
    sites = {values.get("yoroi_site") for values in hosts.values()}
    assert sites == {"head-office", "singapore", "frankfurt"}


def test_every_host_passes_input_validation():
    specs = vi.load_specs()
    for host, values in hostvars().items():
        assert vi.check(values, specs) == [], host


def test_branches_override_only_what_differs():
    hosts = hostvars()
    baseline = {k for k, v in hosts["hq-web-01.example"].items() if k.startswith("yoroi_accounts_")}
    assert baseline and all(
        hosts[h][k] == hosts["hq-web-01.example"][k] for h in hosts for k in baseline
    )
