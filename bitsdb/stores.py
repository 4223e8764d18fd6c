"""Reading BITS store files: detect the kind, decode, pair legacy state files, add recovered versions.

The layer between the readers of one format (`sources`, `carve`) and the evidence layer and
public API above it, which both call it.
"""

from __future__ import annotations

import gc
import os
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .formats.markers import InputKind
from .sources.detect import detect_file, role_of, special_kind
from .sources.result import DamagedTable, SourceError, SourceResult, capped, sha256_of, unreadable
from .text import repaired_path


def read(path: str | Path, kind: InputKind | None = None) -> SourceResult:
    """Read one BITS store file (any supported kind; `kind` when already detected).
    Raises SourceError with a one-line reason."""
    path = Path(path)
    if kind is None:
        kind = detect_kind(path)
    # Hashing runs beside decoding (hashlib releases the GIL): on CPUs without SHA
    # instructions it costs as much as the whole parse.
    digest: dict[str, object] = {}

    def hash_file() -> None:
        try:
            digest["sha256"] = sha256_of(path)
        except OSError as exc:
            digest["error"] = exc

    hasher = threading.Thread(target=hash_file, name="bitsdb-sha256", daemon=True)
    hasher.start()
    try:
        with collector_paused():
            result = finish(path, _read_kind(path, kind))
    finally:
        hasher.join()
    if "error" in digest:
        raise unreadable(digest["error"])
    stamp_sha256(result, digest["sha256"])
    return result


@contextmanager
def collector_paused():
    """Decoding a store, or building the report's view, makes many small objects and no reference
    cycles; the cyclic collector's passes over the growing heap cost a fifth of a 10,000-job parse
    and half the build of a 1,000-host report. Paused meanwhile."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def finish(path: Path, result: SourceResult) -> SourceResult:
    """What every reader's result gets: rows of damaged tables recovered from their pages, one
    warning per partial live record (the run then exits 1), and no flood of lines."""
    if result.damaged_tables:
        from .carve.recover import salvage_damaged_tables

        salvage_damaged_tables(path, result)
    partial = [_partial_line(job, "job", job.job_id) for job in result.jobs if _live_partial(job)]
    seen: set[int] = set()
    for jf in [f for job in result.jobs for f in job.files] + result.orphan_files:
        if _live_partial(jf) and id(jf) not in seen:
            seen.add(id(jf))
            partial.append(_partial_line(jf, "file", jf.file_id))
    if partial:
        result.damaged = True
        result.warnings.extend(capped(partial, "partial record(s)"))
    undecoded = sum(1 for job in result.jobs if _live_partial(job) and job.owner_sid is None)
    orphans = sum(1 for jf in result.orphan_files if not _recovered(jf))
    if undecoded and orphans:
        result.warnings.append(f"{orphans} file row(s) reported as orphans may belong to the {undecoded} job "
                               "row(s) that could not be decoded")
    result.errors = capped(result.errors, "problem(s)")
    return result


def _recovered(record) -> bool:
    return record.provenance is not None and bool(record.provenance.recovered)


def _live_partial(record) -> bool:
    return bool(record.partial) and not _recovered(record)


def _partial_line(record, what: str, record_id: str | None) -> str:
    provenance = record.provenance
    where = ""
    if provenance is not None and provenance.table and provenance.record_index is not None:
        where = f" ({provenance.table} record {provenance.record_index})"
    elif provenance is not None and provenance.offset is not None:
        where = f" (offset 0x{provenance.offset:x})"
    reason = " ".join(str(record.partial_reason or "reason unknown").split())[:300]
    return f"{what} {record_id or 'without id'}{where} is partial: {reason}"


def stamp_sha256(result: SourceResult, sha256: str) -> None:
    """Record the source hash on the result and on every record's provenance."""
    result.sha256 = sha256
    source = repaired_path(result.path)         # how provenance holds the path (bitsdb.text)
    for job in result.jobs:
        for record in [job, *job.files]:
            if record.provenance is not None and record.provenance.source_path == source:
                record.provenance.source_sha256 = sha256
    for jf in result.orphan_files:
        if jf.provenance is not None and jf.provenance.source_path == source:
            jf.provenance.source_sha256 = sha256


def detect_kind(path: Path) -> InputKind:
    """What the file is; SourceError (one line) when it cannot be looked at."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise SourceError("is a directory (bitsdb.parse takes folders, collections and images)")
        special = special_kind(st)
        if special:
            raise SourceError(f"not a regular file ({special}): not read")
        if st.st_size == 0:
            raise SourceError("empty file")
        return detect_file(path)
    except OSError as exc:
        raise unreadable(exc) from None


def _read_kind(path: Path, kind: InputKind) -> SourceResult:
    sha256 = None
    if kind is InputKind.ESE_DATABASE:
        from .sources.ese import read_ese

        return read_ese(path, sha256)
    if kind is InputKind.LEGACY_STATE_FILE:
        from .sources.legacy import read_legacy

        return read_legacy(path, sha256)
    if kind in (InputKind.RAW_JOB, InputKind.RAW_FILE, InputKind.RAW_LEGACY_FILES):
        from .sources.raw import read_raw

        return read_raw(path, sha256, kind)
    unrecognised = "not a BITS database, state file or job/file record (unrecognised content)"
    if role_of(path.name) == "store":
        # A file named like a store whose header is gone: its records are still in it.
        store_kind = InputKind.ESE_DATABASE if path.name.lower().endswith(".db") else InputKind.LEGACY_STATE_FILE
        result = SourceResult(path=str(path), kind=store_kind.value, sha256=sha256)
        result.damaged_tables.append(DamagedTable(None, f"{unrecognised}; its header is damaged", None,
                                                  unless_found=unrecognised))
        return result
    raise SourceError(unrecognised)


def read_files(items: Iterable[str | Path], *, recover: bool = False, state_index: int | None = None
               ) -> Iterator[tuple[str, SourceResult | Exception]]:
    """Read BITS files: the one place that pairs legacy state files and adds recovered records.

    qmgr0.dat and qmgr1.dat of one folder are read together, so each job is marked as coming
    from the current or the previous state (`state_index`: the registry's BITS\\StateIndex,
    when the evidence has it). With `recover`, each database or state file (and the ESE logs
    beside a qmgr.db) is also carved, and the distinct historical versions not identical to
    a live record are added, marked `recovered`. Never raises.
    """
    items = [Path(item) for item in items]
    kinds: dict[Path, InputKind | SourceError] = {}
    for item in items:
        try:
            kinds[item] = detect_kind(item)
        except SourceError as exc:
            kinds[item] = exc
    legacy = [item for item in items if kinds[item] is InputKind.LEGACY_STATE_FILE]
    paired: dict[Path, SourceResult | SourceError] = {}
    if legacy:
        from .sources.legacy import read_legacy_pairs

        paired = dict(read_legacy_pairs(legacy, state_index=state_index))
    for item in items:
        try:
            kind = kinds[item]
            if isinstance(kind, SourceError):
                raise kind
            outcome = paired[item] if item in paired else read(item, kind)
            if item in paired and isinstance(outcome, SourceResult):
                outcome = finish(item, outcome)
            if recover and isinstance(outcome, SourceResult) and outcome.kind in RECOVERABLE_KINDS:
                # A state file's live records include those its sibling holds (not repeated there).
                siblings = [r for p, r in paired.items() if p.parent == item.parent and isinstance(r, SourceResult)]
                add_recovered(item, outcome, siblings or [outcome])
        except Exception as exc:  # noqa: BLE001 - reported by the caller, with the path
            outcome = exc
        yield str(item), outcome


RECOVERABLE_KINDS = (InputKind.ESE_DATABASE.value, InputKind.LEGACY_STATE_FILE.value)


def add_recovered(path: Path, result: SourceResult, live: list[SourceResult]) -> None:
    """Carve the source (and its companions) and append what the `live` results lack."""
    from .carve.recover import recover_source

    known = SourceResult(path=str(path), kind=result.kind, sha256=result.sha256,
                         jobs=[job for r in live for job in r.jobs],
                         orphan_files=[jf for r in live for jf in r.orphan_files])
    recovery = recover_source(path, known)
    result.warnings.extend(recovery.warnings)
    result.jobs.extend(recovery.jobs)
    result.orphan_files.extend(recovery.history.orphan_files)
