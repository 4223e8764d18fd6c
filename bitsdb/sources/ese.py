"""Live Jobs and Files rows of a qmgr.db, read with libesedb (read-only, no log replay)."""

from __future__ import annotations

import uuid
from pathlib import Path

from ..decode import BlobError, decode_file_blob, decode_job_blob
from ..formats.markers import InputKind
from ..model import JobFile, JobType, Provenance
from .result import SourceError, SourceResult

ID_COLUMN = 0
BLOB_COLUMN = 1


def _open(path: Path):
    import pyesedb  # imported here: keeps `bitsdb --help` fast

    database = pyesedb.file()
    try:
        with open(path, "rb") as handle:   # read-only handle: libesedb never writes through it
            pass
        database.open(str(path))
    except (OSError, IOError) as exc:
        raise SourceError(f"not a readable ESE database ({_short(exc)})") from None
    return database


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__).strip()[:160]


def _table(database, name: str):
    try:
        table = database.get_table_by_name(name)
    except (OSError, IOError) as exc:
        raise SourceError(f"cannot read table {name} ({_short(exc)})") from None
    return table


def _rows(table, name: str, result: SourceResult):
    """(index, id text, blob bytes) for every row; unreadable rows become warnings."""
    try:
        count = table.get_number_of_records()
    except (OSError, IOError) as exc:
        raise SourceError(f"cannot read table {name} ({_short(exc)})") from None
    for index in range(count):
        try:
            record = table.get_record(index)
            raw_id = record.get_value_data(ID_COLUMN)
            if record.is_long_value(BLOB_COLUMN):
                blob = record.get_value_data_as_long_value(BLOB_COLUMN).get_data()
            else:
                blob = record.get_value_data(BLOB_COLUMN)
        except (OSError, IOError) as exc:
            result.warnings.append(f"{name} record {index}: unreadable ({_short(exc)})")
            continue
        record_id = str(uuid.UUID(bytes_le=bytes(raw_id))) if raw_id and len(raw_id) == 16 else None
        yield index, record_id, bytes(blob or b"")


def read_ese(path: Path, sha256: str | None) -> SourceResult:
    result = SourceResult(path=str(path), kind=InputKind.ESE_DATABASE.value, sha256=sha256)
    database = _open(path)
    try:
        names = {table.name for table in database.tables}
        if "Jobs" not in names:
            raise SourceError("ESE database without a Jobs table (not a BITS qmgr.db)")
        files_by_id: dict[str, JobFile] = {}
        file_blobs: dict[str, tuple[int, bytes]] = {}
        if "Files" in names:
            for index, file_id, blob in _rows(_table(database, "Files"), "Files", result):
                file_blobs[file_id or f"row-{index}"] = (index, blob)
        else:
            result.warnings.append("no Files table: job files cannot be resolved")
        for index, job_id, blob in _rows(_table(database, "Jobs"), "Jobs", result):
            provenance = Provenance(source_path=str(path), source_sha256=sha256, source_kind=result.kind,
                                    table="Jobs", record_index=index, recovered_from="live table")
            try:
                job = decode_job_blob(blob)
            except BlobError as exc:
                result.warnings.append(f"Jobs record {index} ({job_id}): {exc}")
                continue
            job.provenance = provenance
            if job_id and job.job_id != job_id:
                job.unknown["row_id"] = job_id
                job.partial = True
                job.partial_reason = (job.partial_reason + "; " if job.partial_reason else "") + \
                    f"row Id {job_id} differs from the blob's job id"
            layout = "upload" if job.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY) else None
            for file_id in job.file_ids:
                if file_id not in file_blobs:
                    job.missing_file_ids.append(file_id)
                    continue
                if file_id not in files_by_id:
                    files_by_id[file_id] = _decode_file(path, sha256, result, file_id, *file_blobs[file_id],
                                                        layout)
                job.files.append(files_by_id[file_id])
            result.jobs.append(job)
        for file_id, (index, blob) in file_blobs.items():
            if file_id not in files_by_id:
                result.orphan_files.append(_decode_file(path, sha256, result, file_id, index, blob, None))
    finally:
        database.close()
    return result


def _decode_file(path: Path, sha256: str | None, result: SourceResult, file_id: str, index: int, blob: bytes,
                 layout: str | None) -> JobFile:
    provenance = Provenance(source_path=str(path), source_sha256=sha256, source_kind=result.kind,
                            table="Files", record_index=index, recovered_from="live table")
    try:
        jf = decode_file_blob(blob, file_id, layout)
    except BlobError as exc:
        result.warnings.append(f"Files record {index} ({file_id}): {exc}")
        jf = JobFile(file_id=file_id, partial=True, partial_reason=str(exc), undecoded=blob)
    jf.provenance = provenance
    return jf
