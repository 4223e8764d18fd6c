"""Legacy state files qmgr0.dat / qmgr1.dat (FORMAT.md §7), declared once for parse and build.

A legacy job record is the ESE job serializer (bitsdb.formats.job) up to
`max_download_time`, with inline file records instead of file GUIDs and a
version-specific tail before the footer. The reader (bitsdb.sources.legacy) walks
these sections one by one so that a damaged record still yields its head; the
builder (bitsdb.forge.legacy) strings the same schemas together.
"""

from __future__ import annotations

import uuid
import zlib
from typing import Any, Callable

from construct import (
    Array,
    Bytes,
    Check,
    Checksum,
    Const,
    Construct,
    If,
    Int8ul,
    Int32ul,
    RawCopy,
    Rebuild,
    SizeofError,
    StreamError,
    Struct,
    Switch,
    len_,
    stream_read,
    stream_tell,
    stream_write,
    this,
)

from . import job as job_fmt
from .file import FileBody, ProgressA
from .markers import (
    FILE_LIST_MARKER,
    LEGACY_FILE_HEADER,
    LEGACY_PREFIX_WIN7,
    LEGACY_PREFIX_WIN10,
    LEGACY_QUEUE_MARKER,
)

WIN7_JOB_MARKER = uuid.UUID("35203693-0ca0-4a10-84f3-b17e7b499cd7").bytes_le
WIN10_JOB_MARKER = uuid.UUID("3ded46b3-103b-44f9-bc2f-e8378bd31986").bytes_le

#: The 32 bytes that open every legacy state file (header marker + first queue marker).
HEADER_PAIR = LEGACY_FILE_HEADER + LEGACY_QUEUE_MARKER

#: Prefix GUID -> (version label, prefix size, CRC32 after the trailer GUID).
PREFIX_KINDS: dict[bytes, tuple[str, int, bool]] = {
    LEGACY_PREFIX_WIN7: ("win7", 16, False),
    LEGACY_PREFIX_WIN10: ("win10", 24, True),
}

#: Job records one queue may declare before the count is taken for garbage.
MAX_JOBS_PER_QUEUE = 65536

#: The 36 bytes after an inline file body have the layout of the ESE progress block A
#: without its terminator (16 zero bytes, u32 complete, u64 bytes_done, u64) — on the real
#: Win10 payload bytes_done equals bytes_transferred (9 985). Reuses ProgressA's fields.
LegacyProgress = Struct(*ProgressA.subcons[:-1])

#: Inline file record (§7.4): the shared file body, then the progress block.
LegacyFileRecord = Struct(
    "body" / FileBody,
    "progress" / LegacyProgress,
)

#: Inline file list: the same bracket markers as the ESE list, file records instead of GUIDs.
LegacyFileList = Struct(
    Const(FILE_LIST_MARKER),
    "count" / Rebuild(Int32ul, len_(this.files)),
    Check(this.count <= job_fmt.MAX_FILES_PER_JOB),
    "files" / Array(this.count, LegacyFileRecord),
    Const(FILE_LIST_MARKER),
)

#: Windows 7 tail after max_download_time: two zero u32 (same names as the ESE trailer's start).
Win7Tail = Struct(
    "unk_c0" / Int32ul,
    "unk_c1" / Int32ul,
)

#: Early Windows 10 tail: the start of the ESE trailer (cost flags, 42 zero bytes) and one byte.
Win10Tail = Struct(
    "unk_c0" / Int32ul,
    "unk_c1" / Int32ul,
    "cost_flags" / Int32ul,
    "zeros42" / Bytes(42),
    "unk_l1" / Int8ul,
)

LEGACY_TAILS: dict[bytes, Any] = {WIN7_JOB_MARKER: Win7Tail, WIN10_JOB_MARKER: Win10Tail}


class BytesUntil(Construct):
    """Raw bytes up to (not including) a terminator; parse fails when there is none.

    Used for the tail of job records whose version is unknown: kept opaque up to the footer.
    """

    def __init__(self, terminator: bytes | Callable[[Any], bytes]):
        super().__init__()
        self.terminator = terminator

    def _terminator(self, context: Any) -> bytes:
        term = self.terminator(context) if callable(self.terminator) else self.terminator
        return bytes(term)

    def _parse(self, stream, context, path):
        start = stream_tell(stream, path)
        rest = stream.read()
        stream.seek(start)
        at = rest.find(self._terminator(context))
        if at < 0:
            raise StreamError("footer marker not found after the tail", path=path)
        return stream_read(stream, at, path)

    def _build(self, obj, stream, context, path):
        data = bytes(obj)
        stream_write(stream, data, len(data), path)
        return data

    def _sizeof(self, context, path):
        raise SizeofError("variable-length tail", path=path)


def tail_schema(marker: bytes) -> Any:
    """The tail layout for a job marker; unknown versions keep their tail as raw bytes."""
    return LEGACY_TAILS.get(bytes(marker), BytesUntil(bytes(marker)))


def legacy_job_sections(marker: bytes) -> tuple[tuple[str, Any], ...]:
    """Sections of a legacy job record, in order (names as in ESE_JOB_SECTIONS)."""
    return (
        ("header", job_fmt.JobHeader),
        ("strings", job_fmt.JobStrings),
        ("owner", job_fmt.OwnerSecurity),
        ("file_list", LegacyFileList),
        ("errors", job_fmt.ErrorSection21),
        ("counters", job_fmt.JobCounters),
        ("timers", job_fmt.JobTimers),
        ("network", job_fmt.JobNetwork),
        ("trailer", tail_schema(marker)),
    )


#: A whole legacy job record (header .. footer); the tail follows the header marker.
LegacyJobRecord = Struct(
    *(name / schema for name, schema in legacy_job_sections(WIN7_JOB_MARKER)[:-1]),
    "trailer" / Switch(lambda ctx: bytes(ctx.header.marker), LEGACY_TAILS,
                       default=BytesUntil(lambda ctx: ctx.header.marker)),
    "footer" / Bytes(16),
    Check(this.footer == this.header.marker),
)

#: One queue: bracket marker, job count, job records, bracket marker. Each record is a
#: RawCopy, so the builder can place existing record bytes verbatim (`dict(data=...)`).
LegacyQueue = Struct(
    Const(LEGACY_QUEUE_MARKER),
    "count" / Rebuild(Int32ul, len_(this.jobs)),
    Check(this.count <= MAX_JOBS_PER_QUEUE),
    "jobs" / Array(this.count, RawCopy(LegacyJobRecord)),
    Const(LEGACY_QUEUE_MARKER),
)

#: Everything from the prefix to the trailer GUID (the CRC32 covers exactly these bytes).
#: The prefix size is not stored: pass it as `prefix_size=16|24` to parse/build.
LegacyStateBody = Struct(
    "os_guid" / Bytes(16),
    "prefix_extra" / Bytes(this._params.prefix_size - 16),
    Const(LEGACY_FILE_HEADER),
    "queues" / Array(2, LegacyQueue),
    Const(LEGACY_FILE_HEADER),
    "trailer_guid" / Bytes(16),
)

#: The fixed parts of the framing, for the reader's procedural walk.
QueueCount = Struct(Const(LEGACY_QUEUE_MARKER), "count" / Int32ul)
FileTrailer = Struct(Const(LEGACY_QUEUE_MARKER), Const(LEGACY_FILE_HEADER), "trailer_guid" / Bytes(16))


def crc32(data: bytes) -> int:
    """zlib/IEEE CRC-32 as early Windows 10 stores it after the trailer GUID (verified, §7.1)."""
    return zlib.crc32(bytes(data)) & 0xFFFFFFFF


#: A whole state file without slack. `prefix_size=16` (Win7) or `24` (early Win10, ends with a CRC32).
LegacyStateFile = Struct(
    "body" / RawCopy(LegacyStateBody),
    "crc" / If(this._params.prefix_size == 24, Checksum(Int32ul, crc32, this.body.data)),
)
