"""Live Jobs and Files rows of a qmgr.db, read with libesedb (read-only, no log replay); blobs in one pass (ese_lv)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..decode import BlobError, decode_file_blob, decode_job_blob
from ..formats.plain import guid_text
from ..formats.markers import InputKind
from ..model import Job, JobFile, JobType, Provenance
from .ese_lv import EseLongValues, LongValueError, lid_from_reference
from .result import DamagedTable, SourceError, SourceResult

ID_COLUMN = 0
BLOB_COLUMN = 1
#: The one-pass LV reader is strict; on any of these the blobs are read through libesedb instead.
_ONE_PASS_FAILURES = (LongValueError, OSError, ValueError, IndexError, struct.error)


def _open(path: Path):
    import pyesedb  # imported here: keeps `bitsdb --help` fast

    database = pyesedb.file()
    handle = open(path, "rb")   # our own read-only handle: libesedb cannot write through it
    try:
        database.open_file_object(handle)
    except (OSError, IOError) as exc:
        handle.close()
        raise SourceError(f"not a readable ESE database ({_short(exc)})") from None
    return database, handle


def _short(exc: Exception) -> str:
    """libesedb chains 'function: message.' clauses; keep the first two messages."""
    text = " ".join(str(exc).split())
    messages = [part.split(": ", 1)[-1].strip() for part in text.split(". ") if part.strip()]
    return ": ".join(messages[:2]).rstrip(".")[:200] or type(exc).__name__


def _long_values(reader: EseLongValues | None, name: str) -> dict[int, bytes]:
    """The table's long values read in one pass; empty (libesedb reads them one by one) if that fails."""
    try:
        return reader.blobs(name) if reader else {}
    except _ONE_PASS_FAILURES:
        return {}


def _long_value_reader(path: Path) -> EseLongValues | None:
    try:
        return EseLongValues(path)
    except _ONE_PASS_FAILURES:
        return None


def _long_value(record, long_values: dict[int, bytes]):
    """A separated long value from the one-pass map when present, else through libesedb (slow per call)."""
    if long_values:
        try:
            blob = long_values.pop(lid_from_reference(record.get_value_data(BLOB_COLUMN)), None)
        except (OSError, IOError):
            blob = None
        if blob is not None:
            return blob
    long_value = record.get_value_data_as_long_value(BLOB_COLUMN)
    if long_value is None:
        raise LongValueError("long value missing")
    return long_value.get_data()


def _page_rows(reader: EseLongValues | None, name: str) -> list[tuple[bytes, int]] | None:
    """(Id, LID) of the table's rows read from its pages in one pass, or None (libesedb reads them)."""
    try:
        return reader.blob_rows(name) if reader else None
    except _ONE_PASS_FAILURES:
        return None


#: What libesedb's binding raises on damaged pages (and what a None it returns leads to).
_READ_FAILURES = (OSError, IOError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError,
                  LongValueError, struct.error)


@dataclass
class _TableRead:
    """What reading one table met: rows whose blob could not be read, and whole-table problems."""

    name: str
    rows_read: int = 0
    unreadable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _rows(table, read: _TableRead, long_values: dict[int, bytes], page_rows: list[tuple[bytes, int]] | None = None):
    """(index, id text, blob or None, reason) for every row that can be reached; what cannot is noted.

    Rows read from the pages (`page_rows`, when they are as many as libesedb counts) take their
    blob from the one-pass long values; any row whose blob is not there is read with libesedb."""
    count = _record_count(table, read)
    if count is None:
        return
    if page_rows is not None and len(page_rows) == count:
        for index, (raw_id, lid) in enumerate(page_rows):
            blob = long_values.pop(lid, None)
            if blob is None:
                yield _record_row(table, index, read, long_values)
            else:
                read.rows_read += 1
                yield index, guid_text(raw_id), blob, None
        return
    for index in range(count):
        yield _record_row(table, index, read, long_values)


def _record_row(table, index: int, read: _TableRead, long_values: dict[int, bytes]):
    """One row through libesedb: (index, id text, blob or None, reason)."""
    record_id = blob = None
    try:
        record = table.get_record(index)
        raw_id = record.get_value_data(ID_COLUMN)
        record_id = guid_text(raw_id) if raw_id and len(raw_id) == 16 else None
        if record.is_long_value(BLOB_COLUMN):
            blob = _long_value(record, long_values)
        else:
            blob = record.get_value_data(BLOB_COLUMN)
    except _READ_FAILURES as exc:
        reason = f"blob unreadable ({_short(exc)})"
        read.unreadable.append(f"record {index} ({record_id or 'id unreadable'}): {reason}")
        return index, record_id, None, reason
    read.rows_read += 1
    return index, record_id, bytes(blob or b""), None


def _tree_checker(path: Path) -> tuple[EseLongValues | None, str | None]:
    """The page walker that checks table trees, or why there is none: a page size it does not
    read is no damage (nothing is checked); a catalog it cannot walk is."""
    try:
        return EseLongValues(path), None
    except LongValueError as exc:
        return None, None if "page size" in str(exc) else f"the catalog cannot be walked ({exc})"
    except _ONE_PASS_FAILURES as exc:
        return None, f"the catalog cannot be walked ({type(exc).__name__}: {exc})"


def _check_table(read: _TableRead, checker: EseLongValues | None, why_not: str | None) -> None:
    """Compare what libesedb read with the table's own tree (walked page by page): a zeroed or
    foreign root, a broken child or sibling link, or rows libesedb skipped make the table damaged."""
    if checker is None:
        if why_not:
            read.problems.append(f"its tree cannot be checked: {why_not}")
        return
    try:
        rows = checker.table_rows(read.name)
    except _ONE_PASS_FAILURES as exc:
        read.problems.append(f"tree damaged ({exc})")
        return
    reached = read.rows_read + len(read.unreadable)
    if rows != reached:
        read.problems.append(f"its tree holds {rows} row(s) but {reached} could be reached")


def _damage(read: _TableRead, objids: tuple[int, ...] | None, page_size: int | None) -> DamagedTable | None:
    problems = list(read.problems)
    if read.unreadable:
        problems.append(f"{len(read.unreadable)} row(s) whose blob cannot be read ({read.unreadable[0]}"
                        + (", ..." if len(read.unreadable) > 1 else "") + ")")
    if not problems:
        return None
    return DamagedTable(read.name, "; ".join(problems), objids, page_size)


def read_ese(path: Path, sha256: str | None) -> SourceResult:
    """Live rows of Jobs and Files. A table that cannot be read whole is listed in
    `damaged_tables` (its rows are then recovered from its pages by stores.read); rows read
    before a failure are kept."""
    result = SourceResult(path=str(path), kind=InputKind.ESE_DATABASE.value, sha256=sha256)
    checker = _tree_checker(path)
    page_size = checker[0].page_size if checker[0] else None
    try:
        database, handle = _open(path)
    except SourceError as exc:
        result.damaged_tables.append(DamagedTable(None, str(exc), None, page_size, unless_found=str(exc)))
        return result
    try:
        _read_tables(path, sha256, result, database, checker, page_size)
    finally:
        database.close()
        handle.close()
    size = path.stat().st_size
    if page_size and size % page_size:
        result.warnings.append(f"the file ends {size % page_size} byte(s) into page {size // page_size - 1} "
                               "(truncated: free pages past the end, and what --recover finds there, are lost)")
    return result


def _objids(database_table, name: str, lv_reader: EseLongValues | None) -> tuple[int, ...] | None:
    """The objects whose pages hold a table's rows and blobs (None: not known, every page)."""
    tree = lv_reader.table(name) if lv_reader else None
    lv_tree = lv_reader.lv_tree(name) if lv_reader else None
    try:
        objid = tree[0] if tree else database_table.identifier
    except _READ_FAILURES:
        return None
    if lv_reader is None or (lv_tree is None and tree is None):
        return None                                  # the LV tree's object is unknown
    return (objid,) + ((lv_tree[0],) if lv_tree else ())


def _read_tables(path: Path, sha256: str | None, result: SourceResult, database,
                 checker: tuple[EseLongValues | None, str | None], page_size: int | None) -> None:
    try:
        tables = {table.name: table for table in database.tables}
    except _READ_FAILURES as exc:
        problem = f"cannot read the ESE catalog ({_short(exc)})"
        result.damaged_tables.append(DamagedTable(None, problem, None, page_size, unless_found=problem))
        return
    if "Jobs" not in tables:
        problem = "ESE database without a Jobs table (not a BITS qmgr.db)"
        result.damaged_tables.append(DamagedTable("Jobs", "not in the catalog (catalog damaged?)", None, page_size,
                                                  unless_found=problem))
        return
    lv_reader = _long_value_reader(path)
    # Jobs first, then Files: the blobs of the two tables are never all in memory at once
    # (a decoded blob is dropped; a 10,000-job store holds 50 MB of them).
    jobs_read = _TableRead("Jobs")
    for index, job_id, blob, reason in _streamed_rows(tables["Jobs"], jobs_read, lv_reader,
                                                      lambda data, key: decode_job_blob(data)):
        provenance = Provenance(source_path=str(path), source_sha256=sha256, source_kind=result.kind,
                                table="Jobs", record_index=index, recovered_from="live table")
        if blob is None:
            result.jobs.append(Job(job_id=job_id, partial=True, provenance=provenance, partial_reason=reason))
            continue
        done = blob if isinstance(blob, _Decoded) else _Decoded(lambda data, key: decode_job_blob(data), blob, None)
        if done.error is not None:
            exc, blob = done.error
            result.jobs.append(Job(job_id=job_id, partial=True, provenance=provenance, partial_reason=str(exc),
                                   undecoded=blob, blob_size=len(blob)))
            continue
        job = done.value
        job.provenance = provenance
        if job_id and job.job_id != job_id:
            job.unknown["row_id"] = job_id
            job.partial = True
            job.partial_reason = (job.partial_reason + "; " if job.partial_reason else "") + \
                f"row Id {job_id} differs from the blob's job id"
        result.jobs.append(job)
    _note_damage(result, jobs_read, tables["Jobs"], checker, page_size)
    files_by_id: dict[str, JobFile] = {}
    file_blobs: dict[str, tuple[int, Any]] = {}
    if "Files" in tables:
        layouts = _first_layouts(result.jobs)
        files_read = _TableRead("Files")
        for index, file_id, blob, _ in _streamed_rows(tables["Files"], files_read, lv_reader,
                                                      lambda data, key: decode_file_blob(data, key, layouts.get(key))):
            file_blobs[file_id or f"row-{index}"] = (index, blob)
        _note_damage(result, files_read, tables["Files"], checker, page_size)
    else:
        result.warnings.append("no Files table: job files cannot be resolved")
    for job in result.jobs:
        layout = _layout(job)
        for file_id in job.file_ids:
            if file_id not in file_blobs:
                job.missing_file_ids.append(file_id)
                continue
            if file_id not in files_by_id:
                file_index, file_blob = file_blobs[file_id]
                files_by_id[file_id] = _decode_file(path, sha256, result, file_id, file_index, file_blob, layout)
                file_blobs[file_id] = (file_index, b"")   # decoded: its bytes need not stay in memory
            job.files.append(files_by_id[file_id])
    for file_id, (index, blob) in file_blobs.items():
        if file_id not in files_by_id:
            result.orphan_files.append(_decode_file(path, sha256, result, file_id, index, blob, None))


def _note_damage(result: SourceResult, read: _TableRead, table, checker: tuple[EseLongValues | None, str | None],
                 page_size: int | None) -> None:
    _check_table(read, *checker)
    damage = _damage(read, _objids(table, read.name, checker[0]), page_size)
    if damage:
        result.damaged_tables.append(damage)


def _layout(job: Job) -> str | None:
    return "upload" if job.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY) else None


def _first_layouts(jobs: list[Job]) -> dict[str, str | None]:
    """File id -> the layout of the first job that lists it (the one its blob is decoded with)."""
    layouts: dict[str, str | None] = {}
    for job in jobs:
        for file_id in job.file_ids:
            layouts.setdefault(file_id, _layout(job))
    return layouts


class _Decoded:
    """A blob decoded (`decode(blob, row id)`): the record, or the BlobError with the blob it was about."""

    __slots__ = ("value", "error")

    def __init__(self, decode: Any, blob: bytes, key: str | None) -> None:
        self.value: Any = None
        self.error: tuple[BlobError, bytes] | None = None
        try:
            self.value = decode(blob, key)
        except BlobError as exc:
            self.error = (exc, blob)


def _streamed_rows(table, read: _TableRead, reader: EseLongValues | None, decode: Any):
    """(index, id text, blob, reason) per row, like _rows, where `blob` is already a _Decoded
    (`decode(blob, id text)`) for every blob the long-value pass assembled: each is decoded as it
    is read and let go, so a table's blobs are never all in memory at once. Rows the pass does not
    give are read with libesedb (bytes, or None with the reason), in row order as before."""
    name = read.name
    page_rows = _page_rows(reader, name)
    if page_rows is None or len(page_rows) != _record_count(table, read, quiet=True):
        yield from _rows(table, read, _long_values(reader, name), page_rows)
        return
    keys = dict(zip((lid for _, lid in page_rows), map(guid_text, (raw_id for raw_id, _ in page_rows))))
    decoded: dict[int, _Decoded] = {}
    try:
        for lid, blob in reader.iter_blobs(name):
            key = keys.get(lid)
            if key is not None:
                decoded[lid] = _Decoded(decode, blob, key)
    except _ONE_PASS_FAILURES:
        decoded = {}
    for index, (_, lid) in enumerate(page_rows):
        done = decoded.pop(lid, None)
        if done is not None:
            read.rows_read += 1
            yield index, keys[lid], done, None
        else:
            yield _record_row(table, index, read, {})


def _record_count(table, read: _TableRead, quiet: bool = False) -> int | None:
    """libesedb's row count; None (noted as the table's problem unless `quiet`) when it fails."""
    try:
        return table.get_number_of_records()
    except _READ_FAILURES as exc:
        if not quiet:
            read.problems.append(f"rows cannot be counted ({_short(exc)})")
        return None


def _decode_file(path: Path, sha256: str | None, result: SourceResult, file_id: str, index: int, blob: Any,
                 layout: str | None) -> JobFile:
    """The file of a Files row; `blob` may already be decoded (_Decoded, from the long-value pass)."""
    provenance = Provenance(source_path=str(path), source_sha256=sha256, source_kind=result.kind,
                            table="Files", record_index=index, recovered_from="live table")
    if blob is None:
        jf = JobFile(file_id=file_id, partial=True, partial_reason="blob unreadable")
    else:
        if not isinstance(blob, _Decoded):
            blob = _Decoded(lambda data, key: decode_file_blob(data, key, layout), blob, file_id)
        if blob.error is None:
            jf = blob.value
        else:
            exc, raw = blob.error
            jf = JobFile(file_id=file_id, partial=True, partial_reason=str(exc), undecoded=raw)
    jf.provenance = provenance
    return jf
