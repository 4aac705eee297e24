# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall concern: a default-deny inbound nftables table, pure parts.

Yoroi owns one table, ``table inet yoroi``, with one base chain ``input`` (hook input,
policy drop). Its rules, in this order:

1. ``iif lo`` accept; ``ct state established,related`` accept; the ICMP that IPv4 and
   IPv6 need (unreachable, time exceeded, parameter problem, packet too big, neighbour
   discovery; echo request by policy);
2. management, FIRST: the sshd port(s) from the management addresses (and the current
   client of the automation, by policy);
3. the site's allowlist, one rule per entry: a port and protocol from the given sources;
4. a rate-limited log rule (``log prefix "yoroi-drop: "``); then the chain's policy drops.

Everything is a pure function over a *model* - ``{"policy", "rules": [rule]}`` where a rule
is ``{"name", "family", "saddr", "proto", "dports", "iif", "ct", "icmp", "verdict", "log"}``
(None where a rule does not match on it) - so that the rendering (:func:`render`), the
live table read from ``nft -j list ruleset`` (:func:`parse_ruleset`), the comparison and
the lockout pre-check (:func:`verdict_for`, :func:`reaches`) all speak of one thing. A
containment (isolate a host except from the management addresses) is :func:`policy`
with an empty allowlist.

The file ``/etc/nftables.d/yoroi.nft`` declares, deletes and re-declares the table, so
loading it (``nft -f``) replaces the Yoroi table alone, atomically, and leaves every other
table (docker, libvirt, fail2ban, the admin's own) alone. Debian's nftables.service
loads ``/etc/nftables.conf`` at boot, which includes the file; its reload starts with
``flush ruleset`` in Debian's default configuration, so Yoroi never reloads the service
at run time (that would flush the other tables too) and loads its file alone.
"""

from __future__ import annotations

import ipaddress
import json
import re

FAMILY = "inet"
TABLE = "yoroi"
CHAIN = "input"
RULES_DIR = "/etc/nftables.d"
RULES_FILE = "/etc/nftables.d/yoroi.nft"
NFTABLES_CONF = "/etc/nftables.conf"
INCLUDE_LINE = 'include "%s"' % RULES_FILE
SERVICE = "nftables.service"
# Loads the Yoroi table alone (or removes it when the file is gone): what the lockout
# guard reloads after putting the previous file back.
RELOAD_UNIT = "yoroi-firewall.service"
RELOAD_UNIT_FILE = "/etc/systemd/system/yoroi-firewall.service"
LOG_PREFIX = "yoroi-drop: "
PROTOS = ("tcp", "udp")
RATE_RE = re.compile(r"^([1-9][0-9]{0,5})/(second|minute|hour|day)$")
ICMP_TYPES = ["destination-unreachable", "time-exceeded", "parameter-problem"]
ICMPV6_TYPES = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem",
                "nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"]
COMMENT_PREFIX = "yoroi: "
ESSENTIAL = ("loopback", "established", "icmp", "icmpv6")
MANAGEMENT = "management"
LOG = "log dropped"

CONTROLS = {
    "FWL-001": "the Yoroi nftables table (inet yoroi) is loaded, its input chain with policy drop",
    "FWL-002": "management access first: the sshd port(s) accepted from the management addresses before any other rule of policy",
    "FWL-003": "besides management, only the site's allowlist is accepted",
    "FWL-004": "dropped packets logged with a rate limit (prefix yoroi-drop)",
    "FWL-005": "the ruleset persisted: %s included from %s, it matches the live table, nftables.service enabled"
               % (RULES_FILE, NFTABLES_CONF),
}


# --- inputs -------------------------------------------------------------------------


def network(text, what):
    """A source address or CIDR, normalized (host bits must be zero); ValueError when not."""
    if not isinstance(text, str) or not text or text.strip() != text or "\n" in text:
        raise ValueError("%s: %r is not an IP address or network" % (what, text))
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError("%s: %r is not an IP address or network (%s)" % (what, text, exc))
    if net.prefixlen == 0:
        raise ValueError("%s: %s would be every address (an allowlist entry without from is open to any)" % (what, text))
    return net


def port(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("%s: port %r is not from 1 to 65535" % (what, value))
    return value


def check_rate(rate):
    if not isinstance(rate, str) or not RATE_RE.match(rate):
        raise ValueError("log_rate %r is not N/second, N/minute, N/hour or N/day" % (rate,))
    return rate


def check_allow(entries):
    """The allowlist, each entry ``{port, proto, from}`` checked; [(proto, port, [net])].
    No ``from`` (or an empty one) is any source, as elsewhere in Yoroi; a /0 is refused."""
    result = []
    for index, entry in enumerate(entries or []):
        what = "allow[%d]" % index
        if not isinstance(entry, dict):
            raise ValueError("%s: %r is not a mapping of port, proto and from" % (what, entry))
        unknown = sorted(set(entry) - {"port", "proto", "from"})
        if unknown:
            raise ValueError("%s: unknown key(s) %s (port, proto, from)" % (what, ", ".join(unknown)))
        proto = entry.get("proto", "tcp")
        if proto not in PROTOS:
            raise ValueError("%s: proto %r is not tcp or udp" % (what, proto))
        sources = entry.get("from")
        if sources is None:
            sources = []
        if not isinstance(sources, list):
            raise ValueError("%s: from must list the source addresses or networks (empty for any)" % what)
        nets = [network(source, what + ".from") for source in sources]
        result.append((proto, port(entry.get("port"), what), nets))
    return result


# --- the model ------------------------------------------------------------------------


def rule(name, verdict="accept", family=None, saddr=None, proto=None, dports=None, iif=None, ct=None,
         icmp=None, icmpv6=None, log=None, counter=False):
    return {"name": name, "family": family, "saddr": saddr, "proto": proto, "dports": dports, "iif": iif,
            "ct": ct, "icmp": icmp, "icmpv6": icmpv6, "verdict": verdict, "log": log, "counter": counter}


def _split(nets):
    """(IPv4 networks, IPv6 networks) as sorted strings, duplicates and covered ones out."""
    out = {4: [], 6: []}
    for version in (4, 6):
        wanted = sorted(set(n for n in nets if n.version == version), key=lambda n: (n.network_address, n.prefixlen))
        collapsed = list(ipaddress.collapse_addresses(wanted)) if wanted else []
        out[version] = [str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in collapsed]
    return out[4], out[6]


def _by_family(name, nets, proto, dports):
    """One rule per address family; no ``nets`` at all: from any source (one rule)."""
    if not nets:
        return [rule(name, proto=proto, dports=dports)]
    v4, v6 = _split(nets)
    rules = []
    for family, addresses in ((4, v4), (6, v6)):
        if addresses:
            rules.append(rule(name, family=family, saddr=addresses, proto=proto, dports=dports))
    return rules


def policy(ssh_ports, management, allow=(), icmp_echo=True, log_rate="5/minute"):
    """The model of the Yoroi table: see the module docstring for the order.

    ``ssh_ports``: ints; ``management``: ip_network objects; ``allow``: as
    :func:`check_allow` returns it. A containment is this with ``allow=()``.
    """
    icmp = list(ICMP_TYPES) + (["echo-request"] if icmp_echo else [])
    icmpv6 = list(ICMPV6_TYPES) + (["echo-request"] if icmp_echo else [])
    rules = [
        rule("loopback", iif="lo"),
        rule("established", ct=["established", "related"]),
        rule("icmp", proto="icmp", icmp=icmp),
        rule("icmpv6", proto="ipv6-icmp", icmpv6=icmpv6),
    ]
    ports = sorted(set(int(p) for p in ssh_ports))
    rules += _by_family(MANAGEMENT, list(management), "tcp", ports)
    for proto, number, nets in allow:
        rules += _by_family("allow %s/%d" % (proto, number), nets, proto, [number])
    # the counter, before the limit, counts every packet the policy then drops
    rules.append(rule(LOG, verdict=None, log={"prefix": LOG_PREFIX, "rate": log_rate}, counter=True))
    return {"policy": "drop", "rules": rules}


# --- rendering ------------------------------------------------------------------------


def _set(items):
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else "{ %s }" % ", ".join(items)


def render_rule(item):
    parts = []
    if item["iif"]:
        parts.append('iif "%s"' % item["iif"])
    if item["ct"]:
        parts.append("ct state %s" % ",".join(item["ct"]))
    if item["icmp"]:
        parts.append("meta l4proto icmp icmp type %s" % _set(item["icmp"]))
    if item["icmpv6"]:
        parts.append("meta l4proto ipv6-icmp icmpv6 type %s" % _set(item["icmpv6"]))
    if item["family"] and item["saddr"]:
        parts.append("%s saddr %s" % ("ip" if item["family"] == 4 else "ip6", _set(item["saddr"])))
    elif item["family"]:
        parts.append("meta nfproto %s" % ("ipv4" if item["family"] == 4 else "ipv6"))
    if item["proto"] in PROTOS:
        parts.append("%s dport %s" % (item["proto"], _set(item["dports"])))
    if item["counter"]:
        parts.append("counter")
    if item["log"]:
        parts.append("limit rate %s" % item["log"]["rate"])
        parts.append('log prefix "%s"' % item["log"]["prefix"])
    if item["verdict"]:
        parts.append(item["verdict"])
    parts.append('comment "%s%s"' % (COMMENT_PREFIX, item["name"]))
    return " ".join(parts)


def render(model):
    """The text of the Yoroi ruleset file (loaded with ``nft -f``)."""
    lines = [
        "# Written by Yoroi (yoroi.baseline.firewall); replaced on every apply, do not edit.",
        "# Loading it replaces the table inet yoroi alone: other tables are left as they are.",
        "table %s %s" % (FAMILY, TABLE),
        "delete table %s %s" % (FAMILY, TABLE),
        "table %s %s {" % (FAMILY, TABLE),
        "\tchain %s {" % CHAIN,
        "\t\ttype filter hook input priority filter; policy %s;" % model["policy"],
    ]
    lines += ["\t\t" + render_rule(item) for item in model["rules"]]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def render_reload_unit():
    """The unit the lockout guard reloads: the Yoroi table alone, from the file, or no
    Yoroi table when the file is gone (there was none before)."""
    script = ("if [ -e %s ]; then exec /usr/sbin/nft -f %s; fi; "
              "if /usr/sbin/nft list table %s %s >/dev/null 2>&1; then exec /usr/sbin/nft delete table %s %s; fi"
              % (RULES_FILE, RULES_FILE, FAMILY, TABLE, FAMILY, TABLE))
    return "\n".join([
        "# Written by Yoroi (yoroi.baseline.firewall).",
        "[Unit]",
        "Description=Yoroi firewall: load the Yoroi nftables table alone (other tables untouched)",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=/bin/sh -c '%s'" % script,
        "",
    ])


def plan_conf(text):
    """/etc/nftables.conf with the include line of the Yoroi file (None: it is there)."""
    for line in (text or "").splitlines():
        if line.strip() == INCLUDE_LINE:
            return None
    if text is None:
        return "#!/usr/sbin/nft -f\n\n# the Yoroi firewall's table\n%s\n" % INCLUDE_LINE
    return text + ("" if text.endswith("\n") or not text else "\n") + "\n# the Yoroi firewall's table (yoroi.baseline.firewall)\n%s\n" % INCLUDE_LINE


# --- reading nft -j list ruleset -----------------------------------------------------------


class Unknown(Exception):
    """A rule expression this reader does not model: the rule is not one of Yoroi's."""


def _values(right):
    """nft JSON right-hand side -> sorted list of strings (addresses, prefixes, ports, names)."""
    if isinstance(right, dict) and "set" in right:
        items = right["set"]
    else:
        items = [right]
    out = []
    for item in items:
        if isinstance(item, dict) and "prefix" in item:
            out.append("%s/%s" % (item["prefix"]["addr"], item["prefix"]["len"]))
        elif isinstance(item, dict) and "range" in item:
            out.append("%s-%s" % tuple(item["range"]))
        elif isinstance(item, (str, int)) and not isinstance(item, bool):
            out.append(item)
        else:
            raise Unknown(json.dumps(item))
    return out


def _norm_nets(values):
    nets = []
    for text in values:
        net = ipaddress.ip_network(str(text), strict=False)
        nets.append(net)
    return _split(nets)


def parse_rule(rule_json):
    """One rule of the JSON listing -> a model rule (name from its comment), or raise Unknown."""
    item = rule("", verdict=None)
    comment = rule_json.get("comment") or ""
    item["name"] = comment[len(COMMENT_PREFIX):] if comment.startswith(COMMENT_PREFIX) else "(%s)" % (comment or "no comment")
    for expr in rule_json.get("expr", []):
        (kind, body), = expr.items()
        if kind in ("accept", "drop"):
            item["verdict"] = kind
        elif kind == "counter":
            item["counter"] = True
        elif kind == "limit":
            rate = "%s/%s" % (body.get("rate"), body.get("per"))
            item["log"] = dict(item["log"] or {}, rate=rate)
        elif kind == "log":
            item["log"] = dict(item["log"] or {}, prefix=(body or {}).get("prefix", ""))
        elif kind == "match":
            left, right, op = body.get("left"), body.get("right"), body.get("op")
            if op not in ("==", "in"):
                raise Unknown(json.dumps(body))
            if isinstance(left, dict) and "meta" in left:
                key = left["meta"].get("key")
                if key == "iifname" or key == "iif":
                    item["iif"] = right
                elif key == "l4proto":
                    item["proto"] = right
                elif key == "nfproto":
                    item["family"] = {"ipv4": 4, "ipv6": 6}.get(right)
                else:
                    raise Unknown(json.dumps(body))
            elif isinstance(left, dict) and "ct" in left and left["ct"].get("key") == "state":
                item["ct"] = sorted(right if isinstance(right, list) else _values(right))
            elif isinstance(left, dict) and "payload" in left:
                payload = left["payload"]
                proto, field = payload.get("protocol"), payload.get("field")
                if proto in ("ip", "ip6") and field == "saddr":
                    v4, v6 = _norm_nets(_values(right))
                    item["family"] = 4 if proto == "ip" else 6
                    item["saddr"] = v4 if proto == "ip" else v6
                elif proto in PROTOS and field == "dport":
                    item["proto"] = proto
                    item["dports"] = sorted(int(v) for v in _values(right))
                elif proto == "icmp" and field == "type":
                    item["icmp"] = sorted(_values(right))
                elif proto == "icmpv6" and field == "type":
                    item["icmpv6"] = sorted(_values(right))
                else:
                    raise Unknown(json.dumps(body))
            else:
                raise Unknown(json.dumps(body))
        else:
            raise Unknown(json.dumps(expr))
    if item["icmpv6"]:
        item["proto"] = "ipv6-icmp"
    elif item["icmp"]:
        item["proto"] = "icmp"
    return item


def canonical(model):
    """A model with its lists sorted as the JSON reader gives them, for comparison."""
    rules = []
    for item in model["rules"]:
        item = dict(item)
        for key in ("ct", "icmp", "icmpv6", "dports"):
            if item[key]:
                item[key] = sorted(item[key])
        rules.append(item)
    return {"policy": model["policy"], "rules": rules}


def parse_ruleset(text):
    """``nft -j list ruleset`` -> {"tables": ["family name", ...], "input_chains": [...],
    "yoroi": model or None, "unknown": [why]} (``unknown``: rules of the Yoroi chain this
    reader cannot model; the table then differs from Yoroi's by definition)."""
    data = json.loads(text or '{"nftables": []}')
    tables, chains, rules = [], {}, []
    for entry in data.get("nftables", []):
        if "table" in entry:
            tables.append("%s %s" % (entry["table"]["family"], entry["table"]["name"]))
        elif "chain" in entry:
            chain = entry["chain"]
            chains[(chain["family"], chain["table"], chain["name"])] = chain
        elif "rule" in entry:
            rules.append(entry["rule"])
    input_chains = ["%s %s %s (priority %s, policy %s)" % (c["family"], c["table"], c["name"], c.get("prio"), c.get("policy"))
                    for c in chains.values() if c.get("hook") == "input"]
    result = {"tables": tables, "input_chains": input_chains, "yoroi": None, "unknown": []}
    ours = chains.get((FAMILY, TABLE, CHAIN))
    if "%s %s" % (FAMILY, TABLE) in tables:
        model = {"policy": None, "hook": None, "rules": [], "chains": sorted(
            name for (family, table, name) in chains if (family, table) == (FAMILY, TABLE))}
        if ours:
            model["policy"], model["hook"] = ours.get("policy"), ours.get("hook")
        for item in rules:
            if (item.get("family"), item.get("table"), item.get("chain")) != (FAMILY, TABLE, CHAIN):
                continue
            try:
                model["rules"].append(parse_rule(item))
            except Unknown as exc:
                result["unknown"].append(str(exc))
                model["rules"].append(dict(rule("(not Yoroi's: %s)" % str(exc)[:80], verdict="unknown")))
        result["yoroi"] = model
    return result


# --- judging a packet ----------------------------------------------------------------------


def _matches(item, saddr, proto, dport, iif, ct_state):
    if item["iif"] and item["iif"] != iif:
        return False
    if item["ct"] and ct_state not in item["ct"]:
        return False
    if item["family"] and item["family"] != saddr.version:
        return False
    if item["saddr"] is not None and not any(saddr in ipaddress.ip_network(n) for n in item["saddr"]):
        return False
    if item["proto"] and item["proto"] != proto:
        return False
    if item["dports"] is not None and dport not in item["dports"]:
        return False
    if item["icmp"] or item["icmpv6"]:
        return False  # only TCP and UDP are judged
    return True


def verdict_for(model, address, proto, dport, iif="eth0", ct_state="new"):
    """(verdict, index of the deciding rule or None for the policy, its name) for a new
    connection from ``address`` to ``proto``/``dport``. A rule this reader could not model
    ("unknown") decides nothing for sure: it is returned as such."""
    saddr = ipaddress.ip_address(address)
    if saddr.version == 6 and saddr.ipv4_mapped:
        saddr = saddr.ipv4_mapped
    for index, item in enumerate(model["rules"]):
        if item["verdict"] == "unknown":
            return "unknown", index, item["name"]
        if _matches(item, saddr, proto, int(dport), iif, ct_state) and item["verdict"]:
            return item["verdict"], index, item["name"]
    return model["policy"] or "accept", None, "policy"


def reaches(model, address, dport, proto="tcp"):
    """(True, how) when a new connection from ``address`` to ``dport`` is accepted; else
    (False, why). No Yoroi table (``model`` None) lets everything through as far as it goes."""
    if model is None:
        return True, "no Yoroi table"
    loopback = ipaddress.ip_address(address).is_loopback
    verdict, index, name = verdict_for(model, address, proto, dport, iif="lo" if loopback else "eth0")
    where = "policy %s" % verdict if index is None else "rule %d (%s)" % (index + 1, name)
    if verdict == "accept":
        return True, "accepted by %s" % where
    return False, "the firewall would drop %s from %s to port %s (%s)" % (proto, address, dport, where)


# --- the controls --------------------------------------------------------------------------


def _accepts_beyond(model):
    """Accepting rules that are neither essential nor management: (name, text) pairs."""
    out = []
    for item in model["rules"]:
        if item["verdict"] in ("accept", "unknown") and item["name"] not in ESSENTIAL + (MANAGEMENT,):
            out.append(render_rule(item) if item["verdict"] == "accept" else item["name"])
    return out


def evaluate(live, desired, management, ssh_ports, files_ok, files_note):
    """{control: (ok, actual)} for the live parsed ruleset (``live``: :func:`parse_ruleset`)
    against the ``desired`` model; ``files_ok``/``files_note``: the persisted part."""
    model = live.get("yoroi")
    result = {}
    if model is None:
        missing = "no table %s %s (tables: %s)" % (FAMILY, TABLE, ", ".join(live.get("tables") or []) or "none")
        for control in sorted(CONTROLS):
            result[control] = (False, missing)
        result["FWL-005"] = (False, missing + ("" if files_ok else "; " + files_note))
        return result
    ok1 = model.get("hook") == "input" and model.get("policy") == "drop"
    result["FWL-001"] = (ok1, "chain %s: hook %s, policy %s" % (CHAIN, model.get("hook"), model.get("policy"))
                         if model.get("hook") else "table %s %s has no input chain" % (FAMILY, TABLE))
    # FWL-002: every management source reaches every sshd port, and by a management rule
    # that comes before any rule of the allowlist
    problems = []
    first_other = next((i for i, item in enumerate(model["rules"])
                        if item["name"] not in ESSENTIAL + (MANAGEMENT,)), len(model["rules"]))
    for net in management:
        for number in ssh_ports:
            verdict, index, name = verdict_for(model, str(net.network_address), "tcp", number)
            if verdict != "accept":
                problems.append("%s to tcp/%s: %s" % (net, number, verdict if index is None else "%s by %s" % (verdict, name)))
            elif index is None or index > first_other:
                problems.append("%s to tcp/%s accepted by %s, not by a management rule first" % (net, number, name))
    if not management:
        problems.append("no management address")
    result["FWL-002"] = (not problems, "; ".join(problems) or "tcp/%s accepted from %s first" % (
        ",".join(str(p) for p in ssh_ports), ", ".join(str(n) for n in management)))
    extra = [text for text in _accepts_beyond(model) if text not in _accepts_beyond(desired)]
    missing = [text for text in _accepts_beyond(desired) if text not in _accepts_beyond(model)]
    bits = []
    if extra:
        bits.append("also accepted: %s" % "; ".join(extra))
    if missing:
        bits.append("missing: %s" % "; ".join(missing))
    result["FWL-003"] = (not bits, "; ".join(bits) or ("accepted besides management: %s" % ("; ".join(_accepts_beyond(model)) or "nothing")))
    logs = [item for item in model["rules"] if item["log"] and item["log"].get("prefix") == LOG_PREFIX]
    last = model["rules"][-1] if model["rules"] else None
    if not logs:
        result["FWL-004"] = (False, "no rule logs with the prefix %r" % LOG_PREFIX)
    elif not logs[-1]["log"].get("rate"):
        result["FWL-004"] = (False, "dropped packets logged without a rate limit")
    elif last is not logs[-1]:
        result["FWL-004"] = (False, "the log rule is not the chain's last rule")
    else:
        result["FWL-004"] = (True, "logged at most %s, prefix %r" % (logs[-1]["log"]["rate"], LOG_PREFIX))
    same = canonical({"policy": model.get("policy"), "rules": model["rules"]}) == canonical(desired)
    notes = [] if same else ["the live table differs from the site's ruleset"]
    if not files_ok:
        notes.append(files_note)
    result["FWL-005"] = (same and files_ok, "; ".join(notes) or files_note)
    return result


def differs(live, desired):
    """Whether the live Yoroi table is not the desired one (a load is needed)."""
    model = live.get("yoroi")
    if model is None or live.get("unknown") or model.get("hook") != "input" or model.get("chains") != [CHAIN]:
        return True
    return canonical({"policy": model.get("policy"), "rules": model["rules"]}) != canonical(desired)
