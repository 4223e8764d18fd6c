"""Marker scanner: finds job and file records in any byte source, streaming.

The input is read in fixed-size windows. Each window is searched for every marker
of every registered family with `bytes.find` (one C-speed pass per marker); only
the hits are decoded. A window keeps `lookbehind` bytes before and `max_record`
bytes after the region whose hits it owns, so a record that crosses a window edge
is decoded whole by the window that owns its first byte, and no hit is seen twice.
Memory is bounded by the window size, not by the input size.

A family is a set of marker GUIDs plus a decode function; the ESE job and file
families and the legacy job family (decoded with bitsdb.decode.legacy) live here
(FORMAT.md §9.2); further families plug in through `register_family`.
"""

from __future__ import annotations

import hashlib
import queue
import re
import struct
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator

from ..decode.file import decode_file_blob, file_head_span
from ..decode.job import decode_job_blob, job_head_problems, job_head_span, split_markers
from ..decode.sections import ATTEMPT_COST, BlobError, DecodeBudget, parse_prefix, plausible_filetime, walk_sections
from ..formats import file as file_fmt
from ..formats.ese import ROW_HEAD, ROW_INLINE_BLOB, ROW_PREFIX_SIZE
from ..formats.job import ESE_JOB_SECTIONS
from ..formats.markers import ESE_JOB_MARKERS, FILE_MARKER, LEGACY_JOB_MARKERS
from ..model import Job, JobFile

#: Largest record a decoder may look at after its marker. ESE records live in one
#: 16 KiB page (blobs split over long-value chunks are cut at the page edge), legacy
#: job records with many inline files are larger; anything longer is reported partial.
MAX_RECORD = 256 * 1024
#: First attempt decodes this much; records that need more are decoded again with MAX_RECORD.
FIRST_SLICE = 32 * 1024
#: Bytes kept before a hit: the ESE inline record prefix is 26 bytes (FORMAT.md §4.3).
LOOKBEHIND = 32
#: How many undecoded bytes after the last valid field a partial record keeps.
PARTIAL_TAIL = 256
DEFAULT_WINDOW = 4 * 1024 * 1024
#: What a range scan reads past its end: the largest record a decoder accepts, plus a marker
#: that starts just before the end.
RANGE_OVERLAP = MAX_RECORD + 16

#: `01 7F 15 00 <Id:16> FE 00 01 04 00 01`: an ESE data-tree record of Jobs/Files whose
#: Blob column is stored inline right after it (FORMAT.md §4.3).
INLINE_ROW_PREFIX = re.compile(re.escape(ROW_HEAD) + b"(.{16})" + re.escape(ROW_INLINE_BLOB) + b"\\Z", re.DOTALL)

_SID = re.compile(r"S-1-\d+(-\d+)*\Z")


@dataclass
class DecodedHit:
    """What a family's decode function returns for a hit that validated."""

    record: Job | JobFile
    length: int                     # bytes from the marker to the end of what validated
    complete: bool                  # parsed to its footer: later hits inside it are its own markers
    row_id: str | None = None       # Id of the inline ESE row, when the prefix is present


#: decode(view, start, end, page_size) -> DecodedHit | None. `view[start:start+16]` is the
#: marker; bytes up to `end` may be used (end - start <= MAX_RECORD); `view[:start]`
#: holds at least LOOKBEHIND bytes unless the input starts there. Return None when the
#: hit is not a record (footers, noise): it is skipped silently.
DecodeFn = Callable[[bytes, int, int, "int | None"], "DecodedHit | None"]


@dataclass(frozen=True)
class MarkerFamily:
    """Markers that introduce one kind of record, and how to decode a hit."""

    name: str                       # e.g. "ese_job", "ese_file", "legacy_job"
    kind: str                       # "job" or "file"
    markers: tuple[bytes, ...]
    decode: DecodeFn
    #: head_span(view, start, stop) -> bytes of a plausible record head at the hit, 0 when none can start
    #: there; struct-only, so hits that cannot be records are skipped before decoding.
    head_span: Callable[[bytes, int, int], int] | None = None


@dataclass
class CarvedRecord:
    """One validated hit: the decoded record and where its bytes are."""

    kind: str                       # "job" | "file"
    family: str
    offset: int                     # absolute offset of the marker in the source
    length: int
    record: Job | JobFile
    row_id: str | None = None
    complete: bool = False          # parsed to its footer: markers inside it are its own


@dataclass
class ScanStats:
    bytes_scanned: int = 0
    hits: int = 0
    records: int = 0
    sha256: str | None = None
    families: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None      # why decoding stopped early (the work budget was used up)


# --------------------------------------------------------------------------- plausibility


def text_problem(name: str, value: str | None) -> str | None:
    """Carved strings must be text: no control characters, broken surrogates or non-characters."""
    if value is None:
        return f"{name} missing"
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or code in (0xFFFE, 0xFFFF):
            return f"{name} is not printable text"
    return None


def carved_job_problems(job: Job) -> list[str]:
    """FORMAT.md §9.2 head checks plus the stricter §9.4 checks that keep noise out."""
    problems = job_head_problems(job)
    for name in ("display_name", "description", "notify_program", "notify_parameters", "owner_sid"):
        problem = text_problem(name, getattr(job, name))
        if problem:
            problems.append(problem)
    if job.owner_sid is not None and not _SID.match(job.owner_sid):
        problems.append("owner is not a SID string")
    return problems


def carved_time_problems(job: Job) -> list[str]:
    """Times that cannot be real mean the bytes after the file list are not this record's."""
    problems = []
    if job.creation_time is not None and not plausible_filetime(job.creation_time, allow_zero=False):
        problems.append("creation time out of range")
    for name in ("modification_time", "modification_time_2", "completion_time", "inactivity_base_time",
                 "expiration_time"):
        value = getattr(job, name)
        if value is not None and not plausible_filetime(value):
            problems.append(f"{name} out of range")
    return problems


def carved_file_problems(jf: JobFile) -> list[str]:
    problems = []
    for name in ("local_name", "remote_name"):
        value = getattr(jf, name)
        problem = text_problem(name, value) or (None if value else f"{name} empty")
        if problem:
            problems.append(problem)
    problem = text_problem("temp_name", jf.temp_name)
    if problem:
        problems.append(problem)
    for name in ("drive", "volume"):
        value = getattr(jf, name)
        if value is not None and text_problem(name, value):
            problems.append(f"{name} is not printable text")
    total, done = jf.bytes_total, jf.bytes_transferred
    if total is not None and done is not None and total != -1 and done > total:
        problems.append("bytes transferred exceed the total")
    if jf.remote_last_modified is not None and not plausible_filetime(jf.remote_last_modified):
        problems.append("remote Last-Modified out of range")
    return problems


# --------------------------------------------------------------------------- helpers


def inline_row_id(view: bytes, start: int) -> str | None:
    """The Id of the ESE row whose inline Blob starts at `start` (FORMAT.md §4.3), if any."""
    if start < ROW_PREFIX_SIZE:
        return None
    match = INLINE_ROW_PREFIX.match(view, start - ROW_PREFIX_SIZE, start)
    if not match:
        return None
    import uuid

    return str(uuid.UUID(bytes_le=match.group(1)))


def _limit(start: int, end: int, page_size: int | None) -> tuple[int, int | None]:
    """ESE records never cross a page: in a page-structured source, stop at the page end."""
    if not page_size:
        return end, None
    page_end = (start // page_size + 1) * page_size
    return (page_end, page_end) if page_end < end else (end, None)


def _trim_partial(record: Job | JobFile, page_cut: int | None, start: int) -> None:
    record.undecoded = record.undecoded[:PARTIAL_TAIL]
    if page_cut is not None:
        note = (f"cut at the page boundary 0x{page_cut:x} ({page_cut - start} bytes after the marker): "
                "the rest of the blob is in another long-value chunk or was overwritten")
        record.partial_reason = f"{note}; {record.partial_reason}" if record.partial_reason else note


# --------------------------------------------------------------------------- ESE jobs


def _decode_in_slices(decode_slice, view: bytes, start: int, end: int, page_size: int | None,
                      head: int = 0) -> DecodedHit | None:
    """Most records fit FIRST_SLICE (or their `head` and a little more): decode that first, and the
    whole allowed span only when cut."""
    limit, page_cut = _limit(start, end, page_size)
    first = max(FIRST_SLICE, head + FIRST_SLICE)
    hit = decode_slice(view, start, min(limit, start + first), page_cut)
    if hit is not None and not hit.complete and limit > start + first:
        hit = decode_slice(view, start, limit, page_cut)
    return hit


def ese_job_head_span(view: bytes, start: int, stop: int | None = None) -> int:
    """A job head at the marker, or after it when the marker is the outer one of a double-marker blob."""
    span = job_head_span(view, start, stop)
    if span:
        return span
    inner = job_head_span(view, start + 16, stop)
    return inner + 16 if inner else 0


def decode_ese_job_hit(view: bytes, start: int, end: int, page_size: int | None = None) -> DecodedHit | None:
    """An ESE job blob starting at `start`, or None when the hit is a footer or noise."""
    head = ese_job_head_span(view, start, end)
    if not head:
        return None
    return _decode_in_slices(_decode_job_slice, view, start, end, page_size, head)


def _decode_job_slice(view: bytes, start: int, stop: int, page_cut: int | None) -> DecodedHit | None:
    data = bytes(view[start:stop])
    outer, head = split_markers(data)
    walk = walk_sections(data, head, ESE_JOB_SECTIONS)
    if "file_list" not in walk.parsed or walk.parsed["file_list"].get("_partial"):
        return None                       # §9.2: the 7756DA36 marker must follow the SD
    footers = {data[head:head + 16]} | ({outer} if outer else set())
    complete = walk.failure is None and data[walk.end:walk.end + 16] in footers
    if complete:
        size = walk.end + 16
        if outer is not None and data[size:size + 16] == outer:
            size += 16
        blob = data[:size]
    else:
        blob = data
    try:
        job = decode_job_blob(blob)
    except BlobError:
        return None
    if carved_job_problems(job):
        return None
    time_problems = carved_time_problems(job)
    if time_problems:                     # keep what is sure: the record up to its file list
        complete = False
        head_end = _section_end(data, head, "file_list")
        job = decode_job_blob(data[:head_end], ESE_JOB_SECTIONS[:4])
        job.partial = True
        job.partial_reason = (f"{', '.join(time_problems)} after offset 0x{head_end:x}: "
                              "the rest was overwritten or is not this record's")
        job.undecoded = data[head_end:]
        walk.end = head_end
    length = len(blob) if complete else walk.end
    if not complete:
        job.blob_size = walk.end
        _explain_job_cut(job, data, head, walk.end)
        ran_out = "stream read less" in (job.partial_reason or "")
        _trim_partial(job, page_cut if ran_out and page_cut is not None and start + len(data) >= page_cut else None, start)
    row_id = inline_row_id(view, start)
    if row_id and row_id != job.job_id:
        job.unknown["row_id"] = row_id
    return DecodedHit(record=job, length=length, complete=complete, row_id=row_id)


def _explain_job_cut(job: Job, data: bytes, head: int, end: int) -> None:
    """A job marker inside the decoded span means another record was written over this one."""
    for marker in ESE_JOB_MARKERS:
        position = data.find(marker, head + 16, end)
        if position != -1:
            job.partial_reason = (f"overwritten: another job record starts {position} bytes after the marker; "
                                  f"{job.partial_reason}")
            return


def _section_end(data: bytes, head: int, last: str) -> int:
    """Offset just after section `last`, found by walking the sections up to it again."""
    names = [name for name, _ in ESE_JOB_SECTIONS]
    walk = walk_sections(data, head, ESE_JOB_SECTIONS[:names.index(last) + 1])
    return walk.end


# --------------------------------------------------------------------------- ESE files


def decode_ese_file_hit(view: bytes, start: int, end: int, page_size: int | None = None) -> DecodedHit | None:
    """An ESE file blob (download layout) starting at `start`, or None."""
    head = file_head_span(view, start, end)
    if not head:
        return None
    return _decode_in_slices(_decode_file_slice, view, start, end, page_size, head)


def _decode_file_slice(view: bytes, start: int, stop: int, page_cut: int | None) -> DecodedHit | None:
    data = bytes(view[start:stop])
    body, body_end, body_error = parse_prefix(file_fmt.FileBody, data, 16)
    if body is None or "temp_name" not in body:
        return None
    end = body_end
    complete = False
    if body_error is None:
        _, end_a, error_a = parse_prefix(file_fmt.ProgressA, data, body_end)
        if error_a is None:
            _, end_b, error_b = parse_prefix(file_fmt.ProgressB, data, end_a)
            if error_b is None and data[end_b:end_b + 16] == FILE_MARKER:
                end, complete = end_b + 16, True
    row_id = inline_row_id(view, start)
    try:
        jf = decode_file_blob(data[:end] if complete else data, row_id, "download")
    except BlobError:
        return None
    if jf.layout != "download" or carved_file_problems(jf):
        return None
    if not complete:
        length = body_end if body_error is not None else len(data) - len(jf.undecoded)
        jf.undecoded = data[length:]
        if not jf.partial_reason:
            jf.partial_reason = "record ends without its footer (truncated)"
        jf.partial = True
        ran_out = "stream read less" in (jf.partial_reason or "") or "truncated" in (jf.partial_reason or "")
        _trim_partial(jf, page_cut if ran_out and page_cut is not None and start + len(data) >= page_cut else None, start)
    else:
        length = end
    return DecodedHit(record=jf, length=length, complete=complete, row_id=row_id)


# --------------------------------------------------------------------------- families

ESE_JOB_FAMILY = MarkerFamily("ese_job", "job", tuple(ESE_JOB_MARKERS), decode_ese_job_hit, ese_job_head_span)
ESE_FILE_FAMILY = MarkerFamily("ese_file", "file", (FILE_MARKER,), decode_ese_file_hit, file_head_span)


def decode_legacy_job_hit(view: bytes, start: int, end: int, page_size: int | None = None) -> DecodedHit | None:
    """A legacy (qmgr0/1.dat) job record at `start`, decoded with the legacy reader's sections."""
    from ..decode.legacy import decode_legacy_record

    if not job_head_span(view, start, end):
        return None
    data = bytes(view[start:end])
    try:
        job, stop = decode_legacy_record(data, 0)
    except BlobError:
        return None
    if carved_job_problems(job):
        return None
    complete = not job.partial
    job.blob_size = stop                  # as the state-file reader reports it
    time_problems = carved_time_problems(job) if job.creation_time is not None else []
    if time_problems:
        job.partial = True
        job.partial_reason = f"{', '.join(time_problems)}: the rest was overwritten or is not this record's"
        complete = False
    if not complete and not job.undecoded:
        job.undecoded = data[stop:stop + PARTIAL_TAIL]
    return DecodedHit(record=job, length=stop, complete=complete)


LEGACY_JOB_FAMILY = MarkerFamily("legacy_job", "job", tuple(LEGACY_JOB_MARKERS), decode_legacy_job_hit,
                                 job_head_span)

_FAMILIES: dict[str, MarkerFamily] = {f.name: f for f in (ESE_JOB_FAMILY, ESE_FILE_FAMILY, LEGACY_JOB_FAMILY)}


def register_family(family: MarkerFamily) -> None:
    """Add or replace a family (e.g. a decoder for a marker family found later)."""
    _FAMILIES[family.name] = family


def default_families() -> list[MarkerFamily]:
    return list(_FAMILIES.values())


# --------------------------------------------------------------------------- the scan


class Scanner:
    """Streams one source through the registered families; iterate `records(stream)`."""

    def __init__(self, families: Iterable[MarkerFamily] | None = None, *, window: int = DEFAULT_WINDOW,
                 page_size: int | None = None, hash_input: bool = True) -> None:
        self.families = list(families) if families is not None else default_families()
        self.window = max(window, 64 * 1024)
        self.page_size = page_size
        self.hash_input = hash_input
        self.stats = ScanStats()
        self._markers: list[tuple[bytes, MarkerFamily]] = [
            (marker, family) for family in self.families for marker in family.markers]

    def records(self, stream: BinaryIO, *, start: int = 0, stop: int | None = None,
                swallow: bool = True) -> Iterator[CarvedRecord]:
        """Every validated record, in offset order.

        With `start`/`stop` only hits at start <= offset < stop are decoded: the stream is
        read (seeked) from `start - LOOKBEHIND` to `stop + RANGE_OVERLAP`, so a range sees
        exactly the bytes a whole-stream scan would. `swallow=False` also decodes hits inside
        a complete record: ranges scanned apart apply that rule when merged (merge_ranges).
        """
        digest = _BackgroundHash() if self.hash_input else None
        try:
            yield from self._scan(stream, digest, start, stop, swallow)
        finally:
            if digest is not None:
                self.stats.sha256 = digest.hexdigest()

    def _scan(self, stream: BinaryIO, digest: "_BackgroundHash | None", start: int = 0,
              stop: int | None = None, swallow: bool = True) -> Iterator[CarvedRecord]:
        keep_after = MAX_RECORD
        buf = b""
        buf_start = max(0, start - LOOKBEHIND)   # absolute offset of buf[0]
        if start or stop is not None:
            stream.seek(buf_start)
        limit = None if stop is None else stop + RANGE_OVERLAP   # nothing after it is ever looked at
        owned_from = start         # absolute offset from which hits are not yet processed
        skip_until = 0             # hits inside a complete record are that record's own markers
        budget = self.budget = DecodeBudget()
        eof = False
        while not eof:
            want = self.window if limit is None else min(self.window, limit - buf_start - len(buf))
            chunk = stream.read(want) if want > 0 else b""
            if not chunk:
                eof = True
            else:
                if digest is not None:
                    digest.update(chunk)
                self.stats.bytes_scanned += len(chunk)
                budget.grow(len(chunk))
            tail_from = max(0, owned_from - LOOKBEHIND - buf_start)
            buf = buf[tail_from:] + chunk if chunk else buf[tail_from:]
            buf_start += tail_from
            buf_end = buf_start + len(buf)
            owned_until = buf_end if eof else max(owned_from, buf_end - keep_after)
            if stop is not None:
                owned_until = min(owned_until, stop)
            if owned_until <= owned_from and not eof:
                continue
            for position, family in self._hits(buf, owned_from - buf_start, owned_until - buf_start):
                absolute = buf_start + position
                if swallow and absolute < skip_until:
                    continue
                self.stats.hits += 1
                end = min(len(buf), position + MAX_RECORD)
                span = family.head_span(buf, position, end) if family.head_span is not None else ATTEMPT_COST
                if not span or not budget.allows(absolute):
                    continue
                hit = family.decode(buf, position, end, self.page_size)
                if hit is None or not hit.complete:
                    budget.charge(span)
                if hit is None:
                    continue
                if hit.complete:
                    skip_until = absolute + hit.length
                self.stats.records += 1
                self.stats.families[family.name] = self.stats.families.get(family.name, 0) + 1
                yield CarvedRecord(kind=family.kind, family=family.name, offset=absolute, length=hit.length,
                                   record=hit.record, row_id=hit.row_id, complete=hit.complete)
            owned_from = owned_until
        self.stats.stopped = budget.message()

    def _hits(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, MarkerFamily]]:
        """Marker positions p with lo <= p < hi (the marker itself may extend past hi)."""
        found = []
        stop = min(len(buf), hi + 15)
        for marker, family in self._markers:
            position = buf.find(marker, lo, stop)
            while position != -1:
                found.append((position, family))
                position = buf.find(marker, position + 1, stop)
        found.sort(key=lambda item: item[0])
        return found


class _BackgroundHash:
    """SHA-256 of the input computed in a thread: hashlib releases the GIL, so on a
    machine with a spare core hashing costs no scan time (on one core it costs the same)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: "queue.Queue[bytes | None]" = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="carve-sha256", daemon=True)
        self._thread.start()
        self._result: str | None = None

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        if self._result is None:
            self._queue.put(None)
            self._thread.join()
            self._result = self._digest.hexdigest()
        return self._result


def scan(stream: BinaryIO, families: Iterable[MarkerFamily] | None = None, **options) -> Iterator[CarvedRecord]:
    """Shorthand for `Scanner(families, **options).records(stream)`."""
    return Scanner(families, **options).records(stream)


def ese_page_size(head: bytes) -> int | None:
    """Page size from an ESE database header (offset 0xEC), when `head` is one."""
    if len(head) >= 0xF0 and head[4:8] == b"\xef\xcd\xab\x89":
        (size,) = struct.unpack_from("<I", head, 0xEC)
        if size in (2048, 4096, 8192, 16384, 32768):
            return size
    return None
