"""Reports rendered from a run document alone: text, JSON, HTML and JUnit XML."""

from __future__ import annotations

import json
from collections import OrderedDict
from xml.etree import ElementTree as ET

import jinja2

from yoroi import assets, collection
from yoroi.findings import STATUSES

FORMATS = ("text", "json", "html", "junit")
SUFFIXES = {".txt": "text", ".json": "json", ".html": "html", ".htm": "html", ".xml": "junit"}


def by_host(document: dict) -> "OrderedDict[str, dict]":
    rows = OrderedDict()
    for name in sorted(document["hosts"]):
        host = document["hosts"][name]
        rows[name] = dict(host, counts=dict.fromkeys(STATUSES, 0))
    for item in document["findings"]:
        row = rows.setdefault(item["host"], {"site": item.get("site", "default"), "status": "ok", "counts": dict.fromkeys(STATUSES, 0), "errors": []})
        row["counts"][item["status"]] += 1
    return rows


def by_site(document: dict) -> "OrderedDict[str, dict]":
    sites = OrderedDict()
    for name, host in by_host(document).items():
        site = sites.setdefault(host["site"], {"hosts": 0, "unreachable": 0, "counts": dict.fromkeys(STATUSES, 0)})
        site["hosts"] += 1
        if host["status"] != "ok":
            site["unreachable"] += 1
        for status, count in host["counts"].items():
            site["counts"][status] += count
    return OrderedDict(sorted(sites.items()))


def by_control(document: dict) -> "OrderedDict[str, dict]":
    controls = OrderedDict()
    for item in sorted(document["findings"], key=lambda f: f["control"]):
        row = controls.setdefault(
            item["control"],
            {"title": item.get("title", ""), "severity": item.get("severity", ""), "counts": dict.fromkeys(STATUSES, 0)},
        )
        row["counts"][item["status"]] += 1
    return controls


def _seed_names() -> dict:
    try:
        return collection.seed_items()
    except (collection.CollectionNotFound, OSError, KeyError):
        return {}


def by_seed(document: dict) -> "OrderedDict[str, dict]":
    """Counts per item of the call for attention that the controls answer."""
    names = _seed_names()
    items = OrderedDict()
    for item in sorted(document["findings"], key=lambda f: f.get("seed", "")):
        seed = item.get("seed") or "-"
        row = items.setdefault(seed, {"name": names.get(seed, ""), "counts": dict.fromkeys(STATUSES, 0)})
        row["counts"][item["status"]] += 1
    return items


def _counts(counts: dict) -> str:
    return "  ".join("%s %d" % (status, counts[status]) for status in STATUSES)


def render_text(document: dict) -> str:
    lines = []
    verdict = {0: "compliant", 1: "ERROR", 2: "DRIFT FOUND"}.get(document["exit_code"], "?")
    lines.append("Yoroi %s of %s: %s" % (document["mode"], document["inventory"], verdict))
    lines.append("  %s" % _counts(document["summary"]))
    if document.get("error"):
        lines.append("")
        lines.append("Error:")
        lines.extend("  " + line for line in document["error"].splitlines())
    lines.append("")
    lines.append("By item of the call for attention:")
    for seed, row in by_seed(document).items():
        lines.append("  %-4s %-34s %s" % (seed, row["name"], _counts(row["counts"])))
    lines.append("")
    lines.append("By site:")
    for name, site in by_site(document).items():
        lines.append("  %-20s %d hosts  %s" % (name, site["hosts"], _counts(site["counts"])))
    lines.append("")
    lines.append("By host:")
    for name, host in by_host(document).items():
        state = "" if host["status"] == "ok" else "  [%s]" % host["status"].upper()
        lines.append("  %-24s %-14s %s%s" % (name, host["site"], _counts(host["counts"]), state))
        for error in host.get("errors", []):
            lines.append("      ! %s" % error)
        for warning in host.get("warnings", []):
            lines.append("      warning: %s" % warning)
    lines.append("")
    lines.append("By control:")
    for control, row in by_control(document).items():
        lines.append("  %-8s %-8s %s  %s" % (control, row["severity"], _counts(row["counts"]), row["title"]))
    notable = [f for f in document["findings"] if f["status"] in ("fail", "error", "fixed")]
    if notable:
        lines.append("")
        lines.append("Findings:")
        for item in sorted(notable, key=lambda f: (f.get("priority", 1), f["host"], f["control"], f.get("subject", ""))):
            subject = " %s" % item["subject"] if item.get("subject") else ""
            lines.append("  %-5s %s %s%s: %s" % (item["status"].upper(), item["host"], item["control"], subject, item["actual"]))
            lines.append("        expected: %s" % item["expected"])
            if item.get("evidence"):
                lines.append("        evidence: %s" % item["evidence"])
    skipped = [f for f in document["findings"] if f["status"] == "skipped"]
    if skipped:
        lines.append("")
        lines.append("Exemptions:")
        for item in skipped:
            lines.append("  %s %s %s: %s" % (item["host"], item["control"], item.get("subject", ""), item["evidence"]))
    return "\n".join(lines) + "\n"


def render_json(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


REGISTER_ROWS_IN_HTML = 200


def register_table(document: dict) -> dict | None:
    """The asset register of a `yoroi assets` run as table rows, or only its size when it is
    too long for a page (the JSON and CSV files hold it)."""
    register = document.get("register")
    if not register:
        return None
    entries = [register["assets"][name] for name in sorted(register["assets"])]
    table = {"count": len(entries), "columns": assets.CSV_COLUMNS, "rows": None, "where": "the state directory's assets/"}
    if len(entries) <= REGISTER_ROWS_IN_HTML:
        table["rows"] = [[assets.cell(entry.get(column)) for column in assets.CSV_COLUMNS] for entry in entries]
    return table


def render_html(document: dict) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("yoroi", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        doc=document,
        sites=by_site(document),
        seeds=by_seed(document),
        hosts=by_host(document),
        controls=by_control(document),
        statuses=STATUSES,
        register=register_table(document),
    )


def render_junit(document: dict) -> str:
    suites = ET.Element("testsuites", name="yoroi %s" % document["mode"])
    for name, host in by_host(document).items():
        findings = [f for f in document["findings"] if f["host"] == name]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(findings) + len(host.get("errors", []))),
            failures=str(host["counts"]["fail"]),
            errors=str(host["counts"]["error"] + len(host.get("errors", []))),
            skipped=str(host["counts"]["skipped"]),
        )
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="site", value=host["site"])
        for index, error in enumerate(host.get("errors", [])):
            case = ET.SubElement(suite, "testcase", classname="%s.run" % name, name="run-%d" % index)
            ET.SubElement(case, "error", message=error)
        for item in findings:
            label = item["control"] + (" %s" % item["subject"] if item.get("subject") else "")
            case = ET.SubElement(suite, "testcase", classname="%s.%s" % (name, item["control"]), name=label)
            text = "expected: %s\nactual: %s\nevidence: %s" % (item["expected"], item["actual"], item.get("evidence", ""))
            if item["status"] == "fail":
                ET.SubElement(case, "failure", message=item["actual"]).text = text
            elif item["status"] == "error":
                ET.SubElement(case, "error", message=item["actual"]).text = text
            elif item["status"] == "skipped":
                ET.SubElement(case, "skipped", message=item.get("evidence", ""))
            else:
                ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


RENDERERS = {"text": render_text, "json": render_json, "html": render_html, "junit": render_junit}


def render(document: dict, fmt: str) -> str:
    return RENDERERS[fmt](document)


def format_for(path: str) -> str:
    for suffix, fmt in SUFFIXES.items():
        if path.lower().endswith(suffix):
            return fmt
    raise ValueError("cannot tell the report format of %s (use .txt, .json, .html or .xml)" % path)
