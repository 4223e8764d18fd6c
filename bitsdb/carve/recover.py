"""Entry points: carve one file, or recover everything next to a qmgr.db.

`recover(path, live)` is what `bitsdb parse --recover` calls: it scans the database
(all pages) and its companion files (ESE logs, reserve logs, flush map), groups
the hits into versions and returns the versions the live table does not hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

from ..formats.markers import InputKind
from ..model import Job, Provenance
from ..sources.detect import detect_bytes, plain_file, role_of, special_kind
from ..sources.result import SourceError, SourceResult, unreadable
from .history import History, Located, build_history
from .scanner import (
    DEFAULT_WINDOW,
    ESE_FILE_FAMILY,
    ESE_JOB_FAMILY,
    MarkerFamily,
    Scanner,
    ScanStats,
    ese_page_size,
)

ESE_FAMILIES = (ESE_JOB_FAMILY, ESE_FILE_FAMILY)

#: Files next to qmgr.db that hold page images (FORMAT.md §3), lower-case glob patterns.

DB_PAGE = "db page"
LOG_FILE = "log file"
IMAGE = "image"
SLACK = "slack"
LIVE_TABLE = "live table"


@dataclass
class CarveResult:
    """What scanning one file produced."""

    path: str
    recovered_from: str
    source_kind: str
    stats: ScanStats
    located: list[Located] = field(default_factory=list)


@dataclass
class Recovery:
    """Recovered history of one set of inputs (a database and its companions, or any files)."""

    history: History
    scans: list[CarveResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return self.history.jobs


def classify(path: Path, head: bytes) -> tuple[str, str, int | None]:
    """(recovered_from, source kind, ESE page size) for a file about to be carved."""
    name = path.name.lower()
    if detect_bytes(head) is InputKind.ESE_DATABASE and not name.endswith((".log", ".jrs", ".jfm")):
        return DB_PAGE, InputKind.ESE_DATABASE.value, ese_page_size(head)
    if role_of(name) == "companion":
        return LOG_FILE, "ese_log", None
    if detect_bytes(head) is InputKind.LEGACY_STATE_FILE:
        return SLACK, InputKind.LEGACY_STATE_FILE.value, None
    return IMAGE, "image", None


def carve_file(path: str | Path, *, families: Iterable[MarkerFamily] | None = None, rank: int = 0,
               window: int = DEFAULT_WINDOW, hash_input: bool = True,
               recovered_from: str | None = None, sha256: str | None = None) -> CarveResult:
    """Scan one file of any size; raises SourceError (one line) when it cannot be read. `sha256`: the
    file's digest when the caller already has it (the live read hashed it): not computed again."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SourceError("is a directory")
        special = special_kind(os.stat(path))           # a link named by the user is followed
        if special:
            raise SourceError(f"not a regular file ({special}): not read")
        with open(path, "rb") as handle:
            head = handle.read(4096)
            kind_from, source_kind, page_size = classify(path, head)
            handle.seek(0)
            scanner = Scanner(families, window=window, page_size=page_size,
                              hash_input=hash_input and sha256 is None)
            if sha256 is not None:
                scanner.stats.sha256 = sha256
            result = CarveResult(path=str(path), recovered_from=recovered_from or kind_from,
                                 source_kind=source_kind, stats=scanner.stats)
            for carved in scanner.records(handle):
                provenance = Provenance(source_path=str(path), source_kind=source_kind, offset=carved.offset,
                                        recovered=True, recovered_from=result.recovered_from)
                result.located.append(Located(carved=carved, provenance=provenance, rank=rank))
    except OSError as exc:
        raise unreadable(exc) from None
    for item in result.located:
        item.provenance.source_sha256 = scanner.stats.sha256
    return result


def companion_files(db_path: str | Path) -> list[Path]:
    """ESE logs, reserve logs and the flush map beside a qmgr.db (case-insensitive names)."""
    folder = Path(db_path).parent
    try:
        entries = sorted(p for p in folder.iterdir() if plain_file(p))      # never a link out of the folder
    except OSError:
        return []
    return [p for p in entries if role_of(p.name) == "companion"]


def carve_inputs(given: str | Path) -> list[Path]:
    """What `bitsdb carve` scans for one argument: a file as it is; a folder stands for the BITS
    store files below it and the ESE companions beside each qmgr.db."""
    path = Path(given)
    if not path.is_dir():
        return [path]
    found = [item for item in sorted(p for p in path.rglob("*") if plain_file(p)) if role_of(item.name) == "store"]
    for db in [p for p in found if p.name.lower() == "qmgr.db"]:
        found.extend(p for p in companion_files(db) if p not in found)
    return found


def recover_many(paths: Iterable[str | Path], live: SourceResult | None = None, *,
                 families: Iterable[MarkerFamily] | None = None, window: int = DEFAULT_WINDOW,
                 hash_input: bool = True, known_sha256: dict[str, str] | None = None) -> Recovery:
    """Carve every path and build one history over all of them (earlier paths win ties).
    `known_sha256`: digests the caller already computed, by path (those files are not hashed again)."""
    recovery = Recovery(history=History())
    located: list[Located] = []
    families = list(families) if families is not None else None
    for rank, path in enumerate(paths):
        try:
            scan = carve_file(path, families=families, rank=rank, window=window, hash_input=hash_input,
                              sha256=(known_sha256 or {}).get(str(path)))
        except SourceError as exc:
            recovery.warnings.append(f"{path}: {exc}")
            continue
        recovery.scans.append(scan)
        located.extend(scan.located)
        if scan.stats.stopped:
            recovery.warnings.append(f"{path}: {scan.stats.stopped}")
    live_jobs = live.jobs if live else []
    live_files = live.orphan_files if live else []
    recovery.history = build_history(located, live_jobs, live_files)
    recovery.warnings.extend(recovery.history.warnings)
    return recovery


def recover_source(path: str | Path, live: SourceResult | None = None, *, companions: bool = True,
                   **options) -> Recovery:
    """A qmgr.db (every page) plus its companion files, minus what the live tables hold (whose
    digest, when the live read computed one, is the database's: it is not hashed again)."""
    path = Path(path)
    paths = [path]
    if companions:
        paths += [p for p in companion_files(path) if p.resolve() != path.resolve()]
    if live is not None and live.sha256:
        options.setdefault("known_sha256", {str(path): live.sha256})
    return recover_many(paths, live, **options)


def recover(path: Path, live: SourceResult | None = None) -> list[Job]:
    """Distinct recovered job versions (files linked) not identical to a live record."""
    return recover_source(path, live).jobs


# --------------------------------------------------------------------------- damaged tables

DAMAGED_TABLE = "damaged table"


class _TablePages:
    """A read-only view of a database file in which only the pages of some objects keep their
    bytes (the others read as zeros), so offsets stay those of the file."""

    def __init__(self, handle: BinaryIO, page_size: int, objids: set[int]) -> None:
        self.handle = handle
        self.page_size = page_size
        self.kept: set[int] = set()                 # file page index (0, 1: the database headers)
        index = 0
        while True:
            handle.seek(index * page_size + _OBJID_OFFSET)
            raw = handle.read(4)
            if len(raw) < 4:
                break
            if index >= 2 and int.from_bytes(raw, "little") in objids:
                self.kept.add(index)
            index += 1
        handle.seek(0)

    def read(self, size: int = -1) -> bytes:
        start = self.handle.tell()
        data = bytearray(self.handle.read(size))
        page = start // self.page_size
        while page * self.page_size < start + len(data):
            if page not in self.kept:
                lo = max(page * self.page_size, start) - start
                hi = min((page + 1) * self.page_size, start + len(data)) - start
                data[lo:hi] = bytes(hi - lo)
            page += 1
        return bytes(data)


_OBJID_OFFSET = 24      # PGHDR.objidFDP


def salvage_damaged_tables(path: str | Path, result: SourceResult) -> None:
    """Recover the rows of the tables a reader could not read whole from those tables' own pages.

    Each damaged table is one error line naming it, with what was recovered; recovered records
    are marked `recovered_from` "damaged table", and those identical to a row that was read are
    not repeated. Raises SourceError when a damage says the file is no BITS store unless some
    record is found and none is.
    """
    path = Path(path)
    located: list[Located] = []
    stopped = []
    everything = [d for d in result.damaged_tables if d.objids is None]
    scanned: set[tuple[int, ...] | None] = set()
    for damage in everything[:1] or result.damaged_tables:
        key = damage.objids
        if key in scanned:
            continue
        scanned.add(key)
        found: list[Located] = []
        try:
            with open(path, "rb") as handle:
                page_size = damage.page_size or ese_page_size(handle.read(4096))
                handle.seek(0)
                stream = handle if key is None or not page_size else _TablePages(handle, page_size, set(key))
                families = ESE_FAMILIES if result.kind == InputKind.ESE_DATABASE.value else None
                scanner = Scanner(families, page_size=page_size, hash_input=False)
                for carved in scanner.records(stream):
                    provenance = Provenance(source_path=str(path), source_kind=result.kind, offset=carved.offset,
                                            recovered=True, recovered_from=DAMAGED_TABLE, table=damage.table)
                    found.append(Located(carved=carved, provenance=provenance))
        except OSError as exc:
            raise unreadable(exc) from None
        if scanner.stats.stopped:
            stopped.append(scanner.stats.stopped)
        located.extend(found)
    history = build_history(located, result.jobs, result.orphan_files)
    claimed = {id(jf) for job in history.jobs for jf in job.files}
    result.orphan_files = [jf for jf in result.orphan_files if id(jf) not in claimed]
    _replace_empty_stubs(result, history.jobs)
    orphans = _link_live_jobs(result.jobs, history.orphan_files)
    recovered_files = {id(jf): jf for jf in history.orphan_files}
    recovered_files.update((id(jf), jf) for job in history.jobs for jf in job.files
                           if jf.provenance is not None and jf.provenance.recovered_from == DAMAGED_TABLE)
    for damage in result.damaged_tables:
        if damage.unless_found and not located:
            raise SourceError(damage.unless_found)
        jobs = sum(1 for job in history.jobs if job.provenance.table == damage.table)
        files = sum(1 for jf in recovered_files.values() if jf.provenance.table == damage.table)
        where = "the whole file" if damage.objids is None else "its pages"
        prefix = f"table {damage.table}: " if damage.table else ""
        result.errors.append(f"{prefix}{damage.problem}; {jobs} job record(s) and {files} file record(s) "
                             f"recovered from {where}")
    result.warnings.extend(history.warnings + stopped)
    result.jobs.extend(history.jobs)
    result.orphan_files.extend(orphans)


def _replace_empty_stubs(result: SourceResult, recovered: list[Job]) -> None:
    """A row whose blob could not be read says only that a job existed: once a copy of that job
    is recovered, the stub goes."""
    found = {job.job_id for job in recovered}
    result.jobs = [job for job in result.jobs
                   if not (job.partial and job.job_id in found and job.owner_sid is None and not job.undecoded)]


def _link_live_jobs(jobs: list[Job], files: list) -> list:
    """Recovered file records (with their row Id) that live jobs name but the Files table lacked."""
    by_id = {jf.file_id: jf for jf in files if jf.file_id}
    used: set[int] = set()
    for job in jobs:
        for file_id in list(job.missing_file_ids):
            jf = by_id.get(file_id)
            if jf is not None:
                job.files.append(jf)
                job.missing_file_ids.remove(file_id)
                used.add(id(jf))
    return [jf for jf in files if id(jf) not in used]
