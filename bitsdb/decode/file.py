"""File records (FORMAT.md §6, ESE `Files.Blob`) <-> JobFile."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..formats.markers import FILE_MARKER, PROGRESS_TERMINATOR
from ..formats.plain import MAX_WSTR_UNITS
from ..model import FileRange, JobFile, keep_raw_strings, stored_text
from .sections import BlobError, hex_or_none, parse_prefix, parse_whole, shared, unhex

if TYPE_CHECKING:
    from construct import Container

BYTES_UNKNOWN = 0xFFFFFFFFFFFFFFFF
_U32 = struct.Struct("<I")


def file_head_span(data: bytes, offset: int = 0, stop: int | None = None) -> int:
    """Bytes from the file marker at `offset` to the end of the temp name when a carvable file
    record can start there (local and remote names present, plausible lengths that fit), else 0.
    Struct only: the carver skips other hits before decoding them."""
    stop = len(data) if stop is None else min(stop, len(data))
    end = offset + 16
    for index in range(3):
        if end + 4 > stop:
            return 0
        (units,) = _U32.unpack_from(data, end)
        end += 4
        if units > MAX_WSTR_UNITS or end + 2 * units > stop or (index < 2 and units == 0):
            return 0
        end += 2 * units
    return end - offset


def file_from_body(body: Container, file_id: str | None = None, layout: str = "download") -> JobFile:
    """Map a parsed FileBody (possibly a prefix of it) onto a JobFile."""
    f = JobFile(file_id=file_id, layout=layout)
    for name in ("local_name", "remote_name", "temp_name", "bytes_transferred", "local_attributes",
                 "remote_last_modified"):
        if name in body:
            setattr(f, name, body[name])
    for name in ("drive", "volume"):
        if name in body:
            setattr(f, name, shared(body[name]))
    if "bytes_total" in body:
        f.bytes_total = -1 if body.bytes_total == BYTES_UNKNOWN else body.bytes_total
    if "ranges" in body:
        f.ranges = [FileRange(offset=r.offset, length=-1 if r.length == BYTES_UNKNOWN else r.length)
                    for r in body.ranges]
    f.unknown = {k: body[k] for k in ("unk_f0", "unk_f1", "unk_f2", "size_2", "unk_flag") if k in body}
    if body.get("unk_bytes"):
        f.unknown["unk_bytes"] = bytes(body.unk_bytes).hex()
    keep_raw_strings(f)
    return f


#: A well-formed download blob between its two markers, parsed in one go (the common case):
#: formats.file.ESE_FILE_SECTIONS, by the key of its generated parser.
FILE_SECTIONS = "ese_file"


#: Where the file body starts in each layout: after the marker, or after the upload head
#: (16 bytes, then the local file's FILETIME).
BODY_START = {"download": 16, "upload": 24}


def decode_file_blob(data: bytes, file_id: str | None = None, layout_hint: str | None = None) -> JobFile:
    """Decode a Files.Blob. Upload layout (S(dissect)) when the hint says so or download fails."""
    data = bytes(data)
    if len(data) < 20:
        raise BlobError(f"{len(data)} bytes is too short for a file record")
    # Well-formed records in one parse, in the order the walk below tries the layouts.
    if layout_hint != "upload" and data[:16] == FILE_MARKER:
        f = _whole_file(data, file_id, "download")
        if f is not None:
            return f
    if layout_hint == "upload" or data[:16] != FILE_MARKER:
        f = _whole_file(data, file_id, "upload")
        if f is not None:
            return f
    from ..formats import file as file_fmt

    layouts = ["upload", "download"] if layout_hint == "upload" else ["download", "upload"]
    first_error = None
    for layout in layouts:
        if layout == "download" and data[:16] != FILE_MARKER:
            first_error = first_error or "does not start with the file marker"
            continue
        body, end, error = parse_prefix(file_fmt.FileBody, data, BODY_START[layout])
        if body is None or "temp_name" not in body:
            first_error = first_error or f"file body: {error}"
            continue
        if not (body.local_name or body.remote_name):
            first_error = first_error or "no local or remote name"
            continue
        f = _file_of(body, data, file_id, layout)
        if error is not None:
            f.partial, f.partial_reason, f.undecoded = True, f"file body: {error} (offset 0x{end:x})", data[end:]
            return f
        _decode_progress(f, data, end)
        return f
    raise BlobError(f"not a file record: {first_error}")


def _whole_file(data: bytes, file_id: str | None, layout: str) -> JobFile | None:
    """The record read in one parse (body and both progress blocks up to the footer), or None."""
    whole = parse_whole(FILE_SECTIONS, data, BODY_START[layout])
    if whole is None or data[whole[1]:] != FILE_MARKER:
        return None
    parsed = whole[0]
    body = parsed["body"]
    if not (body["local_name"] or body["remote_name"]):
        return None
    f = _file_of(body, data, file_id, layout)
    _apply_progress(f, parsed["progress_a"], parsed["progress_b"])
    return f


def _file_of(body: Container, data: bytes, file_id: str | None, layout: str) -> JobFile:
    """file_from_body, plus the upload head (its marker and the local file's time)."""
    f = file_from_body(body, file_id, layout)
    if layout == "upload":
        (f.local_file_mtime,) = struct.unpack_from("<Q", data, 16)
        f.unknown["upload_marker"] = data[:16].hex()
    return f


def _decode_progress(f: JobFile, data: bytes, offset: int) -> None:
    from ..formats import file as file_fmt

    a, end_a, error_a = parse_prefix(file_fmt.ProgressA, data, offset)
    b, end_b, error_b = (None, end_a, None)
    if error_a is None:
        b, end_b, error_b = parse_prefix(file_fmt.ProgressB, data, end_a)
    if error_a is None and error_b is None and data[end_b:] == FILE_MARKER:
        _apply_progress(f, a, b)
        return
    rest = data[offset:]
    f.partial = True
    f.undecoded = rest
    if not rest.endswith(FILE_MARKER):
        f.partial_reason = "record ends without its footer (truncated)"
    elif rest.count(PROGRESS_TERMINATOR) != 2:
        f.partial_reason = "progress blocks not understood"
    else:
        f.partial_reason = f"progress blocks not understood: {error_a or error_b or 'unexpected bytes'}"


def _apply_progress(f: JobFile, a: Container, b: Container) -> None:
    f.progress_complete = a["complete"]
    f.progress_bytes_done = a["bytes_done"]
    f.unknown.update(progress_a_unk16=hex_or_none(a["unk_a16"]), progress_a_unk8=a["unk_a8"],
                     progress_b_unk0=b["unk_b0"], progress_b_unk6=hex_or_none(b["unk_b6"]),
                     progress_b_unk12=hex_or_none(b["unk_b12"]),
                     progress_b_entries=[[e["bytes_done"], e["unk"]] for e in b["entries"]])


def encode_file(f: JobFile) -> bytes:
    """Build a Files.Blob (download layout; upload layout per dissect's description)."""
    from ..formats import file as file_fmt

    u = f.unknown
    total = BYTES_UNKNOWN if f.bytes_total in (None, -1) else f.bytes_total
    transferred = f.bytes_transferred or 0
    body = file_fmt.FileBody.build(dict(
        local_name=stored_text(f, "local_name"), remote_name=stored_text(f, "remote_name"),
        temp_name=stored_text(f, "temp_name"),
        bytes_transferred=transferred, bytes_total=total, unk_f0=u.get("unk_f0", 0),
        drive=stored_text(f, "drive"), volume=stored_text(f, "volume"), unk_f1=u.get("unk_f1", 3), unk_f2=u.get("unk_f2", 0),
        size_2=u.get("size_2", total), local_attributes=0x80 if f.local_attributes is None else f.local_attributes,
        unk_count=len(bytes.fromhex(u.get("unk_bytes", ""))), unk_bytes=bytes.fromhex(u.get("unk_bytes", "")),
        unk_flag=u.get("unk_flag", 0),
        ranges=[dict(offset=r.offset, length=BYTES_UNKNOWN if r.length == -1 else r.length) for r in f.ranges],
        remote_last_modified=f.remote_last_modified or 0))
    if f.undecoded and f.partial:
        tail = f.undecoded
    else:
        complete = int(total != BYTES_UNKNOWN and transferred == total) if f.progress_complete is None \
            else f.progress_complete
        done = transferred if f.progress_bytes_done is None else f.progress_bytes_done
        tail = file_fmt.ProgressA.build(dict(unk_a16=unhex(u.get("progress_a_unk16"), 16), complete=complete,
                                             bytes_done=done, unk_a8=u.get("progress_a_unk8", 0)))
        entries = u.get("progress_b_entries", [[transferred, 0]])
        tail += file_fmt.ProgressB.build(dict(
            unk_b0=u.get("progress_b_unk0", 1), unk_b6=unhex(u.get("progress_b_unk6"), 6),
            unk_b12=unhex(u.get("progress_b_unk12"), 12),
            entries=[dict(bytes_done=d, unk=x) for d, x in entries]))
        tail += FILE_MARKER
    if f.layout == "upload":
        head = unhex(u.get("upload_marker"), 16) if u.get("upload_marker") else FILE_MARKER
        return head + struct.pack("<Q", f.local_file_mtime or 0) + body + tail
    return FILE_MARKER + body + tail
