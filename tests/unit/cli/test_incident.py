"""Incident preparation: contacts from the inventory, the runbook page per site, and the
draft of a first notification. Nothing connects to a host."""

import os
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from yoroi import incident
from yoroi.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "inventories" / "example"


def contacts(**groups):
    return {group: groups.get(group, []) for group in incident.GROUPS}


@pytest.mark.parametrize("value, why", [
    ({"external": [{"name": "CSIRT\nTo: attacker@example.org"}]}, "newline or control character"),
    ({"internal": [{"name": "desk", "email": "a@b\x1b[8m"}]}, "newline or control character"),
    ({"internal": [{"role": "CISO"}]}, "every contact has a name"),
    ({"internal": [{"name": "x", "pager": "1"}]}, "unknown field pager"),
    ({"press": []}, "unknown group press"),
    ({"external": "JPCERT"}, "a list of contacts"),
    ("JPCERT", "a mapping of"),
])
def test_a_contact_that_is_not_one_is_refused_naming_the_field(value, why):
    with pytest.raises(ValueError) as refused:
        incident.check_contacts(value, "web1: yoroi_incident_contacts")
    assert why in str(refused.value) and str(refused.value).startswith("web1: yoroi_incident_contacts")


def hostvars(**hosts):
    return {name: dict(values, _groups=values.pop("_groups", [])) for name, values in hosts.items()}


def test_sites_group_hosts_and_report_hosts_that_disagree():
    desk = {"internal": [{"name": "Desk", "phone": "1"}]}
    found = incident.sites(hostvars(
        web1={"yoroi_site": "tokyo", "yoroi_site_contact": "desk", "yoroi_incident_contacts": desk},
        web2={"yoroi_site": "tokyo", "yoroi_site_contact": "desk", "yoroi_incident_contacts": desk},
        db1={"yoroi_site": "tokyo", "yoroi_site_contact": "someone else"},
        fra1={"_groups": ["frankfurt"]},
    ))
    assert sorted(found) == ["frankfurt", "tokyo"]
    tokyo = found["tokyo"]
    assert tokyo.hosts == ["db1", "web1", "web2"]
    # the first host (sorted) sets the page; the others that differ are named
    assert tokyo.consult == "someone else" and tokyo.contacts == contacts()
    assert [p.split()[0] for p in tokyo.problems] == ["web1", "web2"]
    assert found["frankfurt"].hosts == ["fra1"] and not found["frankfurt"].problems


def test_the_runbook_page_escapes_every_value():
    site = incident.Site("tokyo", consult="<script>alert(1)</script>",
                         contacts=contacts(external=[{"name": "CSIRT", "url": "javascript:alert(1)\"><b>"}]))
    page = incident.render_runbook(site, "2026-11-28T00:00:00+00:00")
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert '"><b>' not in page
    assert "No contact set" not in page and "None in the inventory (yoroi_incident_contacts.internal)" in page


@pytest.mark.parametrize("site, name", [
    ("head-office", "runbook-head-office.html"),
    ("../../etc/cron.d/x", None),
    ("a/b", None),
    ("..", None),
    ("", None),
    ("東京", None),
])
def test_a_site_name_never_becomes_a_path(tmp_path, site, name):
    path = incident.runbook_file(tmp_path, site)
    assert path.parent == tmp_path and path.name.startswith("runbook-") and "/" not in path.name
    assert path.name not in ("runbook-.html", "runbook-...html")
    if name:
        assert path.name == name
    else:
        assert path.name != incident.runbook_file(tmp_path, site + "x").name  # distinct sites, distinct pages


def document():
    return {
        "mode": "audit", "inventory": "inv", "started": "2026-11-28T01:00:00+00:00", "finished": "2026-11-28T01:00:05+00:00",
        "hosts": {"web1": {"site": "tokyo", "status": "ok"}, "web2": {"site": "tokyo", "status": "unreachable"}},
        "findings": [
            {"host": "web1", "site": "tokyo", "control": "SSH-002", "title": "No root login", "severity": "high",
             "status": "fail", "actual": "PermitRootLogin yes"},
            {"host": "web1", "site": "tokyo", "control": "PRM-001", "title": "umask", "severity": "low",
             "status": "fail", "actual": "022"},
            {"host": "web1", "site": "tokyo", "control": "ACC-001", "title": "stale", "severity": "high",
             "status": "pass", "actual": ""},
        ],
    }


def test_the_notification_draft_says_what_where_when_and_cites_the_evidence(tmp_path):
    bundle = tmp_path / "web1-20261128T010000Z.tar.gz"
    bundle.write_bytes(b"evidence")
    site = incident.Site("tokyo", consult="desk, +81", timezone="Asia/Tokyo", contacts=contacts(
        internal=[{"name": "Desk", "email": "desk@example.org"}],
        management=[{"name": "CISO", "email": "ciso@example.org"}],
        external=[{"name": "CSIRT", "url": "https://csirt.example"}, {"name": "Police", "phone": "+81 110"}]))
    text = incident.draft_notification(document(), {"tokyo": site}, "ransom note on web1",
                                       [incident.bundle_id(bundle)], reporter="ops@controller")
    assert text.startswith("DRAFT")
    assert "To: CSIRT; Police <+81 110>; Desk <desk@example.org>" in text
    assert "Cc: CISO <ciso@example.org>" in text
    assert "ransom note on web1" in text
    assert "[high] SSH-002 No root login on web1: PermitRootLogin yes" in text
    assert "PRM-001" not in text and "ACC-001" not in text  # low and passing findings stay in the run
    assert "site tokyo: web1, web2" in text and "not reached or failed: web2" in text
    assert "2026-11-28T01:00:05+00:00" in text and "Asia/Tokyo" in text
    assert "web1-20261128T010000Z.tar.gz  sha256:%s" % __import__("hashlib").sha256(b"evidence").hexdigest() in text
    assert "ops@controller" in text and "whom to consult: desk, +81" in text


def test_a_newline_in_what_cannot_forge_a_line():
    with pytest.raises(ValueError):
        incident.draft_notification(document(), {}, "x\nTo: attacker@example.org")


def test_runbook_command_writes_a_private_page_per_site_of_the_example(tmp_path):
    out = tmp_path / "pages"
    result = CliRunner().invoke(main, ["runbook", "-i", str(EXAMPLE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pages = sorted(p.name for p in out.iterdir())
    sites = sorted(yaml.safe_load(p.read_text())["yoroi_site"] for p in (EXAMPLE / "group_vars").glob("*.yml")
                   if "yoroi_site" in (yaml.safe_load(p.read_text()) or {}))
    assert pages == ["runbook-%s.html" % s for s in sites]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    for page in out.iterdir():
        assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert "JPCERT/CC" in (out / "runbook-head-office.html").read_text()


def test_runbook_exits_1_naming_a_site_without_contacts(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"web1": {"yoroi_site": "lonely"}}}}))
    result = CliRunner().invoke(main, ["runbook", "-i", str(inventory), "--out", str(tmp_path / "pages")])
    assert result.exit_code == 1
    assert "lonely" in result.output and "no whom to consult" in result.output
    assert (tmp_path / "pages" / "runbook-lonely.html").exists()


def test_notification_options_without_notification_are_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["report", "--what", "x"])
    assert result.exit_code == 64 and "go with --notification" in result.output
