"""ESE file blob (FORMAT.md §6) and the file body shared with legacy inline records (§7.4)."""

from __future__ import annotations

from construct import (
    Array,
    Bytes,
    Check,
    Const,
    Int8ul,
    Int32sl,
    Int32ul,
    Int64ul,
    Rebuild,
    Struct,
    len_,
    this,
)

from .markers import FILE_MARKER, PROGRESS_TERMINATOR
from .plain import SectionList
from .primitives import FileTime, WStr

MAX_RANGES = 1_000_000

FileRange = Struct("offset" / Int64ul, "length" / Int64ul)

#: Names, sizes, destination volume, ranges and the remote Last-Modified time.
FileBody = Struct(
    "local_name" / WStr,
    "remote_name" / WStr,
    "temp_name" / WStr,
    "bytes_transferred" / Int64ul,
    "bytes_total" / Int64ul,
    "unk_f0" / Int8ul,
    "drive" / WStr,
    "volume" / WStr,
    "unk_f1" / Int32ul,
    "unk_f2" / Int32ul,
    "size_2" / Int64ul,
    "local_attributes" / Int32ul,
    "unk_count" / Int32sl,
    # max(unk_count, 0) written as an expression (a negative count means no bytes) so that it compiles.
    "unk_bytes" / Bytes((this.unk_count > 0) * this.unk_count),
    "unk_flag" / Int8ul,
    "range_count" / Rebuild(Int32ul, len_(this.ranges)),
    Check(this.range_count <= MAX_RANGES),
    "ranges" / Array(this.range_count, FileRange),
    "remote_last_modified" / FileTime,
)

#: Progress block A: overall completion (§6.1).
ProgressA = Struct(
    "unk_a16" / Bytes(16),
    "complete" / Int32ul,
    "bytes_done" / Int64ul,
    "unk_a8" / Int64ul,
    Const(PROGRESS_TERMINATOR),
)

#: Progress block B: per-range progress entries (§6.1).
ProgressB = Struct(
    "unk_b0" / Int32ul,
    "unk_b6" / Bytes(6),
    "count" / Rebuild(Int32ul, len_(this.entries)),
    Check(this.count <= MAX_RANGES),
    "unk_b12" / Bytes(12),
    "entries" / Array(this.count, Struct("bytes_done" / Int64ul, "unk" / Int64ul)),
    Const(PROGRESS_TERMINATOR),
)

#: A well-formed download blob between its two markers, in sections (parsed in one go when it is).
ESE_FILE_SECTIONS = SectionList("ese_file", (("body", FileBody), ("progress_a", ProgressA), ("progress_b", ProgressB)))

#: Download file blob as stored in `Files.Blob`.
EseFileBlob = Struct(
    Const(FILE_MARKER),
    "body" / FileBody,
    "progress_a" / ProgressA,
    "progress_b" / ProgressB,
    Const(FILE_MARKER),
)

#: Upload file head per dissect (S): a GUID and the local file's last-write time precede the body.
UploadFileHead = Struct(
    "marker" / Bytes(16),
    "local_file_mtime" / FileTime,
)
