"""From carved hits to history: one record per job version, files linked, live rows preferred.

A version is (job id, modification time) (FORMAT.md §9.2 step 5): copies of the same
version found in several pages or logs collapse into one record; different
modification times of the same job stay separate, so state changes over time show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..model import Job, JobFile, JobState, Location, Provenance
from .scanner import CarvedRecord

VersionKey = tuple[str, "int | None"]


@dataclass
class Located:
    """A carved record with the provenance it will be reported with; `rank` orders sources."""

    carved: CarvedRecord
    provenance: Provenance
    rank: int = 0


@dataclass
class History:
    jobs: list[Job] = field(default_factory=list)             # distinct versions, by job id then time
    orphan_files: list[JobFile] = field(default_factory=list)  # distinct carved files no version claims
    job_records: int = 0
    file_records: int = 0
    job_ids: int = 0
    versions: int = 0                                          # distinct (job id, modification time)
    linked_files: int = 0
    warnings: list[str] = field(default_factory=list)


def version_key(job: Job) -> VersionKey:
    return (job.job_id or "", job.modification_time or 0)     # unset and 0 are the same time


def content_key(record: Job | JobFile, *, ignore_id: bool = False) -> str:
    """The record's decoded content without where it was found: equal keys = identical copies."""
    data = record.to_dict()
    data.pop("provenance", None)
    data.pop("files", None)
    data.pop("missing_file_ids", None)
    if ignore_id:
        data.pop("file_id", None)
    return repr(_sorted(data))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _sorted(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_sorted(v) for v in value)
    return value


def _variants(copies: list[Located]) -> list[tuple[str, Job, list[Location]]]:
    """(content, record, places) per distinct content among the complete copies: the best copy of
    each, and where every identical copy lies; partial copies only stand in when no complete copy
    of the version exists."""
    copies = sorted(copies, key=_preference)
    complete = [c for c in copies if not c.carved.record.partial]
    if not complete:
        best = copies[0].carved.record
        return [(content_key(best), best, [Location.of(copies[0].provenance)])]
    by_content: dict[str, list[Located]] = {}
    for item in complete:
        by_content.setdefault(content_key(item.carved.record), []).append(item)
    return [(content, group[0].carved.record, [Location.of(c.provenance) for c in group])
            for content, group in by_content.items()]


def _preference(item: Located) -> tuple:
    """Complete records first, then the earlier source (db before logs), then the lower offset."""
    return (item.carved.record.partial, item.rank, item.carved.offset)


def build_history(located: Iterable[Located], live_jobs: Iterable[Job] = (),
                  live_files: Iterable[JobFile] = ()) -> History:
    """Group carved jobs into versions, drop versions the live table already has, link files."""
    history = History()
    live_jobs = list(live_jobs)
    live_keys = {version_key(job) for job in live_jobs}
    versions: dict[VersionKey, list[Located]] = {}
    carved_files: list[Located] = []
    for item in located:
        item.carved.record.provenance = item.provenance
        if item.carved.kind == "job":
            history.job_records += 1
            versions.setdefault(version_key(item.carved.record), []).append(item)
        else:
            history.file_records += 1
            carved_files.append(item)
    history.job_ids = len({key[0] for key in versions})

    files_by_id = _file_candidates(carved_files, live_jobs, live_files)
    live_content: dict[VersionKey, dict[str, Job]] = {}
    for job in live_jobs:
        live_content.setdefault(version_key(job), {}).setdefault(content_key(job), job)
    used_files: set[int] = set()
    for key, copies in versions.items():
        history.versions += 1
        for content, chosen, places in _variants(copies):
            if key in live_keys:
                same = live_content[key].get(content)
                if same is not None and same.provenance is not None:
                    same.provenance.add_locations(places)      # one record, every place it was found
                if chosen.partial or same is not None:
                    continue
            chosen.provenance.add_locations(places[1:])
            _link(chosen, files_by_id, used_files)
            history.linked_files += len(chosen.files)
            history.jobs.append(chosen)
        variants = len({content_key(c.carved.record) for c in copies if not c.carved.record.partial})
        if variants > 1:
            history.warnings.append(
                f"job {key[0]} modification time {key[1]}: {variants} different records share it "
                "(properties changed without a new modification time); each is reported")
    history.jobs.sort(key=lambda job: (job.job_id or "", job.modification_time or 0,
                                       job.provenance.offset if job.provenance else 0))
    history.orphan_files = _orphans(carved_files, used_files, live_files, live_jobs)
    return history


def _file_candidates(carved: list[Located], live_jobs: list[Job],
                     live_files: Iterable[JobFile]) -> dict[str, list[JobFile]]:
    """File id -> copies, best first: live rows, then complete carved copies (most progress first)."""
    out: dict[str, list[JobFile]] = {}
    live = [f for job in live_jobs for f in job.files] + list(live_files)
    for jf in live:
        if jf.file_id:
            out.setdefault(jf.file_id, []).append(jf)
    ranked = sorted((item for item in carved if item.carved.record.file_id),
                    key=lambda item: (item.carved.record.partial, -(item.carved.record.bytes_transferred or 0),
                                      item.rank, item.carved.offset))
    for item in ranked:
        out.setdefault(item.carved.record.file_id, []).append(item.carved.record)
    return out


def _link(job: Job, files_by_id: dict[str, list[JobFile]], used: set[int]) -> None:
    """§9.2 step 4: a carved job's file GUIDs -> live or inline-row file records."""
    if job.files:                     # legacy records carry their files inline
        return
    job.missing_file_ids = []
    for file_id in job.file_ids:
        copies = files_by_id.get(file_id)
        if not copies:
            job.missing_file_ids.append(file_id)
            continue
        chosen = copies[0]
        if job.state == JobState.TRANSFERRED:
            chosen = next((f for f in copies if f.bytes_total not in (None, -1)
                           and f.bytes_transferred == f.bytes_total), chosen)
        used.add(id(chosen))
        job.files.append(chosen)


def _orphans(carved: list[Located], used: set[int], live_files: Iterable[JobFile],
             live_jobs: list[Job]) -> list[JobFile]:
    """Distinct carved files that no reported version uses and that differ from every live file."""
    seen = {content_key(f, ignore_id=True) for f in list(live_files) + [f for job in live_jobs for f in job.files]}
    for item in carved:
        if id(item.carved.record) in used:
            seen.add(content_key(item.carved.record, ignore_id=True))
    out = []
    for item in sorted(carved, key=lambda item: (item.carved.record.file_id is None, *_preference(item))):
        key = content_key(item.carved.record, ignore_id=True)
        if key in seen:
            continue
        seen.add(key)
        out.append(item.carved.record)
    out.sort(key=lambda f: (f.provenance.source_path, f.provenance.offset or 0) if f.provenance else ("", 0))
    return out
