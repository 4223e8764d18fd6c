"""From a spec of jobs and files (the parser's own output shape) to a real qmgr.db.

A spec lists live jobs with their files, older versions of some of them
(`history`) and jobs that only survive as deleted remnants (`deleted`). The
forge writes the live rows with the ESE writer and plants every older or deleted
version, as an ESE row with its blob inline, in free pages of the database or in
an `edb.log` beside it, and reports where each one landed, so recovery can be
tested against ground truth. Before anything is written, every record is encoded
and decoded again and must give back every field the spec states (a spec the
format cannot hold is rejected, naming the field).
"""

from __future__ import annotations

import copy
import json
import re
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from construct import ConstructError

from ..decode.file import decode_file_blob, encode_file
from ..decode.job import decode_job_blob, encode_job
from ..decode.sections import BlobError
from ..decode.security import build_security_descriptor, decode_security, encode_security_descriptor
from ..formats.ese import ROW_PREFIX_SIZE, inline_row
from ..formats.primitives import MAX_WSTR_UNITS
from ..model import Ace, Job, JobFile, JobType, SecurityInfo
from ..sources.detect import read_regular_text
from .ese import DEFAULT_LV_CHUNK_SIZE, write_qmgr_database

SPEC_VERSION = 1
PAGE_SIZE = 16384
PAGE_HEADER = 80
#: Planted versions carry the inline-row prefix (formats.ese.inline_row), as old rows in freed
#: pages do, so carved files keep their id.
LOG_NAME = "edb.log"
#: The stand-in log: one 4 KiB header block, then one page-sized chunk per planted record.
LOG_HEADER_SIZE = 4096
LOG_HEADER_TEXT = (b"bitsdb forge: stand-in for an ESE transaction log (not replayable); "
                   b"page-sized chunks below hold old Jobs/Files rows\n")
STORES = ("db", "log")
#: Windows 10/11 markers (FORMAT.md §2) used when the spec gives none.
DOWNLOAD_MARKER = "e10956a1-af43-42c9-92e6-6f9856eba7f6"
UPLOAD_MARKER = "8f5657d0-012c-4e3e-ad2c-f4a5d7656faf"
#: First bytes of an LV chunk that libesedb / dissect.database take for a compression
#: header (identifier = byte >> 3: 1 7-bit ASCII, 2 7-bit Unicode, 3 XPRESS, 5/6 XPRESS9/10).
RISKY_CHUNK_IDENTIFIERS = frozenset({1, 2, 3, 5, 6})
MIN_LV_CHUNK_SIZE = 2048

_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?\Z")
_SID = re.compile(r"S-1-\d+(-\d+)*\Z")
JOB_GUID_FIELDS = ("job_id", "marker", "outer_marker", "network_guid")
#: Job keys that are spec structure, not Job fields.
SPEC_ONLY_KEYS = ("files", "history", "stored_in")
#: Fields the reader fills (where the record was found; the jsonl line type), never compared with the spec.
READER_FIELDS = ("provenance", "record_type")


class SpecError(ValueError):
    """A spec the forge cannot honour; the message names the field (one line)."""


@dataclass
class PlannedVersion:
    """An older or deleted job version to plant, with the files planted beside it."""

    job: Job
    files: list[JobFile]
    stored_in: str                          # "db" | "log"
    where: str                              # spec path, for messages
    deleted: bool                           # True: no live row has this job id


@dataclass
class ForgeSpec:
    """A validated spec: live jobs (files attached), versions to plant, writer options."""

    jobs: list[Job]
    planted: list[PlannedVersion] = field(default_factory=list)
    lv_chunk_size: int | None = None        # None: the reader-safe size nearest 4050
    log_name: str = LOG_NAME
    source: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class PlantedRecord:
    """Ground truth for recovery: a record the forge left behind, and where."""

    kind: str                               # "job" | "file"
    record_id: str
    modification_time: int | None
    stored_in: str                          # "db" | "log"
    path: Path
    offset: int                             # byte offset of the record's marker in `path`
    deleted: bool
    record: Job | JobFile = field(repr=False)


@dataclass
class ForgeReport:
    database: Path
    log: Path | None
    lv_chunk_size: int
    page_count: int
    planted: list[PlantedRecord] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON spec file (JSON is YAML); SpecError on unreadable or malformed text."""
    import yaml

    path = Path(path)
    try:
        text = read_regular_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, Loader=_loader())
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError("not valid YAML/JSON: " + " ".join(str(exc).split())[:200]) from None
    if not isinstance(data, dict):
        raise SpecError("the spec must be a mapping with a 'jobs' list")
    return data


def _loader():
    """SafeLoader that keeps times as text: YAML timestamps would drop the 7th fractional digit."""
    import yaml

    class SpecLoader(yaml.SafeLoader):
        pass

    SpecLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return SpecLoader


def parse_spec(data: dict[str, Any]) -> ForgeSpec:
    """Validate a spec mapping and turn it into records; SpecError names the first bad field."""
    known = {"bitsdb_forge", "database", "jobs", "deleted"}
    for key in data:
        if key not in known:
            raise SpecError(f"{key}: unknown top-level key (expected: {', '.join(sorted(known))})")
    version = data.get("bitsdb_forge", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise SpecError(f"bitsdb_forge: spec version {version!r} is not supported (expected {SPEC_VERSION})")
    spec = ForgeSpec(jobs=[], source=data)
    options = data.get("database") or {}
    if not isinstance(options, dict):
        raise SpecError("database: expected a mapping")
    for key, value in options.items():
        if key == "lv_chunk_size":
            if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= DEFAULT_LV_CHUNK_SIZE:
                raise SpecError(f"database.lv_chunk_size: expected an integer 64..{DEFAULT_LV_CHUNK_SIZE}, "
                                f"got {value!r}")
            spec.lv_chunk_size = value
        elif key == "page_size":
            if value != PAGE_SIZE:
                raise SpecError(f"database.page_size: only {PAGE_SIZE} is supported, got {value!r}")
        elif key == "log":
            if not isinstance(value, str) or not re.fullmatch(r"edb[^/\\]*\.log", value, re.I):
                raise SpecError(f"database.log: expected a file name like edb.log, got {value!r}")
            spec.log_name = value
        else:
            raise SpecError(f"database.{key}: unknown option (page_size, lv_chunk_size, log)")
    jobs = _list(data.get("jobs", []), "jobs")
    file_owner: dict[str, tuple[str, bytes]] = {}
    seen_jobs: set[str] = set()
    for index, entry in enumerate(jobs):
        where = f"jobs[{index}]"
        job = _job_from_spec(entry, where)
        if job.job_id in seen_jobs:
            raise SpecError(f"{where}.job_id: {job.job_id} is listed twice")
        seen_jobs.add(job.job_id)
        for position, jf in enumerate(job.files):
            blob = encode_file(jf)
            previous = file_owner.get(jf.file_id)
            if previous and previous[1] != blob:
                raise SpecError(f"{where}.files[{position}].file_id: {jf.file_id} also appears in {previous[0]} "
                                "with other content (the Files table holds one row per id)")
            file_owner[jf.file_id] = (f"{where}.files[{position}]", blob)
        spec.jobs.append(job)
        for number, change in enumerate(_list(entry.get("history", []), f"{where}.history")):
            spec.planted.append(_history_version(entry, change, f"{where}.history[{number}]"))
    for index, entry in enumerate(_list(data.get("deleted", []), "deleted")):
        where = f"deleted[{index}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: expected a mapping")
        job = _job_from_spec(entry, where)
        if job.job_id in seen_jobs:
            raise SpecError(f"{where}.job_id: {job.job_id} is a live job (use its 'history' for older versions)")
        for position, jf in enumerate(job.files):
            if jf.file_id in file_owner:
                raise SpecError(f"{where}.files[{position}].file_id: {jf.file_id} is already used by "
                                f"{file_owner[jf.file_id][0]} (recovery links each file id to one record)")
            file_owner[jf.file_id] = (f"{where}.files[{position}]", b"")
            if jf.layout == "upload":
                raise SpecError(f"{where}.files[{position}]: upload-layout file records cannot be planted "
                                "(carving reads ESE file blobs in the download layout); list the id in file_ids only")
        spec.planted.append(PlannedVersion(job=job, files=list(job.files), stored_in=_store(entry, where),
                                           where=where, deleted=True))
    _check_planted(spec)
    return spec


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _store(entry: dict[str, Any], where: str) -> str:
    store = entry.get("stored_in", "db")
    if store not in STORES:
        raise SpecError(f"{where}.stored_in: expected one of {', '.join(STORES)}, got {store!r}")
    return store


def _history_version(live: dict[str, Any], change: Any, where: str) -> PlannedVersion:
    """A history entry = the live job with some fields changed (its files are the live rows)."""
    if not isinstance(change, dict):
        raise SpecError(f"{where}: expected a mapping of changed fields")
    for key in ("job_id", "files", "history"):
        if key in change:
            raise SpecError(f"{where}.{key}: a history version cannot change {key}")
    merged = {k: v for k, v in live.items() if k not in ("history", "stored_in")}
    for key, value in change.items():
        if key == "stored_in":
            continue
        merged.pop(f"{key}_filetime", None)             # a changed time replaces both of its forms
        if key.endswith("_filetime"):
            merged.pop(key[:-len("_filetime")], None)
        merged[key] = value
    merged.pop("files", None)
    merged.setdefault("file_ids", [f.get("file_id") for f in live.get("files", []) if isinstance(f, dict)])
    job = _job_from_spec(merged, where)
    return PlannedVersion(job=job, files=[], stored_in=_store(change, where), where=where, deleted=False)


def _guid(value: Any, where: str) -> str:
    match = _GUID.match(value) if isinstance(value, str) else None
    if not match:
        raise SpecError(f"{where}: {value!r} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    return match.group(1).lower()


def _check_strings(record: dict[str, Any], where: str) -> None:
    for key, value in record.items():
        if isinstance(value, str) and len(value.encode("utf-16-le", "surrogatepass")) // 2 >= MAX_WSTR_UNITS:
            raise SpecError(f"{where}.{key}: {len(value)} characters is too long for a BITS string "
                            f"(at most {MAX_WSTR_UNITS - 1} UTF-16 units)")


def _job_from_spec(entry: Any, where: str) -> Job:
    """One job (with files) from its spec mapping, checked by an encode/decode round trip."""
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: expected a mapping")
    data = {k: v for k, v in entry.items() if k not in SPEC_ONLY_KEYS}
    if "job_id" not in data:
        raise SpecError(f"{where}.job_id: missing")
    for key in JOB_GUID_FIELDS:
        if data.get(key) is not None:
            data[key] = _guid(data[key], f"{where}.{key}")
    if data.get("owner_sid") is not None and not (isinstance(data["owner_sid"], str)
                                                  and _SID.match(data["owner_sid"])):
        raise SpecError(f"{where}.owner_sid: {data['owner_sid']!r} is not a SID (S-1-5-...)")
    _check_strings(data, where)
    try:
        job = Job.from_dict({k: v for k, v in data.items() if k not in READER_FIELDS + ("file_ids",)})
    except ValueError as exc:
        raise SpecError(f"{where}.{exc}") from None
    upload = job.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY)
    files = [_file_from_spec(f, f"{where}.files[{i}]", upload)
             for i, f in enumerate(_list(entry.get("files", []), f"{where}.files"))]
    if "file_ids" in data:
        data["file_ids"] = [_guid(v, f"{where}.file_ids[{i}]") for i, v in enumerate(_list(data["file_ids"],
                                                                                          f"{where}.file_ids"))]
    else:
        data["file_ids"] = [f.file_id for f in files]
    ids = [f.file_id for f in files]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{where}.files: a file id is listed twice")
    stray = [i for i in ids if i not in data["file_ids"]]
    if stray:
        raise SpecError(f"{where}.files: {stray[0]} is not in file_ids")
    job.file_ids = data["file_ids"]
    if job.type is None:
        job.type = JobType.DOWNLOAD
    if job.marker is None:
        job.marker = UPLOAD_MARKER if upload else DOWNLOAD_MARKER
    _prepare_security(job, data.get("security"), where)
    job.files = files
    for position, jf in enumerate(files):
        if upload != (jf.layout == "upload"):
            kind = "an upload" if upload else "a download"
            raise SpecError(f"{where}.files[{position}].layout: {jf.layout!r} file in {kind} job "
                            f"(use layout: {'upload' if upload else 'download'})")
    _verify_job(job, data, where)
    for position, (jf, raw) in enumerate(zip(files, entry.get("files", []))):
        _verify_file(jf, raw, upload, f"{where}.files[{position}]")
    return job


def _file_from_spec(entry: Any, where: str, upload: bool) -> JobFile:
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: expected a mapping")
    data = {k: v for k, v in entry.items() if k not in READER_FIELDS}
    data.setdefault("layout", "upload" if upload else "download")
    data["file_id"] = _guid(data.get("file_id"), f"{where}.file_id")
    if data.get("layout", "download") not in ("download", "upload"):
        raise SpecError(f"{where}.layout: expected download or upload, got {data['layout']!r}")
    _check_strings(data, where)
    try:
        return JobFile.from_dict(data)
    except ValueError as exc:
        raise SpecError(f"{where}.{exc}") from None


# --------------------------------------------------------------------------- security


def _prepare_security(job: Job, given: Any, where: str) -> None:
    """Build the descriptor bytes from the spec's security fields (defaults: what BITS writes)."""
    if job.owner_sid is None:
        job.owner_sid = "S-1-5-18"
    info = job.security
    rid = info.owner_integrity_rid if info and info.owner_integrity_rid is not None else 0x2000
    try:
        default = decode_security_descriptor(build_security_descriptor(job.owner_sid, rid), rid)
    except (ConstructError, ValueError) as exc:
        raise SpecError(f"{where}.owner_sid: cannot build a descriptor for it ({exc})") from None
    if info is None:
        job.security = info = default
        given = {}
    info.owner_integrity_rid = rid
    given = given if isinstance(given, dict) else {}
    for name in ("control", "owner", "group", "dacl", "sacl"):
        if name not in given:
            setattr(info, name, getattr(default, name))
    if "integrity_label" in given and "sacl" not in given:
        info.sacl = [Ace(ace_type=0x11, ace_type_name="", flags=0, mask=1, sid=info.integrity_label,
                         sid_name=None)] if info.integrity_label else []
    if info.token_unknown:
        if len(info.token_unknown) != 4 or not all(isinstance(v, int) for v in info.token_unknown):
            raise SpecError(f"{where}.security.token_unknown: expected 4 integers")
        for key, value in zip(("tok_unk0", "tok_unk2", "tok_unk3", "tok_unk4"), info.token_unknown):
            job.unknown.setdefault(key, value)
    try:
        info.raw = encode_security_descriptor(info)
    except (ConstructError, ValueError, TypeError) as exc:
        raise SpecError(f"{where}.security: cannot build the descriptor ({' '.join(str(exc).split())[:160]})") \
            from None


def decode_security_descriptor(raw: bytes, rid: int) -> SecurityInfo:
    from construct import Container

    return decode_security(Container(security_descriptor=raw, owner_integrity_rid=rid, tok_unk0=0, tok_unk2=1,
                                     tok_unk3=1, tok_unk4=0))


# --------------------------------------------------------------------------- verification


def _verify_job(job: Job, given: dict[str, Any], where: str) -> None:
    try:
        blob = encode_job(job)
        decoded = decode_job_blob(blob)
    except (ConstructError, BlobError, ValueError, OverflowError, struct.error) as exc:
        raise SpecError(_encode_failure(exc, where, "job")) from None
    decoded.missing_file_ids = [i for i in decoded.file_ids if i not in {f.file_id for f in job.files}]
    _compare(given, job.to_dict(), decoded.to_dict(), where,
             skip=set(SPEC_ONLY_KEYS) | set(READER_FIELDS))


def _verify_file(jf: JobFile, given: dict[str, Any], upload: bool, where: str) -> None:
    try:
        decoded = decode_file_blob(encode_file(jf), jf.file_id, "upload" if upload else None)
    except (ConstructError, BlobError, ValueError, OverflowError, struct.error) as exc:
        raise SpecError(_encode_failure(exc, where, "file")) from None
    _compare(given, jf.to_dict(), decoded.to_dict(), where, skip=set(READER_FIELDS))


_BUILD_PATH = re.compile(r"\(building\) ((?:-> \w+ ?)+).*?given value (.+)$")


def _encode_failure(exc: Exception, where: str, what: str) -> str:
    """Name the field a construct build error is about ("... -> header -> priority ... given value -1")."""
    text = " ".join(str(exc).split())
    match = _BUILD_PATH.search(text)
    if match:
        name = match.group(1).split("->")[-1].strip()
        return f"{where}.{name}: {match.group(2)[:60]} does not fit the field in the {what} record"
    return f"{where}: the {what} cannot be encoded ({text[:160]})"


def _compare(given: Any, wanted: Any, got: Any, where: str, skip: Iterable[str] = ()) -> None:
    """Every key the spec gives (recursively into mappings) must come back as stated."""
    if isinstance(given, dict) and isinstance(wanted, dict) and isinstance(got, dict):
        for key in given:
            if key in skip:
                continue
            if key.endswith("_filetime") and key not in wanted:
                continue
            _compare(given[key], wanted.get(key), got.get(key), f"{where}.{key}")
            twin = f"{key}_filetime"
            if twin in wanted and twin not in given and wanted[twin] != got.get(twin):
                raise SpecError(f"{where}.{key}: the format stores {got.get(key)!r}, not {wanted.get(key)!r}")
        return
    if isinstance(given, list) and isinstance(wanted, list) and isinstance(got, list) \
            and len(given) == len(wanted) == len(got):
        for index, (g, w, r) in enumerate(zip(given, wanted, got)):
            _compare(g, w, r, f"{where}[{index}]")
        return
    if wanted != got:
        raise SpecError(f"{where}: the format cannot hold {_short(wanted)} here "
                        f"(a parser would read {_short(got)})")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_planted(spec: ForgeSpec) -> None:
    """Each planted version must be recoverable as itself: distinct, not a copy of a live row."""
    live = {job.job_id: encode_job(job) for job in spec.jobs}
    seen: dict[bytes, str] = {}
    for version in spec.planted:
        blob = encode_job(version.job)
        if live.get(version.job.job_id) == blob:
            raise SpecError(f"{version.where}: identical to the live row (change a field, e.g. modification_time)")
        if blob in seen:
            raise SpecError(f"{version.where}: identical to {seen[blob]}")
        seen[blob] = version.where
        for position, jf in enumerate(version.files):
            size = ROW_PREFIX_SIZE + len(encode_file(jf))
            if size > PAGE_SIZE - PAGE_HEADER:
                raise SpecError(f"{version.where}.files[{position}]: {size} bytes do not fit one page")
        size = ROW_PREFIX_SIZE + len(blob)
        if size > PAGE_SIZE - PAGE_HEADER:
            raise SpecError(f"{version.where}: the record ({size} bytes) does not fit one 16 KiB page")


# --------------------------------------------------------------------------- writing


def reader_safe_chunk_size(blobs: Iterable[bytes], preferred: int = DEFAULT_LV_CHUNK_SIZE) -> int:
    """The LV chunk size nearest below `preferred` at which no chunk starts with a risky byte.

    libesedb takes a chunk starting with 0x18 for XPRESS data, and dissect.database
    (1.1) mis-tracks chunk offsets from the third chunk on and then decompresses
    chunks whose first byte looks like a compression header; both then fail or
    return other bytes. Windows avoids neither (it flags compression elsewhere), so
    this only keeps generated files readable by both; blobs under one chunk are never
    affected.
    """
    long_blobs = [bytes(b) for b in blobs if len(b) > MIN_LV_CHUNK_SIZE]
    for size in range(preferred, MIN_LV_CHUNK_SIZE - 1, -1):
        if all((blob[offset] >> 3) not in RISKY_CHUNK_IDENTIFIERS
               for blob in long_blobs for offset in range(size, len(blob), size)):
            return size
    raise SpecError("no long-value chunk size keeps every blob readable by libesedb and dissect.database")


def live_rows(jobs: Sequence[Job]) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """(Id, blob) rows of the Jobs and Files tables; a file shared by jobs is one row."""
    job_rows, file_rows, seen = [], [], set()
    for job in jobs:
        job_rows.append((uuid.UUID(job.job_id).bytes_le, encode_job(job)))
        for jf in job.files:
            if jf.file_id not in seen:
                seen.add(jf.file_id)
                file_rows.append((uuid.UUID(jf.file_id).bytes_le, encode_file(jf)))
    return job_rows, file_rows


def forge(spec: ForgeSpec | dict[str, Any], out: str | Path) -> ForgeReport:
    """Write the spec's database to `out` (and its log beside it when something is stored there)."""
    if isinstance(spec, dict):
        spec = parse_spec(spec)
    out = Path(out)
    job_rows, file_rows = live_rows(spec.jobs)
    chunk = spec.lv_chunk_size or reader_safe_chunk_size(blob for _, blob in job_rows + file_rows)
    planned: list[tuple[PlannedVersion, str, str, int | None, bytes, Job | JobFile]] = []
    for version in spec.planted:
        job = version.job
        planned.append((version, "job", job.job_id, job.modification_time, inline_row(job.job_id, encode_job(job)),
                        job))
        for jf in version.files:
            planned.append((version, "file", jf.file_id, None, inline_row(jf.file_id, encode_file(jf)), jf))
    in_db = [item for item in planned if item[0].stored_in == "db"]
    in_log = [item for item in planned if item[0].stored_in == "log"]
    written = write_qmgr_database(out, job_rows, file_rows, lv_chunk_size=chunk,
                                  remnants=[item[4] for item in in_db])
    report = ForgeReport(database=out, log=None, lv_chunk_size=chunk, page_count=written.page_count)
    for item, remnant in zip(in_db, written.remnants):
        report.planted.append(_planted(item, out, remnant.file_offset + ROW_PREFIX_SIZE))
    log_path = out.parent / spec.log_name
    if in_log:
        offsets = write_log(log_path, [item[4] for item in in_log])
        report.log = log_path
        for item, offset in zip(in_log, offsets):
            report.planted.append(_planted(item, log_path, offset + ROW_PREFIX_SIZE))
    return report


def _planted(item: tuple, path: Path, offset: int) -> PlantedRecord:
    version, kind, record_id, mtime, _, record = item
    return PlantedRecord(kind=kind, record_id=record_id, modification_time=mtime, stored_in=version.stored_in,
                         path=path, offset=offset, deleted=version.deleted, record=record)


def write_log(path: Path, chunks: Sequence[bytes], page_size: int = PAGE_SIZE) -> list[int]:
    """The stand-in `edb.log`: a header block, then each chunk at the data start of its own page image.

    Returns each chunk's file offset. Real logs interleave log records with page
    images; carving only needs the bytes, so this keeps the layout simple and
    deterministic.
    """
    header = LOG_HEADER_TEXT.ljust(LOG_HEADER_SIZE, b"\x00")
    body = bytearray()
    offsets = []
    for data in chunks:
        image = bytearray(page_size)
        image[PAGE_HEADER:PAGE_HEADER + len(data)] = data
        offsets.append(LOG_HEADER_SIZE + len(body) + PAGE_HEADER)
        body += image
    path.write_bytes(header + bytes(body))
    return offsets


def spec_from_jobs(jobs: Iterable[Job]) -> dict[str, Any]:
    """A spec (to_dict shape, files inline, reader fields left out) for existing records."""
    out = []
    for job in jobs:
        data = job.to_dict()
        for key in ("provenance", "missing_file_ids"):
            data.pop(key, None)
        data["files"] = [{k: v for k, v in jf.to_dict().items() if k != "provenance"} for jf in job.files]
        out.append(data)
    return {"bitsdb_forge": SPEC_VERSION, "jobs": copy.deepcopy(out)}
