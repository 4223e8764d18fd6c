"""Known benign BITS users, matched so that what an attacker controls cannot satisfy an entry.

Who creates a job (its creator image), from where (the URL host), to where (the
destination) and as whom (the owner) are matched together. An attacker who can run code
as a user controls the job name, the URL, the destination and any program in a
user-writable folder, but not the contents of admin-only folders, so:

* an entry whose creators all lie in admin-only folders (`scope: machine`) matches when the
  creator, the owner and, for every file the record still has, the host and destination
  match (a record without its file records matches with lower confidence);
* an entry with a creator in a user-writable folder (`scope: user`: per-user updaters) needs
  every fact: creator, owner, and at least one file, every one of them from the vendor's
  hosts into the vendor's folders;
* records without a creator (legacy state files, damaged records) match an entry only
  through a listed job name together with the owner, hosts and destinations of every file;
* hosts are exact names or `*.domain` (listed subdomains). A host or domain that serves
  anyone's content (USER_CONTENT_LISTS), and a wildcard over a broad parent domain
  (`$broad_domains`), are refused when the file loads; `site` (the site's own servers, for
  products whose servers each site runs: WSUS, ConfigMgr) is accepted only when every creator
  and destination is admin-only, and matches a private address, an intranet name or any
  other domain name that serves no one else's content and imitates no vendor host, never a
  public IP address;
* job names never count on their own.

A match lowers rule hits; `notify_commands` lists the only notify commands (exact program
and arguments, documented Windows components) that lower a notify hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase, translate
from functools import cached_property, lru_cache
from typing import Any

from . import paths
from .conditions import ConditionError, check_mapping
from .fields import View

ENTRY_KEYS = ("name", "vendor", "source", "description", "creator", "owner", "hosts", "destinations", "job_name",
              "legacy_job_name", "types")
ENTRY_REQUIRED = ("name", "source", "owner", "hosts", "destinations")
NOTIFY_KEYS = ("name", "source", "program", "parameters", "owner")
OWNER_TOKENS = {"system": "S-1-5-18", "local_service": "S-1-5-19", "network_service": "S-1-5-20",
                "user": "S-1-5-21-*"}
JOB_TYPES = ("DOWNLOAD", "UPLOAD", "UPLOAD_REPLY")
SITE = "site"
#: Named lists (builtin.yaml) of hosts that serve anyone's content: never trusted by an entry.
USER_CONTENT_LISTS = ("paste_sites", "file_sharing_hosts", "image_hosts", "code_hosting_hosts", "cloud_storage_hosts",
                      "dynamic_dns")
#: Locations an entry may trust its creator in without further facts (nothing a standard user can write).
ADMIN_ONLY = ("admin", "system")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")

MATCH, MISMATCH, UNKNOWN = "match", "mismatch", "unknown"


@dataclass
class Check:
    """How one entry fared against one job: each fact, and the outcome."""

    entry: AllowEntry
    facts: dict[str, str]
    matched: bool
    files_known: bool = True
    why: str = ""
    site_hosts: bool = False        # some host matched only as one of the site's own servers (unverified)

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.entry.name, "scope": self.entry.scope, "matched": self.matched,
                "files_known": self.files_known, "site_hosts": self.site_hosts, "facts": dict(self.facts),
                "why": self.why, "source": self.entry.source}


@dataclass
class AllowEntry:
    name: str
    source: str                   # where the vendor behaviour is documented
    owner: list[str]              # SID globs
    hosts: list[str]              # exact hosts, *.domain, or site
    destinations: list[str]       # globs over normalised local paths
    creator: list[str] = field(default_factory=list)        # globs over normalised creator images
    job_name: list[str] = field(default_factory=list)       # globs (case-insensitive); empty: any
    legacy_job_name: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=lambda: ["DOWNLOAD"])
    vendor: str = ""
    description: str = ""
    scope: str = "machine"        # machine: admin-only creators | user: a creator in a user-writable folder
    file: str = ""
    line: int | None = None

    # ---------------------------------------------------------------- facts

    @cached_property
    def _creator_rx(self) -> re.Pattern:
        return _globs(self.creator)

    @cached_property
    def _destination_rx(self) -> re.Pattern:
        return _globs(self.destinations)

    def creator_matches(self, creator: str | None) -> bool:
        return bool(creator) and self._creator_rx.match(creator) is not None

    @cached_property
    def _owner_rx(self) -> re.Pattern:
        return _globs([pattern.upper() for pattern in self.owner])

    @cached_property
    def _listed_hosts(self) -> dict[str | None, bool]:
        """Host -> listed, remembered: every job of a fleet is checked against every entry."""
        return {}

    def owner_matches(self, owner: str | None) -> bool:
        return bool(owner) and self._owner_rx.match(owner.upper()) is not None

    def listed_host(self, view: View) -> bool:
        host = view.get("files.remote_host")
        known = self._listed_hosts.get(host)
        if known is None:
            if len(self._listed_hosts) >= 4096:
                self._listed_hosts.clear()
            known = self._listed_hosts[host] = any(paths.host_matches(host, pattern) for pattern in self.hosts
                                                   if pattern != SITE)
        return known

    def host_matches(self, view: View) -> bool:
        return self.listed_host(view) or (SITE in self.hosts and site_host(view))

    def destination_matches(self, view: View) -> bool:
        local = view.get("files.local_name")
        return bool(local) and self._destination_rx.match(local) is not None

    @staticmethod
    def _name_in(name: str | None, patterns: list[str]) -> bool:
        return _folded_globs(tuple(patterns)).match((name or "").casefold()) is not None

    @cached_property
    def specific_names(self) -> list[str]:
        """Name patterns specific enough that copying them is telling (6+ literal characters)."""
        return [p for p in self.job_name + self.legacy_job_name if len(re.sub(r"[*?\[\]]", "", p)) >= 6]

    @cached_property
    def creator_names(self) -> set[str]:
        """File names of the creator patterns that contain no wildcard."""
        names = {paths.basename(p) for p in self.creator}
        return {n for n in names if n and not re.search(r"[*?\[]", n)}

    # ---------------------------------------------------------------- decision

    def check(self, job: View, files: list[View]) -> Check:
        facts: dict[str, str] = {}
        creator = job.get("creator_image")
        facts["creator"] = UNKNOWN if not creator else MATCH if self.creator_matches(creator) else MISMATCH
        owner = job.get("owner_sid")
        facts["owner"] = UNKNOWN if not owner else MATCH if self.owner_matches(owner) else MISMATCH
        facts["type"] = MATCH if (job.get("type") or "DOWNLOAD") in self.types else MISMATCH
        if self.job_name:
            facts["job_name"] = MATCH if self._name_in(job.get("display_name"), self.job_name) else MISMATCH
        site_only = False
        if files:
            facts["hosts"] = MATCH if all(self.host_matches(f) for f in files) else MISMATCH
            site_only = facts["hosts"] == MATCH and not all(self.listed_host(f) for f in files)
            facts["destinations"] = MATCH if all(self.destination_matches(f) for f in files) else MISMATCH
        else:
            facts["hosts"] = facts["destinations"] = UNKNOWN
        if facts["creator"] == UNKNOWN:
            # No creator (legacy state file, or ignored as damaged): a listed name with every other fact.
            facts["legacy_job_name"] = (MATCH if self.legacy_job_name
                                        and self._name_in(job.get("display_name"), self.legacy_job_name)
                                        else MISMATCH)
            needed = ("legacy_job_name", "owner", "type", "hosts", "destinations")
            matched = all(facts[k] == MATCH for k in needed)
            why = "no creator image: matched on job name, owner, hosts and destinations together" if matched \
                else "no creator image, and not every one of job name, owner, hosts, destinations matches"
            return Check(self, facts, matched, bool(files), why, site_only)
        if not self.creator:
            return Check(self, facts, False, bool(files), "the entry is for records without a creator image",
                         site_only)
        core = [k for k in ("creator", "owner", "type", "job_name") if k in facts]
        failed = [k for k in core if facts[k] != MATCH]
        failed += [k for k in ("hosts", "destinations") if facts[k] == MISMATCH]
        if failed:
            return Check(self, facts, False, bool(files), "does not match: " + ", ".join(failed), site_only)
        if not files and self.scope == "user":
            return Check(self, facts, False, False,
                         "per-user updater: without the file records the hosts and destinations cannot be checked")
        if not files:
            return Check(self, facts, True, False, "creator and owner match; the file records are missing")
        why = "creator, owner and destinations match; hosts are taken for the site's own servers (unverified)" \
            if site_only else "creator, owner, hosts and destinations match"
        return Check(self, facts, True, True, why, site_only)


@dataclass
class NotifyCommand:
    """A notify command of a documented Windows component: program and arguments, exactly."""

    name: str
    source: str
    program: str                  # normalised path
    parameters: list[str]         # accepted argument strings (normalised whitespace, lower case)
    owner: list[str]
    file: str = ""
    line: int | None = None

    def matches(self, job: View) -> bool:
        if job.get("notify_image") != self.program:
            return False
        owner = (job.get("owner_sid") or "").upper()
        if not any(fnmatchcase(owner, pattern.upper()) for pattern in self.owner):
            return False
        return command_arguments(job) in self.parameters


@lru_cache(maxsize=256)
def _folded_globs(patterns: tuple[str, ...]) -> re.Pattern:
    """Case-folded globs as one regex (for case-folded text)."""
    return _globs([pattern.casefold() for pattern in patterns])


def _globs(patterns: list[str]) -> re.Pattern:
    """One regex for a list of globs (fnmatch semantics: * crosses backslashes), never matching when empty."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns), re.DOTALL)


def site_host(view: View) -> bool:
    """A file's host could be one of the site's own servers: an intranet address or name, or a
    domain name that serves no one else's content and imitates no vendor host (never a public
    IP address, whose owner nothing tells)."""
    host = view.get("files.remote_host")
    if not host:
        return False
    if view.get("files.remote_host_intranet"):
        return True
    return not (view.get("files.remote_host_is_ip") or view.get("files.remote_user_content")
                or view.get("files.remote_host_lookalike"))


def command_arguments(job: View) -> str:
    """The arguments of a notify command without the program (bitsadmin repeats it as argv[0])."""
    program = job.get("notify_program")
    parameters = paths.deobfuscate_command(job.get("notify_parameters")) or ""
    tokens = paths.split_command(parameters)
    if not program and tokens:                       # the program is the first token of the parameters
        tokens = tokens[1:]
    elif tokens and paths.basename(paths.normalise_path(tokens[0])) == job.get("notify_image_name"):
        tokens = tokens[1:]
    return " ".join(tokens)


# --------------------------------------------------------------------------- loading


def _strings(node: dict, key: str, line: int | None, required: bool = True) -> list[str]:
    if key not in node:
        if required:
            raise ConditionError(f"missing {key!r}", line)
        return []
    value = node[key]
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise ConditionError(f"{key!r} must be a non-empty string or list of strings", line)
    return [i.strip() for i in items]


def _owners(node: dict, line: int | None) -> list[str]:
    owners = []
    for item in _strings(node, "owner", line):
        if item.lower() in OWNER_TOKENS:
            owners.append(OWNER_TOKENS[item.lower()])
        elif re.fullmatch(r"S-1-[0-9*?-]+", item, re.I) and item.strip("*?-") and item.upper() != "S-1-*":
            owners.append(item.upper())
        else:
            raise ConditionError(f"owner {item!r} is not a SID (glob) or one of {', '.join(OWNER_TOKENS)}", line)
    return owners


def _path_patterns(node: dict, key: str, line: int | None, required: bool = True) -> list[str]:
    out = []
    for item in _strings(node, key, line, required):
        pattern = paths.normalise_path(item) or ""
        if not re.match(r"^([a-z?]:\\|\\\\)", pattern) or not re.search(r"\\[^*?\[\\]+\\", pattern):
            raise ConditionError(f"{key} {item!r} must be an absolute path naming at least one folder (a "
                                 "leading * would trust any location)", line)
        out.append(pattern)
    return out


def _refused_host(host: str, lists: dict[str, list[Any]]) -> str | None:
    """Why `host` (exact or *.domain) cannot be trusted, or None."""
    base = host[2:] if host.startswith("*.") else host
    for content in (str(c).lower() for name in USER_CONTENT_LISTS for c in lists.get(name, [])):
        if paths.in_domain(base, content) or (host.startswith("*.") and paths.in_domain(content, base)):
            return f"{host!r} covers {content}, which serves anyone's content"
    if host.startswith("*.") and base in {str(d).lower() for d in lists.get("broad_domains", [])}:
        return f"{host!r} trusts every subdomain of {base}, a parent domain of many unrelated services: list " \
               "the vendor's own update hosts"
    return None


def _hosts(node: dict, line: int | None, lists: dict[str, list[Any]]) -> list[str]:
    hosts = []
    for item in _strings(node, "hosts", line):
        host = item.lower().rstrip(".")
        if host == SITE:
            hosts.append(host)
            continue
        if not _HOST.match(host) and not paths.host_is_ip(host):
            raise ConditionError(f"host {item!r} is neither a host name, '*.domain' nor 'site'", line)
        refused = _refused_host(host, lists)
        if refused:
            raise ConditionError(refused, line)
        hosts.append(host)
    return hosts


def _pattern_location(pattern: str) -> paths.Location:
    """Where everything a glob can match lies: the location of its literal folder part."""
    prefix = paths.pattern_prefix(pattern)
    return paths.locate(prefix + "x" if prefix.endswith("\\") else prefix) or paths.UNKNOWN_LOCATION


def _scope(creators: list[str]) -> str:
    for pattern in creators:
        location = _pattern_location(pattern)
        if location.kind not in ADMIN_ONLY or location.writable is not False:
            return "user"
    return "machine"


def compile_entry(node: Any, source: str, lists: dict[str, list[Any]]) -> AllowEntry:
    """One allow-list entry, checked strictly; ConditionError names the problem."""
    line = check_mapping(node, "an allow-list entry", ENTRY_KEYS)
    missing = [k for k in ENTRY_REQUIRED if k not in node]
    if missing:
        raise ConditionError(f"lacks {', '.join(missing)}: an entry matches creator, owner, hosts and "
                             "destinations together, never the job name alone", line)
    if "creator" not in node and "legacy_job_name" not in node:
        raise ConditionError("needs 'creator' (or, for records without one, 'legacy_job_name')", line)
    creators = _path_patterns(node, "creator", line, required=False)
    scope = _scope(creators)
    hosts = _hosts(node, line, lists)
    destinations = _path_patterns(node, "destinations", line)
    if SITE in hosts:
        loose = [d for d in destinations if _pattern_location(d).writable is not False]
        if scope != "machine" or not creators or loose:
            raise ConditionError("'site' hosts are accepted only with admin-only creators and destinations"
                                 + (f" ({loose[0]!r} is user-writable)" if loose else ""), line)
    types = [t.upper() for t in _strings(node, "types", line, required=False)] or ["DOWNLOAD"]
    if any(t not in JOB_TYPES for t in types):
        raise ConditionError(f"types must be among {', '.join(JOB_TYPES)}", line)
    names = _strings(node, "job_name", line, required=False)
    legacy = _strings(node, "legacy_job_name", line, required=False)
    if any(n.strip("*") == "" for n in legacy):
        raise ConditionError("legacy_job_name must name something: without a creator the name is one of the "
                             "facts that must match", line)
    return AllowEntry(name=str(node["name"]), source=str(node["source"]), owner=_owners(node, line), hosts=hosts,
                      destinations=destinations, creator=creators, job_name=names, legacy_job_name=legacy,
                      types=types, vendor=str(node.get("vendor", "")), description=str(node.get("description", "")),
                      scope=scope, file=source, line=line)


def compile_notify_command(node: Any, source: str, lists: dict[str, list[Any]]) -> NotifyCommand:
    line = check_mapping(node, "a notify command entry", NOTIFY_KEYS, ("name", "source", "program", "owner"))
    program = paths.normalise_path(str(node["program"])) or ""
    location = paths.locate(program)
    if re.search(r"[*?\[]", program) or location is None or location.kind != "system" or location.writable:
        raise ConditionError(f"program {node['program']!r} must be one exact Windows component in System32", line)
    if paths.basename(program) in {str(name).lower() for name in lists.get("lolbins", [])}:
        raise ConditionError(f"program {node['program']!r} is a shell or LOLBin: a notify command that starts "
                             "one is never lowered", line)
    raw = node.get("parameters", "")
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, str) for i in items):
        raise ConditionError("parameters must be a string or a list of strings (exact arguments)", line)
    parameters = [" ".join(paths.split_command(paths.deobfuscate_command(i) or "")) for i in items]
    return NotifyCommand(name=str(node["name"]), source=str(node["source"]), program=program,
                         parameters=parameters, owner=_owners(node, line), file=source, line=line)
