# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check every yoroi_ variable of a host against the collection's argument specs and rules.

Runs on the controller and touches no host. A variable that no role or site spec
declares (a typo such as yoroi_accounts_max_inactive_dayz), a value of the wrong type or
outside its choices, and a value that breaks one of the rules below all fail, naming the
variable.

The rules are data: each role's ``meta/input_rules.yml`` and the ``rules:`` section of
``meta/site_variables.yml``, one mapping per rule kind. A rule names a variable or a PATH
into it: ``[]`` is every element of a list, ``.field`` a field of a dict, ``{key}`` and
``{value}`` every key and every value of a dict (``yoroi_mfa_exemptions[].from[]``).

  ranges: {path: [low, high]}
      an integer from low to high, inclusive.
  off_or_at_least: {variable: n}
      0 (the feature is off) or at least n; for guard timeouts, which must outlast a
      fresh login or they roll a good change back.
  patterns: {path: regex}
      every string at the path matches the regular expression (re.match; end it with $).
  names: [path, ...]
      a user or group name as it lands in sshd_config (AllowGroups, Match User/Group),
      PAM (pam_succeed_if ``user in a:b``) and pam_access (``+:user:from``): letters,
      digits, ``_ . -``, starting with a letter or ``_``, at most 32 characters. So no
      whitespace or newline, no wildcard ``* ? [``, no ``!`` or ``,`` (sshd pattern
      lists), no ``@`` or ``:`` (user@host, PAM field separators), no parentheses
      (pam_access groups) and none of pam_access's keywords ALL, LOCAL, EXCEPT.
  addresses: [path, ...]
      an IPv4/IPv6 address or network (the ipaddress module, strict: no host bits set),
      never a /0 network (0.0.0.0/0, ::/0): that is every address.
  paths: {path: host_dir | host_file | host_program | controller_dir}
      absolute and normalized (no ``.``/``..``, ``//``, trailing ``/``; no ``~`` or ``$`` on
      the host; no newline, NUL or other control character). host_dir (a directory the
      role creates and sets to 0700) and controller_dir are never a shared system
      directory (``/``, ``/home``, ``/etc``, ``/var/backups`` ... see SHARED_DIRS);
      host_dir and host_file are never under a tree other users write to or own (/tmp,
      /home, ...) nor in /proc, /sys, /dev, /run, /usr, and a host_dir directly inside a
      package area (/etc, /var/lib, /opt, ...) has "yoroi" in its name.
  one_line: [path, ...]
      no newline, carriage return, NUL or other control character (tab allowed): the
      value is written into one line of sshd_config, PAM or a URI.
  text: [path, ...]
      may span lines (a banner file), but no NUL or other control character.
  sshd_keyword: [path, ...]
      an sshd_config keyword (letters and digits) that is neither Match nor Include nor
      one of the keywords the Yoroi drop-in manages.
  one_of_default: [variable, ...]
      a non-empty list whose every element is in the option's own default list in the
      role's argument spec: the algorithms the role considers strong.
  controller_ssh: {variable: cipher | mac | kex}
      when the host is reached with the ssh connection: the list keeps at least one
      algorithm that the controller's own OpenSSH client supports (``ssh -Q KIND``, run
      once per run and cached). Otherwise the fresh login that proves the change could
      not negotiate, and the change would only be caught by the rollback.
  strings: [path, ...]
      written as text, not as a number: YAML and INI inventories read an unquoted 7.10 as
      the number 7.1, which the ``str`` type would then silently turn into "7.1" (for
      firmware versions, where 7.10 and 7.1 differ).
  controller_files: {variable: advisories | kev}
      empty (none), or an absolute path on the controller to a file whose content is read
      (size-bounded) and checked now: ``advisories``, the appliance advisory file (YAML or
      JSON, schema in plugins/module_utils/_appliances.py); ``kev``, the CISA Known
      Exploited Vulnerabilities catalog in its published JSON. The message names the file.
  internal: [variable, ...]
      set by the roles themselves; refused from an inventory or -e. Every ``register:``
      and task ``vars:`` name in roles/*/tasks is internal too, without being listed.

A value of an option declared ``no_log`` in its argument spec (a password, credentials) is
checked like any other but never quoted in a message: ``********`` stands in its place.
"""

from __future__ import annotations

# The documentation (ansible-doc yoroi.baseline.validate_inputs) is in plugins/modules/validate_inputs.py.


import difflib
import functools
import glob
import hashlib
import ipaddress
import json
import os
import posixpath
import re
import subprocess
import tempfile

import yaml

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.yoroi.baseline.plugins.module_utils import _appliances
from ansible_collections.yoroi.baseline.plugins.module_utils._sshd import MANAGED_KEYS

try:
    _LOADER = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _LOADER = yaml.SafeLoader

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Keys of role argument specs that are documentation, not validation.
DOC_KEYS = frozenset(["description", "default", "version_added", "short_description"])
RULE_KINDS = ("ranges", "off_or_at_least", "patterns", "names", "addresses", "paths", "one_line",
              "text", "sshd_keyword", "one_of_default", "controller_ssh", "strings", "controller_files", "internal")

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
PAM_ACCESS_KEYWORDS = frozenset(["ALL", "LOCAL", "EXCEPT"])
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
TEXT_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
SSHD_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")

# Directories many things share: a role that creates its directory there and sets it to
# 0700 would lock everyone else out of it (archive_dir: /home made /home 0700).
SHARED_DIRS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run "
    "/sbin /srv /sys /tmp /usr /var /dev/shm /run/user".split()
    + ["/usr/" + d for d in "bin etc games include lib lib32 lib64 libexec local sbin share src".split()]
    + ["/usr/local/" + d for d in "bin etc games include lib man sbin share src".split()]
    + ["/var/" + d for d in "backups cache lib local lock log mail opt run spool tmp www".split()]
)
# Trees other users write to or own (a symlink planted there redirects a root write),
# and kernel, runtime and package trees no role writes into.
FOREIGN_TREES = ("/tmp", "/var/tmp", "/dev", "/home", "/run", "/proc", "/sys", "/usr", "/boot",
                 "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/mnt", "/media", "/var/mail")
# Where each directory belongs to some package: the role's own one says so by its name.
PACKAGE_AREAS = frozenset(["/etc", "/opt", "/srv", "/var/lib", "/var/cache", "/var/log", "/var/spool",
                           "/var/opt", "/usr/local/etc", "/usr/local/lib", "/usr/local/share"])
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
SSH_QUERY_KINDS = {"cipher": "cipher", "mac": "MAC", "kex": "key exchange algorithm"}


def _strip(option):
    clean = dict((k, v) for k, v in option.items() if k not in DOC_KEYS)
    if "options" in clean:
        clean["options"] = dict((n, _strip(o)) for n, o in clean["options"].items())
    return clean


def _load_yaml(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_LOADER) or {}


def _role_data(root, filename):
    """(role, parsed YAML) for every role that has meta/<filename>."""
    roles_dir = os.path.join(root, "roles")
    for role in sorted(os.listdir(roles_dir)):
        path = os.path.join(roles_dir, role, "meta", filename)
        if os.path.exists(path):
            yield role, _load_yaml(path)


def _role_options(root):
    """(owner, name, option) for every role's `main` entry point, then the site options."""
    for role, data in _role_data(root, "argument_specs.yml"):
        for name, option in data.get("argument_specs", {}).get("main", {}).get("options", {}).items():
            yield role, name, option
    site = _load_yaml(os.path.join(root, "meta", "site_variables.yml"))
    for name, option in (site.get("options") or {}).items():
        yield "site", name, option


# Read once per process and shared (callers must not change the result): every host
# of a run is checked against the same files.
@functools.lru_cache(maxsize=None)
def load_specs(root=COLLECTION_ROOT):
    """{variable: (owner, spec)} from every role's `main` entry point and the site spec."""
    specs = {}
    for owner, name, option in _role_options(root):
        specs.setdefault(name, (owner, _strip(option)))
    return specs


def load_defaults(root=COLLECTION_ROOT):
    """{variable: default} as the argument specs document them."""
    defaults = {}
    for _owner, name, option in _role_options(root):
        if "default" in option:
            defaults.setdefault(name, option["default"])
    return defaults


def _task_internals(tasks):
    """yoroi_ names that role tasks register or set in their `vars:` (blocks included)."""
    names = set()
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if isinstance(task.get("register"), str):
            names.add(task["register"])
        names.update(task.get("vars") or {})
        for section in ("block", "rescue", "always"):
            names |= _task_internals(task.get(section))
    return set(name for name in names if name.startswith("yoroi_"))


@functools.lru_cache(maxsize=None)
def load_rules(root=COLLECTION_ROOT):
    """{kind: {path: argument}} merged from every role's meta/input_rules.yml and the
    `rules:` of meta/site_variables.yml; list-valued kinds become {path: owner}. The
    defaults (for one_of_default) and the internal names found in role tasks are added."""
    rules = dict((kind, {}) for kind in RULE_KINDS)
    sources = list(_role_data(root, "input_rules.yml"))
    sources.append(("site", _load_yaml(os.path.join(root, "meta", "site_variables.yml")).get("rules") or {}))
    for owner, data in sources:
        unknown = set(data) - set(RULE_KINDS)
        if unknown:
            raise AnsibleError("input rules of %s: unknown rule kind %s" % (owner, ", ".join(sorted(unknown))))
        for kind in RULE_KINDS:
            entries = data.get(kind) or {}
            if isinstance(entries, list):
                entries = dict((path, owner) for path in entries)
            rules[kind].update(entries)
    rules["ranges"] = dict((name, tuple(bounds)) for name, bounds in rules["ranges"].items())
    for path in glob.glob(os.path.join(root, "roles", "*", "tasks", "*.yml")):
        role = path.split(os.sep)[-3]
        for name in _task_internals(_load_yaml(path) if os.path.getsize(path) else []):
            rules["internal"].setdefault(name, role)
    rules["defaults"] = load_defaults(root)
    return rules


# --- paths into a value ----------------------------------------------------------------------

_SEGMENT = re.compile(r"\[\]|\{key\}|\{value\}|\.[A-Za-z_][A-Za-z0-9_]*")


def _parse_path(path):
    match = re.match(r"^[A-Za-z_][A-Za-z0-9_]*", path)
    name, rest = match.group(0), path[match.end():]
    segments = _SEGMENT.findall(rest)
    if "".join(segments) != rest:
        raise AnsibleError("input rule path %r is not of the form var[].field{key}" % path)
    return name, segments


def resolve(values, path):
    """[(label, value)] for every value that ``path`` reaches in ``values``; a part of the
    path that does not fit the value (a wrong type, a missing field) reaches nothing."""
    name, segments = _parse_path(path)
    if name not in values:
        return []
    items = [(name, values[name])]
    for segment in segments:
        reached = []
        for label, item in items:
            if segment == "[]" and isinstance(item, list):
                reached += [("%s[%d]" % (label, i), element) for i, element in enumerate(item)]
            elif segment in ("{key}", "{value}") and isinstance(item, dict):
                for key in item:
                    if segment == "{key}":
                        reached.append(("%s key %r" % (label, key), key))
                    else:
                        reached.append(("%s[%r]" % (label, key), item[key]))
            elif segment.startswith(".") and isinstance(item, dict) and segment[1:] in item:
                reached.append(("%s%s" % (label, segment), item[segment[1:]]))
        items = reached
    return items


# --- one value, one rule ----------------------------------------------------------------------


def name_problem(text):
    if not isinstance(text, str):
        return None
    if text.upper() in PAM_ACCESS_KEYWORDS:
        return "%r is a pam_access keyword (it would match every account), not an account or group name" % text
    for chars, why in (
        (" \t\n\r\x0b\x0c\x00", "contains whitespace, a newline or NUL"),
        ("*?[]", "contains a wildcard, which sshd and pam_access would expand"),
        ("!", "contains '!', which negates an sshd pattern"),
        (",", "contains ',', which separates sshd pattern lists"),
        ("@:", "contains '@' or ':', which sshd and PAM read as user@host or a field separator"),
        ("()", "contains parentheses, which pam_access reads as a group"),
    ):
        if any(c in text for c in chars):
            return "%r %s" % (text, why)
    if not NAME.match(text):
        return ("%r is not an account or group name (letters, digits, '_', '.', '-', starting with a "
                "letter or '_', at most 32 characters)" % text)
    return None


def address_problem(text):
    if not isinstance(text, str):
        return None
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return "%r is not an IP address or network (CIDR)" % text
        return "%r has host bits set; the network is %s" % (text, loose)
    if network.prefixlen == 0:
        return "%r is every address; leave `from` empty to mean any address, or name the networks" % text
    return None


def _control_problem(text, pattern):
    if isinstance(text, str) and pattern.search(text):
        return "%r contains a newline, NUL or other control character" % (text,)
    return None


def path_problem(text, kind):
    if not isinstance(text, str):
        return None
    problem = _control_problem(text, CONTROL_CHARS)
    if problem:
        return problem
    in_home = kind == "controller_dir" and (text == "~" or text.startswith("~/"))
    bare = text[1:] if in_home else text  # "~/x" is judged as "/x" below the home directory
    if in_home and bare in ("", "/"):
        return "%r is the home directory itself; name a directory of its own below it" % text
    if not bare.startswith("/"):
        return "%r is not an absolute path" % text
    if kind != "controller_dir" and ("~" in text or "$" in text):
        return "%r contains '~' or '$', which are not expanded on the host" % text
    if posixpath.normpath(bare) != bare or bare.startswith("//"):
        return "%r is not normalized (write it as %s)" % (text, posixpath.normpath(text).replace("//", "/"))
    if in_home:
        return None
    if kind in ("host_dir", "controller_dir") and text in SHARED_DIRS:
        return "%r is a shared system directory; the role would change its mode" % text
    if kind == "controller_dir" and posixpath.dirname(text) in WORLD_WRITABLE:
        return "%r is directly in %s, where another user can create it first" % (text, posixpath.dirname(text))
    if kind in ("host_dir", "host_file"):
        for tree in FOREIGN_TREES:
            if text == tree or text.startswith(tree + "/"):
                return "%r is under %s, which is not the role's to write into" % (text, tree)
    if kind == "host_dir" and posixpath.dirname(text) in PACKAGE_AREAS and "yoroi" not in posixpath.basename(text):
        return ("%r is directly in %s, where every directory belongs to some package; name the role's own "
                "(for example %s/yoroi)" % (text, posixpath.dirname(text), posixpath.dirname(text)))
    return None


def keyword_problem(text):
    if not isinstance(text, str):
        return None
    if not SSHD_KEYWORD.match(text):
        return "%r is not an sshd_config keyword" % text
    if text.lower() in ("match", "include"):
        return "%s is not allowed in the drop-in" % text
    if text.lower() in set(key.lower() for key in MANAGED_KEYS):
        return "%s is managed by the role; set its own variable instead" % text
    return None


def controller_file_problem(text, kind):
    """Why the file ``text`` (advisories or kev) cannot be used, or None (also for "": none)."""
    if not isinstance(text, str) or text == "":
        return None
    if not os.path.isabs(text):
        return "%r is not an absolute path (the file is read on the controller)" % text
    try:
        _appliances.load(text, kind)
    except _appliances.InputError as exc:
        return str(exc)
    return None


def _one_of(values, path, defaults):
    errors = []
    strong = defaults.get(path)
    for label, item in resolve(values, path):
        if not isinstance(item, list) or not isinstance(strong, list):
            continue
        if not item:
            errors.append("%s is empty; name at least one of: %s" % (label, ", ".join(strong)))
        weak = [name for name in item if name not in strong]
        if weak:
            errors.append("%s: %s not among the strong ones the role allows (%s)" % (
                label, ", ".join(map(str, weak)), ", ".join(strong)))
    return errors


def _controller_ssh(values, path, kind, supported, defaults):
    errors = []
    if kind not in supported:
        return errors
    usable = [name for name in defaults.get(path) or [] if name in supported[kind]]
    for label, item in resolve(values, path):
        if isinstance(item, list) and item and not set(item) & set(supported[kind]):
            errors.append(
                "%s: the controller's OpenSSH client (ssh -Q %s) supports none of %s, so the fresh login "
                "that proves the change could not connect; keep one it supports: %s"
                % (label, kind, ", ".join(item), ", ".join(usable) or "(none of the strong ones)"))
    return errors


def _value_errors(kind, path, argument, values, raw, rules, controller):
    """Errors of one rule over the values its path reaches."""
    if kind == "one_of_default":
        return _one_of(values, path, rules.get("defaults") or {})
    if kind == "controller_ssh":
        return _controller_ssh(values, path, argument, controller or {}, rules.get("defaults") or {})
    checks = {
        "names": name_problem,
        "addresses": address_problem,
        "one_line": lambda text: _control_problem(text, CONTROL_CHARS),
        "text": lambda text: _control_problem(text, TEXT_CONTROL_CHARS),
        "sshd_keyword": keyword_problem,
        "paths": lambda text: path_problem(text, argument),
        "controller_files": lambda text: controller_file_problem(text, argument),
        "strings": lambda value: (None if value is None or isinstance(value, str)
                                  else "%r is not text; quote it (an unquoted 7.10 is read as the number 7.1)" % (value,)),
        "patterns": lambda text: (None if not isinstance(text, str) or re.match(argument, text)
                                  else "%r does not have the expected form (%s)" % (text, argument)),
    }
    # paths are judged as written: the spec's `path` type expands ~ and $VARS on the controller
    # strings are judged as written too: the spec's `str` type has already converted numbers
    source = raw if kind in ("paths", "strings") else values
    errors = []
    for label, item in resolve(source, path):
        if kind == "patterns" and not isinstance(item, str) and item is not None:
            item = str(item)
        problem = checks[kind](item)
        if problem:
            errors.append("%s: %s" % (label, problem))
    return errors


def check(values, specs, rules=None, controller=None):
    """Error messages for the yoroi_ variables in ``values`` (already templated).

    ``rules`` defaults to :func:`load_rules`; ``controller`` is {cipher|mac|kex: [names]}
    from the controller's ``ssh -Q`` when the connection is ssh, else None.
    """
    rules = load_rules() if rules is None else rules
    internal = rules.get("internal") or {}
    errors = []
    for name in sorted(values):
        if not name.startswith("yoroi_"):
            continue
        if name in internal:
            errors.append("%s is internal to the %s role (the roles set it themselves); it cannot be set "
                          "from an inventory or -e" % (name, internal[name]))
        elif name not in specs:
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = " (did you mean %s?)" % close[0] if close else ""
            errors.append("unknown variable %s%s" % (name, hint))
    argument_spec = dict((name, spec) for name, (owner, spec) in specs.items() if name in values and name not in internal)
    params = dict((name, values[name]) for name in argument_spec)
    result = ArgumentSpecValidator(argument_spec).validate(params)
    errors.extend(_named(result.error_messages, argument_spec))
    validated = result.validated_parameters
    for name, (low, high) in sorted((rules.get("ranges") or {}).items()):
        for label, value in resolve(validated, name):
            if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
                errors.append("%s must be from %d to %d, got %d" % (label, low, high, value))
    for name, least in sorted((rules.get("off_or_at_least") or {}).items()):
        value = validated.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < least:
            errors.append("%s must be 0 (off) or at least %d seconds, got %d: a shorter guard can roll a "
                          "good change back before the fresh login confirms it" % (name, least, value))
    for kind in ("patterns", "names", "addresses", "paths", "one_line", "text", "sshd_keyword",
                 "one_of_default", "controller_ssh", "strings", "controller_files"):
        for path, argument in sorted((rules.get(kind) or {}).items()):
            errors.extend(_value_errors(kind, path, argument, validated, params, rules, controller))
    return redact(errors, secrets_of(values, specs))


def _named(messages, names):
    """Ansible's argument-spec messages, each starting with the variable it is about
    ("yoroi_x: argument 'yoroi_x' is of type str ..."). A message that names none (the
    bare detail Ansible adds beside a nested option's message) is left out when another
    message names the variable."""
    named, bare = [], []
    for message in messages:
        found = sorted((name for name in names if re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(name),
                                                            message)), key=len, reverse=True)
        if not found:
            bare.append(message)
        elif message.startswith(found[0]):
            named.append(message)
        else:
            named.append("%s: %s" % (found[0], message))
    return list(dict.fromkeys(named if named else bare))


def secrets_of(values, specs):
    """The values of options declared ``no_log`` (a password, the values of a dict of
    credentials): an error message never quotes them."""
    found = []
    for name, (_owner, spec) in specs.items():
        if not spec.get("no_log") or name not in values:
            continue
        value = values[name]
        items = value.values() if isinstance(value, dict) else [value]
        found.extend(str(item) for item in items if item not in (None, "") and not isinstance(item, bool))
    return found


def redact(errors, secrets):
    """``errors`` with every secret replaced by ********: as %r quotes it (how the messages
    show values), and as written when it is long enough not to be a common word part."""
    for secret in sorted(secrets, key=len, reverse=True):
        errors = [error.replace(repr(secret), "'********'") for error in errors]
        if len(secret) >= 4:
            errors = [error.replace(secret, "********") for error in errors]
    return errors


def default_account_errors(values, ansible_user):
    """When yoroi_automation_account is not set, the roles default it to ansible_user: that
    name lands in sshd_config and PAM too, so it is held to the same rule."""
    if "yoroi_automation_account" in values or not isinstance(ansible_user, str):
        return []
    problem = name_problem(ansible_user)
    return ["yoroi_automation_account (its default, ansible_user): %s" % problem] if problem else []


# --- the controller's SSH client -----------------------------------------------------------


def parse_ssh_query(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def query_ssh(ssh="ssh", run=subprocess.run):
    """{cipher|mac|kex: [names]} from ``ssh -Q``; None when the client cannot be asked."""
    supported = {}
    for kind in SSH_QUERY_KINDS:
        try:
            proc = run([ssh, "-Q", kind], capture_output=True, check=False, text=True, timeout=30,
                       env=dict(os.environ, LC_ALL="C"))
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode != 0:
            return None
        supported[kind] = parse_ssh_query(proc.stdout)
    return supported


def cached_ssh_query(ssh, cache_dir, run=subprocess.run):
    """:func:`query_ssh`, once per run: the answer is kept in ``cache_dir`` (Ansible's
    per-run controller directory, which every fork shares), keyed by the client's path."""
    key = hashlib.sha256(os.path.realpath(ssh).encode()).hexdigest()[:16] if os.sep in ssh else ssh
    path = os.path.join(cache_dir, "yoroi-ssh-query-%s.json" % re.sub(r"[^A-Za-z0-9_.-]", "_", key))
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        pass
    supported = query_ssh(ssh, run)
    if supported is not None:
        try:
            handle, temp = tempfile.mkstemp(dir=cache_dir, prefix=".yoroi-ssh-query-")
            with os.fdopen(handle, "w") as out:
                json.dump(supported, out)
            os.replace(temp, path)
        except OSError:
            pass
    return supported


def ssh_client(connection):
    """The ssh executable when ``connection`` is Ansible's ssh plugin (or one like it), else None."""
    if connection is None or getattr(connection, "transport", None) != "ssh":
        return None
    try:
        return connection.get_option("ssh_executable") or "ssh"
    except (KeyError, AnsibleError):
        return "ssh"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        specs = load_specs()
        values = {}
        for name in task_vars:
            if not name.startswith("yoroi_"):
                continue
            try:
                values[name] = self._templar.template(task_vars[name])
            except AnsibleError as exc:
                result.update(failed=True, msg="variable %s cannot be templated: %s" % (name, exc))
                return result
        warnings = []
        controller = None
        ssh = ssh_client(self._connection)
        if ssh:
            from ansible import constants as C

            controller = cached_ssh_query(ssh, C.DEFAULT_LOCAL_TMP)
            if controller is None:
                warnings.append("could not ask the controller's SSH client (%s -Q) which algorithms it "
                                "supports; the algorithm lists were not compared with it" % ssh)
        errors = check(values, specs, load_rules(), controller)
        try:
            errors += default_account_errors(values, self._templar.template(task_vars.get("ansible_user")))
        except AnsibleError:
            pass  # the connection reports an ansible_user it cannot use
        # Reports roll up by site: the inventory's yoroi_site, else the host's first group.
        groups = [g for g in task_vars.get("group_names", []) if g not in ("all", "ungrouped")]
        result["site"] = values.get("yoroi_site") or (groups[0] if groups else "default")
        # (appliances have no accounts Yoroi manages)
        if not errors and not values.get("yoroi_break_glass_accounts") and "appliances" not in groups:
            # Unused emergency accounts look exactly like stale ones; undeclared, they
            # would be locked by the accounts role.
            warnings.append(
                "no break-glass account is declared (yoroi_break_glass_accounts): an unused "
                "emergency account would be treated as stale"
            )
        if warnings:
            result["warnings"] = warnings
        if errors:
            result.update(failed=True, msg="invalid Yoroi inputs: " + "; ".join(errors), errors=errors)
        else:
            result.update(changed=False, msg="%d yoroi_ variables checked" % len(values))
        return result


# ansible-playbook imports this plugin in its main process before it forks a worker per
# host; reading the files here lets every worker inherit them instead of parsing them
# again. A failure is left to run(), which reports it.
try:
    load_specs()
    load_rules()
except (OSError, yaml.YAMLError):
    pass
