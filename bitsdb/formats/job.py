"""ESE job blob (FORMAT.md §5), declared section by section.

The decoder (bitsdb.decode) parses the sections one after the other so that a record
whose tail is unfamiliar still yields every section before it; `EseJobBlob` strings
the same sections together for `build`.
"""

from __future__ import annotations

from typing import Any

from construct import (
    Array,
    Bytes,
    Check,
    Const,
    Construct,
    Container,
    If,
    Int8ul,
    Int32sl,
    Int32ul,
    Int64ul,
    ListContainer,
    Rebuild,
    SizeofError,
    StreamError,
    Struct,
    len_,
    stream_tell,
    stream_write,
    this,
)

from .markers import FILE_LIST_MARKER
from .plain import SectionList, guid_bytes, scan_optional_fields
from .primitives import FileTime, Guid, WStr

#: Sanity limits (FORMAT.md §9.4) that tell a real record from misaligned bytes.
MAX_FILES_PER_JOB = 4096
MAX_ERRORS_PER_JOB = 64
MAX_SD_SIZE = 65536

JobHeader = Struct(
    "marker" / Bytes(16),
    "unk_10" / Int32ul,
    "priority" / Int32ul,
    "state" / Int32ul,
    "type" / Int32ul,
    "job_id" / Guid,
)

JobStrings = Struct(
    "display_name" / WStr,
    "description" / WStr,
    "notify_program" / WStr,
    "notify_parameters" / WStr,
    "owner_sid" / WStr,
    "notify_flags" / Int32ul,
)

#: 24-byte owner token block, then the self-relative security descriptor (§5.4).
OwnerSecurity = Struct(
    "tok_unk0" / Int32ul,
    "owner_integrity_rid" / Int32ul,
    "tok_unk2" / Int32ul,
    "tok_unk3" / Int32ul,
    "tok_unk4" / Int32ul,
    "sd_size" / Rebuild(Int32ul, len_(this.security_descriptor)),
    Check(this.sd_size < MAX_SD_SIZE),
    "security_descriptor" / Bytes(this.sd_size),
)

#: ESE form of the file list: file GUIDs that are `Files.Id` values (§5.5).
EseFileList = Struct(
    Const(FILE_LIST_MARKER),
    "count" / Rebuild(Int32ul, len_(this.file_ids)),
    Check(this.count <= MAX_FILES_PER_JOB),
    "file_ids" / Array(this.count, Guid),
    Const(FILE_LIST_MARKER),
)

#: 21-byte error record (+ optional string), verified on carved ESE records (§5.6).
ErrorRecord21 = Struct(
    "err_unk0" / Int32ul,
    "hresult" / Int32ul,
    "err_unk2" / Int32ul,
    "context" / Int32ul,
    "err_unk4" / Int32ul,
    "has_extra" / Int8ul,
    "extra" / If(this.has_extra != 0, WStr),
)

#: 25-byte error record of older builds (ANSSI, DLEAPP; not seen in our data).
ErrorRecord25 = Struct(
    "code" / Int64ul,
    "err_unk_a" / Int32ul,
    "err_unk_b" / Int32ul,
    "err_unk_c" / Int32ul,
    "err_unk_d" / Int32ul,
    "err_unk_e" / Int8ul,
)


def error_section(record):
    """u32 count + records of one form; both forms share the count rule."""
    return Struct(
        "count" / Rebuild(Int32ul, len_(this.records)),
        Check(this.count <= MAX_ERRORS_PER_JOB),
        "records" / Array(this.count, record),
    )


ErrorSection21 = error_section(ErrorRecord21)
ErrorSection25 = error_section(ErrorRecord25)

#: Counters and the six job times (§5.7).
JobCounters = Struct(
    "transient_error_count" / Int32ul,
    "min_retry_delay" / Int32ul,
    "no_progress_timeout" / Int32ul,
    "creation_time" / FileTime,
    "modification_time" / FileTime,
    "modification_time_2" / FileTime,
    "completion_time" / FileTime,
    "unk6" / Bytes(6),
    "inactivity_base_time" / FileTime,
    "expiration_time" / FileTime,
)

#: One optional timer: u8 present + (start, end) FILETIMEs (§5.8).
Timer = Struct(
    "present" / Int8ul,
    Check(this.present <= 1),
    "window" / If(this.present != 0, Struct("start" / FileTime, "end" / FileTime)),
)

JobTimers = Array(3, Timer)

#: u8 present + string (proxy list / bypass list, per SafeBreach).
OptionalWStr = Struct(
    "present" / Int8ul,
    Check(this.present <= 1),
    "value" / If(this.present != 0, WStr),
)

#: DPAPI-protected custom HTTP headers (§5.9).
CustomHeaders = Struct(
    "present" / Int8ul,
    Check(this.present <= 1),
    "data"
    / If(
        this.present != 0,
        Struct(
            "plain_len" / Int32ul,
            "unk" / Int32ul,
            "blob_len" / Rebuild(Int32ul, len_(this.dpapi_blob)),
            "dpapi_blob" / Bytes(this.blob_len),
        ),
    ),
)

#: Proxy, ACL flags, custom headers, TLS flags and max download time (§5.9).
JobNetwork = Struct(
    "proxy_usage" / Int32ul,
    "proxy_list" / OptionalWStr,
    "proxy_bypass" / OptionalWStr,
    "unk_a1" / Int8ul,
    "file_acl_flags" / Int32ul,
    "unk_a3" / Bytes(3),
    "custom_headers" / CustomHeaders,
    "unk_b24" / Bytes(24),
    "security_flags" / Int32ul,
    "unk_b4" / Int32ul,
    "max_download_time" / Int32ul,
)

#: Trailer fields from max_download_time up to the first optional field (§5.10, §5.10.1).
EseTrailerHead = Struct(
    "unk_c0" / Int32ul,
    "unk_c1" / Int32ul,
    "cost_flags" / Int32ul,
    "zeros42" / Bytes(42),
    "net_a_flag" / Int8ul,
    "net_a_guid" / Guid,
    "net_b_flag" / Int8ul,
)

#: Trailer fields from the second network GUID to the end, creator image included (§5.10).
EseTrailerTail = Struct(
    "net_b_guid" / Guid,
    "zeros21" / Bytes(21),
    "creator_image" / WStr,
    "unk_d16" / Bytes(16),
    "http_method" / WStr,
    "unk_e3" / Bytes(3),
    "aux_string" / WStr,
    "unk_e1" / Int8ul,
)

class OptionalFieldsCut(StreamError):
    """The record ends (or stops making sense) inside the optional fields: `fields` were read
    before that point, which is `stream_end` in the stream."""

    def __init__(self, message: str, fields: list, stream_end: int, path: Any = None):
        super().__init__(message, path=path)
        self.fields = fields
        self.stream_end = stream_end


class OptionalFields(Construct):
    """The flag-prefixed optional fields of the 24H2 trailer (§5.10.1), found by
    `scan_optional_fields`; each parses to Container(kind, value) and builds back to the
    same bytes. Parsing fails when the creator tail cannot be found after them."""

    def _parse(self, stream, context, path):
        start = stream_tell(stream, path)
        rest = stream.read()
        fields, end, problem = scan_optional_fields(rest, guid_bytes(context.net_a_guid))
        found = ListContainer(Container(kind=kind, value=value) for kind, value in fields)
        if problem is not None:
            raise OptionalFieldsCut(problem, found, start + end, path=path)
        stream.seek(start + end)
        return found

    def _build(self, obj, stream, context, path):
        data = b"".join(optional_field_bytes(item["kind"], item["value"]) for item in obj or [])
        stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("optional fields have no fixed size", path=path)


def optional_field_bytes(kind: str, value: Any) -> bytes:
    """The bytes of one optional field (the inverse of scan_optional_fields)."""
    if kind == "absent":
        return b"\x00"
    if kind == "text":
        return b"\x01" + WStr.build(value)
    if kind == "u32":
        return b"\x01" + Int32ul.build(value)
    if kind == "raw":
        return bytes(value)
    raise ValueError(f"unknown optional field kind {kind!r}")


#: ESE-only trailer after max_download_time, up to the footer (§5.10); Windows 11 24H2 puts
#: flag-prefixed optional fields (package identity) before the second network GUID (§5.10.1).
EseTrailer = Struct(
    *EseTrailerHead.subcons,
    "optional_fields" / OptionalFields(),
    *EseTrailerTail.subcons,
)

#: The sections of an ESE job blob in order: (name, schema). The decoder walks this list.
ESE_JOB_SECTIONS = SectionList("ese_job", (
    ("header", JobHeader),
    ("strings", JobStrings),
    ("owner", OwnerSecurity),
    ("file_list", EseFileList),
    ("errors", ErrorSection21),
    ("counters", JobCounters),
    ("timers", JobTimers),
    ("network", JobNetwork),
    ("trailer", EseTrailer),
))

#: A whole single-marker ESE job blob, for `build`.
EseJobBlob = Struct(*(name / schema for name, schema in ESE_JOB_SECTIONS), "footer" / Bytes(16))

# Signed view of an HRESULT is sometimes wanted by callers.
HResult = Int32sl
