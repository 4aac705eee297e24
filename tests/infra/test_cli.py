"""The yoroi CLI against a real lab host: exit codes, JSON contract, check mode that
changes nothing, idempotence, saved runs, input errors and unreachable hosts.

One lab with one bookworm host, taken through stages in order (each stage is a module
fixture that needs the one before it): audit on the neglected host -> invalid inputs ->
apply -> apply again -> report / audit again. Every run gets its own YOROI_STATE_DIR.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import checks


pytestmark = pytest.mark.lab

SCANNED = "/etc /var/log /var/backups /usr/share/pam-configs"
# What the system itself writes when Ansible logs in over SSH, sudo runs and a module
# logs its invocation (sshd, pam_lastlog, rsyslog, journald): these change on every login,
# check mode or not. Everything else under SCANNED must keep its checksum and mtime.
LOGIN_NOISE = re.compile(
    r"^/var/log/(journal/.*|(wtmp|btmp|lastlog|wtmp\.db|auth\.log|syslog|messages|user\.log"
    r"|daemon\.log|kern\.log|cron\.log))$"
)
REPO = Path(__file__).resolve().parents[2]
CATALOG = {c["id"] for c in yaml.safe_load((REPO / "controls" / "catalog.yml").read_text())["controls"]}


def snapshot(host) -> dict[str, tuple[str, str]]:
    """{path: (mtime, sha256)} of every regular file under SCANNED."""
    cmd = (f"find {SCANNED} -xdev -type f -printf '%T@ %p\\n'; echo ---; "
           f"find {SCANNED} -xdev -type f -print0 | xargs -0 sha256sum")
    out = host.run(cmd)
    assert out.rc == 0, out.stderr
    mtimes_text, sums_text = out.stdout.split("---\n", 1)
    mtimes = dict(reversed(line.split(" ", 1)) for line in mtimes_text.splitlines())
    sums = dict(reversed(line.split("  ", 1)) for line in sums_text.splitlines())
    return {path: (mtimes[path], sums.get(path)) for path in mtimes}


def changed_files(before: dict, after: dict) -> list[str]:
    paths = set(before) | set(after)
    return sorted(p for p in paths if before.get(p) != after.get(p) and not LOGIN_NOISE.match(p))


# The concerns the lab inventory turns off (src/yoroi/lab/hosts.py).
ALL_OFF_IN_LAB = ("yoroi_time_sync_enabled", "yoroi_backup_enabled", "yoroi_firmware_enabled",
                  "yoroi_firewall_enabled", "yoroi_log_forwarding_enabled")


@pytest.fixture(scope="module")
def cli(yoroi_cli):
    return yoroi_cli


@pytest.fixture(scope="module")
def target(module_lab):
    lab, nodes = module_lab(hosts=1)
    return lab, nodes[0]


@pytest.fixture(scope="module")
def ghost_inventory(target, tmp_path_factory):
    """The lab inventory plus a host `ghost` at a loopback port nothing listens on."""
    return checks.ghost_inventory(target[0].inventory_path, tmp_path_factory.mktemp("ghost"))


@pytest.fixture(scope="module")
def audits(target, ghost_inventory, tmp_path_factory, cli):
    lab, node = target
    before = snapshot(node.host)
    # every concern, those the lab leaves off too (no time server, repository, firmware
    # device or collector here): their check mode must change no file either
    everything = [arg for name in ALL_OFF_IN_LAB for arg in ("-e", "%s=true" % name)]
    plain = cli.run("audit", "-i", str(lab.inventory_path), "-o", "json", *everything,
                    state_dir=tmp_path_factory.mktemp("state"))
    with_ghost = cli.run("audit", "-i", str(ghost_inventory), "-o", "json",
                         state_dir=tmp_path_factory.mktemp("state"))
    # the same audit with one module call per concern instead of the batch
    unbatched = cli.run("audit", "-i", str(lab.inventory_path), "-o", "json", "-e", "yoroi_batch_checks=false",
                        *everything, state_dir=tmp_path_factory.mktemp("state"))
    return SimpleNamespace(before=before, plain=plain, ghost=with_ghost, unbatched=unbatched,
                           after=snapshot(node.host))


@pytest.fixture(scope="module")
def bad_inputs(audits, target, tmp_path_factory, cli):
    """`yoroi apply` (not audit: it would change things) with a badly typed and an
    unknown variable."""
    lab, node = target
    before = snapshot(node.host)
    runs = {
        pair.split("=", 1)[0]: cli.run("apply", "--yes", "-i", str(lab.inventory_path), "-o", "json",
                                       "-e", pair, state_dir=tmp_path_factory.mktemp("state"))
        for pair in ("yoroi_accounts_max_inactive_days=soon", "yoroi_accounts_max_inactve_days=3")
    }
    return SimpleNamespace(before=before, runs=runs, after=snapshot(node.host))


@pytest.fixture(scope="module")
def applies(bad_inputs, target, tmp_path_factory, cli):
    lab, node = target
    state = tmp_path_factory.mktemp("state")
    inv = str(lab.inventory_path)
    first = cli.run("apply", "--yes", "-i", inv, "-o", "json", state_dir=state)
    second = cli.run("apply", "--yes", "-i", inv, "-o", "json", state_dir=state)
    junit = cli.run("report", "-f", "junit", state_dir=state)
    audit = cli.run("audit", "-i", inv, "-o", "json", state_dir=state)
    return SimpleNamespace(first=first, second=second, junit=junit, audit=audit, state=state, node=node)


# --- audit on a neglected host -----------------------------------------------------


def test_audit_of_unhardened_host_exits_2_and_lists_failing_controls(audits, target, cli):
    node = target[1]
    doc = cli.json(audits.plain)
    assert audits.plain.returncode == 2, audits.plain.stderr
    assert doc["mode"] == "audit" and doc["exit_code"] == 2
    assert doc["hosts"][node.name]["status"] == "ok"
    failing = {f["control"] for f in doc["findings"] if f["status"] == "fail"}
    # what the seeded host really lacks, control by control
    assert {"ACC-001", "ACC-002", "ACC-003", "ACC-004", "ACC-005",
            "PWD-001", "PWD-002", "PWD-006", "PWD-007", "PWD-008", "PWD-009", "PWD-010"} <= failing
    assert failing <= CATALOG
    assert doc["summary"]["fail"] == sum(1 for f in doc["findings"] if f["status"] == "fail")
    bob = [f for f in doc["findings"] if f["control"] == "ACC-001" and f.get("subject") == "bob"]
    assert bob and bob[0]["status"] == "fail" and bob[0]["expected"] and bob[0]["actual"]
    skipped = {f.get("subject") for f in doc["findings"] if f["status"] == "skipped"}
    assert "breakglass" in skipped


def test_batched_audit_finds_what_one_call_per_concern_finds(audits, cli):
    """The audit evaluates every concern of a host in one module call (batch_check); the
    findings are the very ones of one call per concern, finding for finding."""
    def key(item):
        fields = ("host", "control", "subject", "status", "expected", "actual", "evidence", "task")
        return json.dumps({k: item.get(k) for k in fields}, sort_keys=True)

    batched, unbatched = cli.json(audits.plain), cli.json(audits.unbatched)
    assert audits.unbatched.returncode == audits.plain.returncode == 2
    assert len(batched["findings"]) > 100
    assert Counter(map(key, batched["findings"])) == Counter(map(key, unbatched["findings"]))
    assert [h["changed"] for h in batched["hosts"].values()] == [h["changed"] for h in unbatched["hosts"].values()]
    # every concern of the baseline was evaluated, none left deferred
    assert {f["control"].split("-")[0] for f in batched["findings"]} >= {
        "ACC", "PWD", "SSH", "MFA", "KRN", "PRM", "AUD", "SVC", "ACR", "GRD",
        "TIM", "BAK", "FWU", "FWL", "PAT", "LOG", "FIM"}


def test_audit_changes_no_file(audits):
    assert len(audits.before) > 100
    assert changed_files(audits.before, audits.after) == []


def test_unreachable_host_is_reported_and_the_other_still_audited(audits, target, cli):
    node = target[1]
    doc = cli.json(audits.ghost)
    assert audits.ghost.returncode == 1
    assert doc["hosts"]["ghost"]["status"] == "unreachable"
    assert doc["hosts"][node.name]["status"] == "ok"
    assert any(f["host"] == node.name and f["status"] == "fail" for f in doc["findings"])
    assert not any(f["host"] == "ghost" for f in doc["findings"])


# --- inputs are checked before anything changes ----------------------------------


@pytest.mark.parametrize("variable", ["yoroi_accounts_max_inactive_days", "yoroi_accounts_max_inactve_days"])
def test_bad_variable_exits_1_naming_it(bad_inputs, variable, target, cli):
    node = target[1]
    res = bad_inputs.runs[variable]
    assert res.returncode == 1
    doc = cli.json(res)
    errors = " ".join(doc["hosts"][node.name]["errors"])
    assert variable in errors
    assert doc["summary"]["fixed"] == 0 and doc["hosts"][node.name]["changed"] == 0


def test_bad_variables_change_no_file(bad_inputs):
    assert changed_files(bad_inputs.before, bad_inputs.after) == []


# --- apply, idempotence, saved runs -----------------------------------------------


def test_apply_exits_0_and_fixes(applies, cli):
    doc = cli.json(applies.first)
    assert applies.first.returncode == 0, [f for f in doc["findings"] if f["status"] not in ("pass", "fixed")]
    assert doc["summary"]["fixed"] > 0 and doc["summary"]["fail"] == 0 and doc["summary"]["error"] == 0


def test_second_apply_changes_nothing(applies, cli):
    doc = cli.json(applies.second)
    assert doc["hosts"] and all(h["changed"] == 0 for h in doc["hosts"].values()), doc["hosts"]
    assert doc["summary"]["fixed"] == 0
    assert applies.second.returncode == 0, [f for f in doc["findings"] if f["status"] != "pass"]


def test_audit_after_apply_exits_0(applies, cli):
    doc = cli.json(applies.audit)
    assert applies.audit.returncode == 0, [f for f in doc["findings"] if f["status"] != "pass"]


def test_report_renders_the_saved_run_as_junit(applies):
    # `yoroi report` renders runs/last.json: the second apply (the final audit ran later)
    assert applies.junit.returncode == 0, applies.junit.stderr
    root = ET.fromstring(applies.junit.stdout)
    cases = root.findall(".//testcase")
    assert cases, applies.junit.stdout[:500]
    names = " ".join(c.get("name", "") + " " + c.get("classname", "") for c in cases)
    assert "ACC-001" in names and "PWD-007" in names
    assert not root.findall(".//failure") and not root.findall(".//error")
    assert len(list((Path(applies.state) / "runs").glob("*-apply.json"))) >= 1


# --- the README's first command on a fresh machine -----------------------------------


def test_readme_first_command_from_a_clean_clone_with_a_plain_path(tmp_path):
    """`scripts/setup --cli && .venv/bin/yoroi audit` in a clone of this working tree
    (uncommitted edits of tracked files included), from a shell whose PATH holds only
    /usr/bin:/bin: the audit of this machine reaches it and evaluates controls."""
    clone = tmp_path / "yoroi"
    # stash create writes a commit object: give it an identity where git has none
    git = ["git", "-C", str(REPO), "-c", "user.name=yoroi-test", "-c", "user.email=yoroi-test@localhost"]
    revision = subprocess.run(git + ["stash", "create"], capture_output=True, text=True, check=True).stdout.strip()
    revision = revision or subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                                          check=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "--detach", revision], check=True)
    state = tmp_path / "state"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"], "YOROI_STATE_DIR": str(state)}

    setup = subprocess.run(["scripts/setup", "--cli"], cwd=clone, env=env, capture_output=True, check=False, text=True,
                           timeout=900)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    audit = subprocess.run([".venv/bin/yoroi", "audit"], cwd=clone, env=env, capture_output=True, check=False, text=True,
                           timeout=900)

    assert "was not found" not in audit.stdout, audit.stdout
    assert audit.returncode in (0, 2), audit.stdout[-3000:] + audit.stderr[-2000:]
    doc = json.loads((state / "runs" / "last.json").read_text())
    assert doc["hosts"] and all(host["status"] == "ok" for host in doc["hosts"].values()), doc["hosts"]
    evaluated = {f["control"] for f in doc["findings"] if f["status"] in ("pass", "fail")}
    assert evaluated and evaluated <= CATALOG, doc["findings"]
