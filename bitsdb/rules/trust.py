"""Which fields of a damaged record rules may believe.

A partial record keeps the fields decoded before its damage point (FORMAT.md §9). Two
kinds of damage leave decoded fields that are not the record's own:

* the walk stopped in a section ("stopped at trailer: ..."): that section's prefix was
  parsed from bytes that no longer follow the format, so the section and everything after
  it are ignored;
* another record was written over this one ("overwritten: another job record starts N
  bytes after the marker"): every section that ends after byte N was decoded from the
  other record's bytes, however well it parsed. Section ends are measured by building each
  decoded section again with its own schema (formats/job.py), so the offsets come from the
  format, not from guesses.

Rules then see those fields as absent, and the verdict's confidence says which were
ignored. Damage after the last field (extra bytes, a missing footer) costs nothing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..decode.job import job_to_sections
from ..formats import job as job_fmt
from ..model import Job, JobFile

#: Job attributes filled from each section of a job record (ESE and legacy use the same names).
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "header": ("type", "state", "priority"),
    "strings": ("display_name", "description", "notify_program", "notify_parameters", "owner_sid", "owner_name",
                "notify_flags"),
    "owner": ("security",),
    "file_list": ("file_ids", "files", "missing_file_ids"),
    "errors": ("errors",),
    "counters": ("transient_error_count", "min_retry_delay", "no_progress_timeout", "creation_time",
                 "modification_time", "modification_time_2", "completion_time", "inactivity_base_time",
                 "expiration_time"),
    "timers": ("timers",),
    "network": ("proxy_usage", "proxy_list", "proxy_bypass", "file_acl_flags", "custom_headers", "security_flags",
                "max_download_time"),
    "trailer": ("cost_flags", "network_guid", "creator_image", "http_method", "aux_string"),
}
SECTION_ORDER = tuple(name for name, _ in job_fmt.ESE_JOB_SECTIONS)
#: Fields whose loss can hide what a job does (the verdict's confidence drops to low).
DECISIVE_SECTIONS = ("strings", "owner", "file_list", "trailer")

_STOPPED = re.compile(r"stopped at (\w+):")
_OVERWRITTEN = re.compile(r"overwritten: another job record starts (\d+) bytes after the marker")
_FILE_DAMAGE = re.compile(r"^(?:file body|overwritten)")


@dataclass
class Trust:
    """What of a record the rules could not believe, and why."""

    ignored_sections: list[str] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)
    ignored_files: int = 0
    reason: str | None = None

    @property
    def complete(self) -> bool:
        return not self.ignored_sections and not self.ignored_files

    @property
    def decisive(self) -> bool:
        """A section that can change a verdict was ignored."""
        return bool(set(self.ignored_sections) & set(DECISIVE_SECTIONS)) or self.ignored_files > 0


def _from(section: str) -> list[str]:
    return list(SECTION_ORDER[SECTION_ORDER.index(section):]) if section in SECTION_ORDER else []


def section_ends(job: Job) -> dict[str, int]:
    """Byte offset (from the record's first marker) at which each section of `job` ends."""
    values = job_to_sections(job)
    offset = 16 if job.outer_marker else 0
    ends = {}
    for name, schema in job_fmt.ESE_JOB_SECTIONS:
        offset += len(schema.build(values[name]))
        ends[name] = offset
    return ends


def ignored_sections(job: Job) -> list[str]:
    """The sections of a partial record whose decoded values are not the record's own."""
    if not job.partial or not job.partial_reason:
        return []
    reason = job.partial_reason
    ignored: list[str] = []
    stopped = _STOPPED.search(reason)
    if stopped:
        ignored = _from(stopped.group(1))
    overwritten = _OVERWRITTEN.search(reason)
    if overwritten:
        cut = int(overwritten.group(1))
        try:
            ends = section_ends(job)
        except Exception:                  # values that no longer build: trust only the head
            ends = {}
        first = next((name for name in SECTION_ORDER if ends.get(name, cut + 1) > cut), None)
        if first is not None and (not ignored or SECTION_ORDER.index(first) < SECTION_ORDER.index(ignored[0])):
            ignored = _from(first)
    return ignored


def file_is_damaged(jf: JobFile) -> bool:
    """A file record whose names were decoded past its damage point."""
    return bool(jf.partial and jf.partial_reason and _FILE_DAMAGE.search(jf.partial_reason))


def trusted_view_of(job: Job) -> tuple[Job, Trust]:
    """A copy of `job` without the fields rules may not believe, and what was left out."""
    sections = ignored_sections(job)
    trust = Trust(ignored_sections=sections, reason=job.partial_reason if job.partial else None)
    changes: dict[str, object] = {}
    for section in sections:
        for name in SECTION_FIELDS.get(section, ()):
            if getattr(job, name) not in (None, [], ""):
                trust.ignored_fields.append(name)
            changes[name] = [] if isinstance(getattr(job, name), list) else None
    if "files" not in changes:
        kept = [f for f in job.files if not file_is_damaged(f)]
        trust.ignored_files = len(job.files) - len(kept)
        if trust.ignored_files:
            changes["files"] = kept
    if not changes:
        return job, trust
    return dataclasses.replace(job, **changes), trust
