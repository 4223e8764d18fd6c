"""Adversarial inputs: stores crafted to cost the reader time, and damage done to good stores.

Used by the regression tests, `benchmarks/bench_hostile.py` and `tools/fuzz.py`. Every
function returns new bytes (or writes a copy): evidence is never touched.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from ..formats.legacy import HEADER_PAIR, WIN10_JOB_MARKER
from ..formats.markers import ESE_JOB_MARKERS, FILE_LIST_MARKER, FILE_MARKER, LEGACY_PREFIX_WIN10, LEGACY_QUEUE_MARKER
from ..model import Job, JobFile, JobPriority, JobState, JobType
from .carving import job_bytes
from .legacy import build_state_file, encode_legacy_job

MIB = 1 << 20

# --------------------------------------------------------------------------- costly shapes


def _legacy_job() -> Job:
    job = Job(job_id="5c26fc39-0647-43cf-bd6b-2ca3125c7fb3", type=JobType.DOWNLOAD, priority=JobPriority.NORMAL,
              state=JobState.QUEUED, display_name="x", description="", notify_program="", notify_parameters="",
              owner_sid="S-1-5-18", creation_time=133000000000000000, modification_time=133000000000000000)
    job.files = [JobFile(file_id="9d39dd16-9979-4b37-a5aa-359b775f2f8a", local_name="C:\\x", remote_name="http://x/x", temp_name="C:\\t", bytes_total=1,
                         bytes_transferred=0)]
    return job


def legacy_job_record() -> bytes:
    """One complete, valid legacy (Windows 10) job record."""
    return encode_legacy_job(_legacy_job(), "win10")


def _state_file_around(body: bytes, count: int = 1) -> bytes:
    """A legacy state file whose first queue declares `count` jobs and holds `body` as its records."""
    prefix = LEGACY_PREFIX_WIN10 + bytes(8)
    return prefix + HEADER_PAIR + struct.pack("<I", count) + body + LEGACY_QUEUE_MARKER + struct.pack("<I", 0) \
        + LEGACY_QUEUE_MARKER


def _fill(unit: bytes, size: int) -> bytes:
    return (unit * (size // max(len(unit), 1) + 1))[:size]


def dense_markers(size: int = MIB, marker: bytes = WIN10_JOB_MARKER) -> bytes:
    """A state file whose queue is nothing but job markers, back to back."""
    return _state_file_around(_fill(marker, size), count=65535)


def plausible_heads(size: int = MIB, cut: int = 96, seed: int = 7) -> bytes:
    """Job records cut after `cut` bytes (header, strings, owner... still valid) then garbage, repeated."""
    rng = random.Random(seed)
    head = legacy_job_record()[:cut]
    out = bytearray()
    while len(out) < size:
        out += head + rng.randbytes(rng.randrange(0, 24))
    return _state_file_around(bytes(out[:size]), count=65535)


def huge_counts(size: int = MIB) -> bytes:
    """Job heads declaring the largest plausible string lengths and file counts, repeated."""
    record = legacy_job_record()
    header = record[:40]
    big_string = struct.pack("<I", 32768) + b"A\x00" * 64          # declares 64 KiB, holds 128 bytes
    file_list = FILE_LIST_MARKER + struct.pack("<I", 4096)
    unit = header + big_string + header + struct.pack("<I", 2) + b"x\x00" * 2 + file_list
    return _state_file_around(_fill(unit, size), count=65535)


def dense_ese_markers(size: int = MIB) -> bytes:
    """Every ESE job marker and the file marker repeated: a carving worst case."""
    return _fill(b"".join(ESE_JOB_MARKERS) + FILE_MARKER, size)


def ese_plausible_heads(size: int = MIB, seed: int = 9) -> bytes:
    """ESE job blobs cut at every few bytes of their head, then garbage: each hit looks like a record."""
    rng = random.Random(seed)
    blob = job_bytes(1)
    out = bytearray()
    while len(out) < size:
        out += blob[:rng.randrange(40, min(len(blob), 400))] + rng.randbytes(rng.randrange(0, 16))
    return bytes(out[:size])


COSTLY_SHAPES = {
    "legacy dense markers": lambda size: dense_markers(size),
    "legacy plausible heads": lambda size: plausible_heads(size),
    "legacy heads + strings": lambda size: plausible_heads(size, cut=200),
    "legacy huge counts": lambda size: huge_counts(size),
    "ese dense markers": lambda size: dense_ese_markers(size),
    "ese plausible heads": lambda size: ese_plausible_heads(size),
}

# --------------------------------------------------------------------------- damaged ESE databases

PAGE_HEADER = struct.Struct("<QqIIIHHHHI")   # checksum, dbtime, prev, next, objidFDP, cbFree, ..., itagState, flags
_PAGE_FLAGS_OFFSET = 36
_PREV_OFFSET, _NEXT_OFFSET, _OBJID_OFFSET = 16, 20, 24


@dataclass(frozen=True)
class EsePage:
    pgno: int
    objid: int
    flags: int
    prev: int
    next: int


def page_size_of(data: bytes) -> int:
    return struct.unpack_from("<I", data, 236)[0]


def page_offset(data: bytes, pgno: int) -> int:
    return (pgno + 1) * page_size_of(data)


def pages(data: bytes) -> list[EsePage]:
    """Every page's header fields (page numbers start at 1 after the two header pages)."""
    size = page_size_of(data)
    out = []
    for pgno in range(1, len(data) // size - 1):
        _, _, prev, nxt, objid, _, _, _, _, flags = PAGE_HEADER.unpack_from(data, (pgno + 1) * size)
        out.append(EsePage(pgno, objid, flags, prev, nxt))
    return out


def catalog(path: str) -> dict[str, tuple[int, int]]:
    """Table name -> (objid, root page) of a database file, read with the reader's own walker."""
    from ..sources.ese_lv import EseLongValues

    reader = EseLongValues(path)
    return {name: reader.table(name) for name in ("Jobs", "Files") if reader.table(name)}


def zero_page(data: bytes, pgno: int) -> bytes:
    size = page_size_of(data)
    out = bytearray(data)
    out[(pgno + 1) * size:(pgno + 2) * size] = bytes(size)
    return bytes(out)


def set_page_field(data: bytes, pgno: int, field_offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, page_offset(data, pgno) + field_offset, value)
    return bytes(out)


def break_sibling(data: bytes, pgno: int, value: int = 0xFFFF) -> bytes:
    """Point a leaf page's next-page link elsewhere."""
    return set_page_field(data, pgno, _NEXT_OFFSET, value)


def break_child(data: bytes, pgno: int, node: int = 1, value: int = 0xFFFF) -> bytes:
    """Point the child pointer of branch node `node` (tag index) of page `pgno` elsewhere."""
    size = page_size_of(data)
    base = page_offset(data, pgno)
    length, start = struct.unpack_from("<HH", data, base + size - 4 * (node + 1))
    end = base + 80 + (start & 0x7FFF) + (length & 0x7FFF)
    out = bytearray(data)
    struct.pack_into("<I", out, end - 4, value)
    return bytes(out)


def table_pages(data: bytes, objid: int, flag: int | None = None) -> list[int]:
    return [p.pgno for p in pages(data) if p.objid == objid and (flag is None or p.flags & flag)]


def truncate(data: bytes, size: int) -> bytes:
    return bytes(data[:size])
