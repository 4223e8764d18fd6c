"""Known benign BITS users (browser, Office and Windows updaters), matched on evidence together.

An entry matches only when the creator image, the owner SID, the job name and the host
of every remote file all match it: attackers copy job names, so a name alone is
never enough. A match lowers a finding's severity; it never hides a notify command.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from . import paths
from .conditions import ConditionError, line_of
from .fields import View

ENTRY_KEYS = ("name", "creator", "owner", "job_name", "hosts", "description")
REQUIRED_KEYS = ("name", "creator", "owner", "job_name", "hosts")


@dataclass
class AllowEntry:
    name: str
    creator: list[str]          # globs over the normalised creator image
    owner: list[str]            # globs over the owner SID
    job_name: list[str]         # globs over the display name (case-insensitive)
    hosts: list[str]            # domains: the host or any subdomain
    description: str = ""
    source: str = ""
    line: int | None = None

    def creator_matches(self, creator: str | None) -> bool:
        return bool(creator) and any(fnmatchcase(creator, pattern) for pattern in self.creator)

    def matches(self, job: View, files: list[View]) -> bool:
        if not self.creator_matches(job.get("creator_image")):
            return False
        owner = job.get("owner_sid") or ""
        if not any(fnmatchcase(owner.upper(), pattern.upper()) for pattern in self.owner):
            return False
        name = (job.get("display_name") or "").casefold()
        if not any(fnmatchcase(name, pattern.casefold()) for pattern in self.job_name):
            return False
        hosts = [f.get("files.remote_host") for f in files]
        if not hosts or not all(h and any(h == d or h.endswith("." + d) for d in self.hosts) for h in hosts):
            return False
        return True


def compile_entry(node: Any, source: str) -> AllowEntry:
    line = line_of(node)
    if not isinstance(node, dict):
        raise ConditionError("an allow-list entry must be a mapping", line)
    unknown = set(node) - set(ENTRY_KEYS)
    if unknown:
        raise ConditionError(f"unknown allow-list key {sorted(unknown)[0]!r} (keys: {', '.join(ENTRY_KEYS)})", line)
    missing = [k for k in REQUIRED_KEYS if k not in node]
    if missing:
        raise ConditionError(f"allow-list entry {node.get('name', '?')!r} lacks {', '.join(missing)}: an entry "
                             "matches creator, owner, job name and hosts together, never the name alone", line)

    def strings(key: str) -> list[str]:
        value = node[key]
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(i, str) and i.strip() for i in items):
            raise ConditionError(f"allow-list {key!r} must be a non-empty string or list of strings", line)
        return items

    creator = [paths.normalise_path(p) or "" for p in strings("creator")]
    hosts = [h.lower().strip(".") for h in strings("hosts")]
    if any(p.strip("*") == "" for p in creator) or any(h.strip("*") == "" for h in hosts):
        raise ConditionError("allow-list creator and hosts must name something (a bare '*' would trust any job)",
                             line)
    return AllowEntry(name=str(node["name"]), creator=creator, owner=strings("owner"),
                      job_name=strings("job_name"), hosts=hosts, description=str(node.get("description", "")),
                      source=source, line=line)
