# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Appliances (VPN devices, gateways, cameras, printers) against vendor advisories and the
CISA Known Exploited Vulnerabilities catalog, on the controller: the devices run no Python
and are never connected to; the inventory declares what they run.

``load`` reads and checks the two input files (the controller's input check and the
action both use it); ``evaluate`` is pure: one appliance, the advisories and the KEV
entries in, findings out (APL-001 .. APL-003).

The advisory file (YAML or JSON)::

    advisories:
      - id: KSA-2024-003                 # the vendor's advisory id (required)
        vendor: Kitsune Networks         # required; matched without regard to case
        models: [KN-VPN 400, KN-VPN 800] # required; "*" is every model of the vendor
        cves: [CVE-2024-21762]           # the CVEs it fixes (required, may be empty)
        fixed:                           # required: train -> first fixed version on it
          "7.4": 7.4.3                   #   (null: no fix on that train, move to another)
          "7.2": 7.2.7                   #   "*" is every train not listed
          "6.4": null
        kev: true                        # optional: known exploited, with or without the KEV file
        title: Out-of-bounds write in the SSL VPN portal   # optional
        url: https://advisories.example/KSA-2024-003       # optional
"""

from __future__ import annotations

import json
import re

from ansible_collections.yoroi.baseline.plugins.module_utils import _versions as versions
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, SKIPPED, finding, fold

CONTROLS = ("APL-001", "APL-002", "APL-003")
ROLES = ("vpn", "gateway", "firewall", "router", "switch", "access_point", "camera", "printer", "nas",
         "iot", "other")
SEVERITIES = ("low", "medium", "high", "critical")
# Bigger than any advisory file, and than the whole KEV catalog (about 1.5 MB in 2025).
MAX_BYTES = 32 * 1024 * 1024

CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ADVISORY_KEYS = {"id": True, "vendor": True, "models": True, "cves": True, "fixed": True,
                 "kev": False, "title": False, "url": False}
KEV_FIELDS = ("cveID", "vendorProject", "product", "dueDate")
DECLARED = ("vendor", "model", "firmware", "role")


class InputError(ValueError):
    """A malformed input file; the message names the file and the place."""


def read_bounded(path, limit=MAX_BYTES):
    """The text of ``path``, refused past ``limit`` bytes."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError("%s: cannot be read (%s)" % (path, exc.strerror or exc))
    if len(data) > limit:
        raise InputError("%s: larger than %d bytes" % (path, limit))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("%s: not UTF-8 text (%s)" % (path, exc))


def _one_line(value):
    return isinstance(value, str) and value.strip() and not re.search(r"[\x00-\x1f\x7f]", value)


def _advisory_problems(index, item):
    where = "advisories[%d]" % index
    if not isinstance(item, dict):
        return ["%s is not a mapping" % where]
    problems = ["%s: unknown key %r (known: %s)" % (where, key, ", ".join(ADVISORY_KEYS))
                for key in item if key not in ADVISORY_KEYS]
    problems += ["%s: %s is missing" % (where, key) for key, required in ADVISORY_KEYS.items()
                 if required and key not in item]
    if problems:
        return problems
    where = "advisories[%d] (%s)" % (index, item["id"])
    for key in ("id", "vendor", "title", "url"):
        if key in item and not _one_line(item[key]):
            problems.append("%s: %s must be one line of text" % (where, key))
    models = item["models"]
    if not isinstance(models, list) or not models or not all(_one_line(model) for model in models):
        problems.append("%s: models must be a non-empty list of model names (or \"*\")" % where)
    cves = item["cves"]
    if not isinstance(cves, list) or not all(isinstance(cve, str) and CVE.match(cve) for cve in cves):
        problems.append("%s: cves must be a list of CVE ids such as CVE-2024-21762" % where)
    if "kev" in item and not isinstance(item["kev"], bool):
        problems.append("%s: kev must be true or false" % where)
    fixed = item["fixed"]
    if not isinstance(fixed, dict) or not fixed:
        return problems + ["%s: fixed must map each train (\"7.2\", \"*\") to its first fixed version" % where]
    for train, version in fixed.items():
        if not isinstance(train, str) or not (version is None or isinstance(version, str)):
            problems.append("%s: write train %r and version %r in quotes (YAML reads 7.10 as the number 7.1)"
                            % (where, train, version))
        elif train != "*" and versions.train_of(train, [train]) != train:
            problems.append("%s: train %r is not a version prefix such as \"7.2\" or \"R81.20\"" % (where, train))
        elif version is not None and versions.parse(version) is None:
            problems.append("%s: fixed version %r of train %s cannot be ordered" % (where, version, train))
        elif version is not None and train != "*" and versions.train_of(version, [train]) != train:
            problems.append("%s: fixed version %r is not on train %s" % (where, version, train))
    return problems


def check_advisories(data):
    """Problems of a parsed advisory file; [] when it is sound."""
    if not isinstance(data, dict) or not isinstance(data.get("advisories"), list):
        return ["not a mapping with a list `advisories` (see the schema in the README)"]
    problems = ["unknown top-level key %r" % key for key in data if key not in ("advisories", "schema")]
    for index, item in enumerate(data["advisories"]):
        problems += _advisory_problems(index, item)
    return problems


def check_kev(data):
    """Problems of a parsed KEV catalog (CISA's published JSON); [] when it is sound."""
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        return ["not the CISA KEV catalog format (an object with a list `vulnerabilities`)"]
    problems = []
    for index, item in enumerate(data["vulnerabilities"]):
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in KEV_FIELDS):
            problems.append("vulnerabilities[%d]: needs the strings %s" % (index, ", ".join(KEV_FIELDS)))
        elif not CVE.match(item["cveID"]) or not DATE.match(item["dueDate"]):
            problems.append("vulnerabilities[%d]: cveID %r or dueDate %r is malformed" % (index, item["cveID"], item["dueDate"]))
        if len(problems) >= 5:
            break
    return problems


def load(path, kind, limit=MAX_BYTES):
    """The parsed file: kind ``advisories`` (YAML or JSON) or ``kev`` (JSON). Raises
    InputError naming the file and what is wrong with it."""
    text = read_bounded(path, limit)
    import yaml  # on the controller only, which always has it (Ansible does)

    try:
        data = json.loads(text) if kind == "kev" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError("%s: not %s (%s)" % (path, "JSON" if kind == "kev" else "YAML or JSON",
                                              " ".join(str(exc).split())))
    problems = (check_kev if kind == "kev" else check_advisories)(data)
    if problems:
        raise InputError("%s: %s" % (path, "; ".join(problems)))
    return data


# --- evaluation ------------------------------------------------------------------------------


def _same(a, b):
    return " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()


def matching(advisories, vendor, model):
    """The advisories that name this vendor and model (or every model, "*")."""
    return [item for item in advisories if _same(item["vendor"], vendor)
            and any(m == "*" or _same(m, model) for m in item["models"])]


def kev_index(kev):
    """{cveID: KEV entry}."""
    return dict((item["cveID"], item) for item in (kev or {}).get("vulnerabilities") or [])


def bump(severity):
    """One level up: an internet-facing device is the first way in."""
    index = SEVERITIES.index(severity) if severity in SEVERITIES else 1
    return SEVERITIES[min(index + 1, len(SEVERITIES) - 1)]


def _describe(item):
    text = "advisory %s" % item["id"]
    if item.get("title"):
        text += " (%s)" % item["title"]
    if item["cves"]:
        text += " fixes %s" % ", ".join(item["cves"])
    if item.get("url"):
        text += "; %s" % item["url"]
    return text


def _against(item, firmware):
    """(ok: True/False/None, fixed version or None, what was found, evidence) for one advisory."""
    trains = list(item["fixed"])
    train = versions.train_of(firmware, trains)
    if train is None:
        return None, None, "cannot compare %s with the fixed versions of %s" % (firmware, item["id"]), (
            "cannot compare: %s lists no fixed version for the train of %s (it lists %s); %s" % (
                item["id"], firmware, ", ".join(trains), _describe(item)))
    fixed = item["fixed"][train]
    if fixed is None:
        return False, None, "%s on train %s, which has no fix: move to a train with one" % (firmware, train), _describe(item)
    fixed = str(fixed)
    ok = versions.at_least(firmware, fixed)
    if ok is None:
        return None, fixed, "cannot compare %s with %s" % (firmware, fixed), "%s; %s" % (
            versions.why(firmware, fixed), _describe(item))
    return ok, fixed, "%s %s %s" % (firmware, "at or above" if ok else "below", fixed), _describe(item)


def _kev_text(entry):
    return "CISA KEV %s (%s %s): due %s, ransomware use %s" % (
        entry["cveID"], entry["vendorProject"], entry["product"], entry["dueDate"],
        entry.get("knownRansomwareCampaignUse") or "Unknown")


def evaluate(appliance, advisories, kev, check_mode, sources):
    """Findings for one appliance.

    ``appliance``: {vendor, model, firmware, role, product}; ``advisories``: the parsed
    advisory list or None (no file); ``kev``: the parsed KEV catalog or None; ``sources``:
    {advisories, kev} file names for the evidence.
    """
    declared = dict((key, appliance.get(key)) for key in DECLARED)
    missing = [key for key, value in declared.items() if not value]
    found = [finding("APL-003", fold(not missing, not missing, check_mode, attempted=False),
                     "vendor, model, firmware and role declared",
                     "missing: %s" % ", ".join("yoroi_appliance_" + key for key in missing) if missing
                     else ", ".join("%s %s" % (key, value) for key, value in declared.items()),
                     "declared in the inventory; the device itself is not contacted")]
    vendor, model, firmware = declared["vendor"], declared["model"], declared["firmware"]
    if not (vendor and model and firmware):
        why = "no %s declared (APL-003)" % " or ".join("yoroi_appliance_" + key for key in ("vendor", "model", "firmware")
                                                       if not declared[key])
        return found + [finding(control, SKIPPED, "", "not evaluated", why) for control in ("APL-001", "APL-002")]
    kev_by_cve = kev_index(kev)
    exploited = []  # (advisory, ok, actual, [KEV entries])
    if advisories is None:
        found.append(finding("APL-001", SKIPPED, "firmware at or above every fixed version", "not evaluated",
                             "no advisory file (yoroi_appliances_advisories)"))
    else:
        relevant = matching(advisories, vendor, model)
        if not relevant:
            found.append(finding("APL-001", SKIPPED, "firmware at or above every fixed version", "not evaluated",
                                 "no advisory in %s names %s %s" % (sources.get("advisories"), vendor, model)))
        for item in relevant:
            ok, fixed, actual, evidence = _against(item, firmware)
            expected = "at or above %s" % fixed if fixed else "a fixed version on the advisory's trains"
            status = ERROR if ok is None else fold(ok, ok, check_mode, attempted=False)
            found.append(finding("APL-001", status, expected, actual, evidence, subject=item["id"]))
            entries = [kev_by_cve[cve] for cve in item["cves"] if cve in kev_by_cve]
            if ok is not True and (entries or item.get("kev")):
                exploited.append((item, ok, actual, entries))
    for item, ok, actual, entries in exploited:
        marks = [_kev_text(entry) for entry in entries] or ["marked kev: true in %s" % sources.get("advisories")]
        found.append(finding("APL-002", ERROR if ok is None else fold(False, False, check_mode, attempted=False),
                             "every known-exploited CVE fixed",
                             "%s: %s" % (", ".join(e["cveID"] for e in entries) or item["id"], actual),
                             "; ".join(marks + [_describe(item)]), subject=item["id"]))
    covered = set(cve for item in matching(advisories or [], vendor, model) for cve in item["cves"])
    product = appliance.get("product") or model
    unknown = sorted((entry for entry in kev_by_cve.values() if entry["cveID"] not in covered
                      and _same(entry["vendorProject"], vendor) and _same(entry["product"], product)),
                     key=lambda entry: entry["dueDate"])
    if unknown:
        found.append(finding("APL-002", ERROR, "every known-exploited CVE of %s %s in an advisory with its fix" % (vendor, product),
                             "cannot compare: %s in the KEV catalog, in no advisory for %s" % (
                                 ", ".join(e["cveID"] for e in unknown), model),
                             "; ".join(_kev_text(entry) for entry in unknown) + "; add their fixed versions to %s"
                             % (sources.get("advisories") or "an advisory file"), subject="KEV without advisory"))
    if not exploited and not unknown:
        if kev is None:
            found.append(finding("APL-002", SKIPPED, "every known-exploited CVE fixed", "not evaluated",
                                 "no KEV catalog (yoroi_appliances_kev), and no advisory marked kev: true is unfixed"))
        else:
            found.append(finding("APL-002", fold(True, True, check_mode, attempted=False), "every known-exploited CVE fixed",
                                 "none unfixed", "%d KEV entries (catalog %s) checked against %s %s %s" % (
                                     len(kev_by_cve), kev.get("catalogVersion", "?"), vendor, product, firmware)))
    return found


def prioritise(findings, role, severities, internet_facing):
    """Give each finding its severity (from the catalog, one level up for an internet-facing
    role) and a priority (0 internet-facing, 1 other), so reports put those devices first."""
    facing = role in internet_facing
    for item in findings:
        base = severities.get(item["control"], "medium")
        item["severity"] = bump(base) if facing else base
        item["priority"] = 0 if facing else 1
    return findings
