"""Incident preparation on the controller: each site's contacts from the inventory, a
printable runbook page per site, and the draft of an incident's first notification.

Nothing here connects to a host. The contacts are inventory variables (a site's
group_vars), read with `ansible-inventory --list` like Ansible reads them:

    yoroi_site_contact: "security desk, +81 3 0000 0000"      # whom to consult (banners too)
    yoroi_incident_contacts:
      internal:   [{name: ..., role: ..., phone: ..., email: ...}]
      management: [...]
      external:   [{name: JPCERT/CC, role: national CSIRT, email: ..., url: ...}]
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from yoroi import runner

GROUPS = ("internal", "management", "external")
FIELDS = ("name", "role", "phone", "email", "url", "notes")
# a character that has no place in a one-line contact field (a newline would forge a line
# of the notification; other control characters hide text)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SITE_FILE = re.compile(r"[^A-Za-z0-9._-]")


class InventoryError(RuntimeError):
    pass


@dataclass
class Site:
    name: str
    consult: str = ""
    timezone: str = ""
    window: str = ""
    hosts: list = field(default_factory=list)
    contacts: dict = field(default_factory=lambda: {group: [] for group in GROUPS})
    problems: list = field(default_factory=list)


def check_contacts(value, where: str) -> dict:
    """{group: [contact]} from a yoroi_incident_contacts value; ValueError naming the
    field for anything else (an unknown group or field, a missing name, a control
    character)."""
    if value in (None, ""):
        return {group: [] for group in GROUPS}
    if not isinstance(value, dict):
        raise ValueError("%s: a mapping of %s" % (where, ", ".join(GROUPS)))
    unknown = sorted(set(value) - set(GROUPS))
    if unknown:
        raise ValueError("%s: unknown group %s (known: %s)" % (where, ", ".join(unknown), ", ".join(GROUPS)))
    contacts = {}
    for group in GROUPS:
        entries = value.get(group) or []
        if not isinstance(entries, list):
            raise ValueError("%s.%s: a list of contacts" % (where, group))
        contacts[group] = []
        for index, entry in enumerate(entries):
            place = "%s.%s[%d]" % (where, group, index)
            if not isinstance(entry, dict):
                raise ValueError("%s: a contact is a mapping of %s" % (place, ", ".join(FIELDS)))
            extra = sorted(set(entry) - set(FIELDS))
            if extra:
                raise ValueError("%s: unknown field %s (known: %s)" % (place, ", ".join(extra), ", ".join(FIELDS)))
            clean = {}
            for key in FIELDS:
                text = entry.get(key)
                if text is None:
                    continue
                text = str(text)
                if CONTROL.search(text):
                    raise ValueError("%s.%s: a newline or control character" % (place, key))
                clean[key] = text.strip()
            if not clean.get("name"):
                raise ValueError("%s.name: every contact has a name" % place)
            contacts[group].append(clean)
    return contacts


def one_line(value, where: str) -> str:
    text = "" if value is None else str(value)
    if CONTROL.search(text):
        raise ValueError("%s: a newline or control character" % where)
    return text.strip()


def inventory_hostvars(inventory: str, limit: str | None = None) -> dict:
    """{host: its variables} as Ansible resolves them (group_vars and host_vars too)."""
    argv = [os.path.join(runner.ansible_bin_dir(), "ansible-inventory"), "-i", inventory, "--list"]
    if limit:
        argv += ["--limit", limit]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300,
                          env=dict(os.environ, **runner.ansible_environment()))
    if proc.returncode != 0:
        raise InventoryError("ansible-inventory could not read %s: %s" % (inventory, proc.stderr.strip()[-500:]))
    data = json.loads(proc.stdout)
    hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    groups = {}
    for group, body in data.items():
        for host in (body or {}).get("hosts", []) if isinstance(body, dict) else []:
            groups.setdefault(host, []).append(group)
    hosts = set(hostvars) | set(groups)
    return {host: dict(hostvars.get(host) or {}, _groups=[g for g in groups.get(host, []) if g not in ("all", "ungrouped")])
            for host in sorted(hosts)}


def sites(hostvars: dict) -> dict:
    """{site name: Site}: the hosts grouped by site (yoroi_site, else the host's first
    group, as reports do), each site's contacts. Hosts of one site that disagree on
    them are a problem of that site, reported, never silently merged."""
    found: dict[str, Site] = {}
    seen: dict[str, tuple] = {}
    for host, values in sorted(hostvars.items()):
        name = one_line(values.get("yoroi_site") or (values["_groups"][0] if values["_groups"] else "default"),
                        "%s: yoroi_site" % host)
        site = found.setdefault(name, Site(name))
        site.hosts.append(host)
        contacts = check_contacts(values.get("yoroi_incident_contacts"), "%s: yoroi_incident_contacts" % host)
        these = (one_line(values.get("yoroi_site_contact"), "%s: yoroi_site_contact" % host),
                 one_line(values.get("yoroi_timezone"), "%s: yoroi_timezone" % host),
                 one_line(values.get("yoroi_maintenance_window"), "%s: yoroi_maintenance_window" % host),
                 json.dumps(contacts, sort_keys=True))
        if name not in seen:
            seen[name] = these
            site.consult, site.timezone, site.window = these[:3]
            site.contacts = contacts
        elif seen[name] != these:
            site.problems.append("%s has other contacts than the site's other hosts: the page uses %s's"
                                 % (host, site.hosts[0]))
    return found


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("yoroi", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def render_runbook(site: Site, generated: str) -> str:
    """The printable runbook page of one site (HTML, every value escaped)."""
    return _environment().get_template("runbook.html.j2").render(site=site, groups=GROUPS, generated=generated)


def runbook_file(directory: Path, site: str) -> Path:
    """runbook-<site>.html in ``directory``; a site name never becomes a path of its own."""
    safe = SITE_FILE.sub("_", site).strip("._") or "site"
    digest = hashlib.sha256(site.encode("utf-8")).hexdigest()[:8]
    name = "runbook-%s.html" % safe if safe == site else "runbook-%s-%s.html" % (safe, digest)
    return directory / name


def bundle_id(path: Path) -> dict:
    """{"name", "sha256", "size"} of an evidence bundle (the tarball, or the one its
    manifest names beside it): what the notification cites."""
    path = Path(path)
    target = path
    if path.suffix == ".json":
        for candidate in (path.with_suffix("").with_suffix(".tar.gz"), Path(str(path).replace(".manifest.json", ".tar.gz"))):
            if candidate.exists():
                target = candidate
                break
    digest = hashlib.sha256()
    with open(target, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"name": target.name, "sha256": digest.hexdigest(), "size": target.stat().st_size}


SERIOUS = ("critical", "high")


def draft_notification(document: dict, site_info: dict | None = None, what: str = "",
                       evidence: list | None = None, reporter: str | None = None) -> str:
    """The first notification of an incident, drafted from a run document: what (the
    operator's words, then the run's serious failing findings), where (sites and hosts),
    when (the run's times, UTC and each site's zone as given), the evidence bundles'
    ids, and the addresses of each site's contacts. A draft for people to send."""
    site_info = site_info or {}
    evidence = evidence or []
    reporter = reporter or "%s@%s" % (getpass.getuser(), socket.gethostname())
    failing = [f for f in document["findings"] if f["status"] in ("fail", "error")]
    serious = [f for f in failing if f.get("severity") in SERIOUS]
    involved = sorted({f.get("site", "default") for f in failing} or {h.get("site", "default") for h in document["hosts"].values()})
    recipients = {"to": [], "cc": []}
    for name in involved:
        site = site_info.get(name)
        if not site:
            continue
        for group, key in (("external", "to"), ("internal", "to"), ("management", "cc")):
            for contact in site.contacts[group]:
                address = contact.get("email") or contact.get("phone") or contact["name"]
                label = "%s <%s>" % (contact["name"], address) if address != contact["name"] else contact["name"]
                if label not in recipients[key]:
                    recipients[key].append(label)
    lines = [
        "DRAFT - review, complete and send it yourself; Yoroi sends nothing.",
        "",
        "To: %s" % ("; ".join(recipients["to"]) or "(no contact in the inventory: set yoroi_incident_contacts)"),
        "Cc: %s" % "; ".join(recipients["cc"]),
        "Subject: Security incident - first notification - %s - %s" % (", ".join(involved), document.get("finished", "")),
        "",
        "1. What",
        "   %s" % (one_line(what, "--what") or "(describe what was seen: the signs, how it was noticed)"),
        "   Yoroi %s of %s: %d failing or erroring findings, %d of them high or critical."
        % (document.get("mode", "run"), document.get("inventory", ""), len(failing), len(serious)),
    ]
    for item in serious[:20]:
        lines.append("   - [%s] %s %s on %s: %s" % (item.get("severity"), item["control"], item.get("title", ""),
                                                    item["host"], item.get("actual", "")))
    if len(serious) > 20:
        lines.append("   - ... and %d more (the run file has them all)" % (len(serious) - 20))
    lines += ["", "2. Where"]
    for name in involved:
        hosts = sorted(h for h, v in document["hosts"].items() if v.get("site", "default") == name)
        lines.append("   site %s: %s" % (name, ", ".join(hosts)))
    unreachable = sorted(h for h, v in document["hosts"].items() if v.get("status") != "ok")
    if unreachable:
        lines.append("   not reached or failed: %s" % ", ".join(unreachable))
    lines += ["", "3. When",
              "   run started %s, finished %s (UTC)" % (document.get("started", "?"), document.get("finished", "?"))]
    for name in involved:
        site = site_info.get(name)
        if site and site.timezone:
            lines.append("   site %s keeps %s" % (name, site.timezone))
    lines += ["", "4. Evidence"]
    if evidence:
        for item in evidence:
            lines.append("   %s  sha256:%s  (%d bytes)" % (item["name"], item["sha256"], item["size"]))
    else:
        lines.append("   (no evidence bundle given: `yoroi collect` the hosts, then --evidence BUNDLE)")
    lines += ["", "5. Reported by", "   %s, %s" % (reporter, datetime.now(timezone.utc).isoformat(timespec="seconds"))]
    for name in involved:
        site = site_info.get(name)
        if site and site.consult:
            lines.append("   site %s: whom to consult: %s" % (name, site.consult))
    return "\n".join(lines) + "\n"
