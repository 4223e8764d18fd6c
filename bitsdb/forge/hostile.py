"""Adversarial inputs: stores crafted to cost the reader time, and damage done to good stores.

Used by the regression tests, `benchmarks/bench_hostile.py` and `tools/fuzz.py`. Every
function returns new bytes (or writes a copy): evidence is never touched.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from ..formats.ese import (
    HEADER_PAGE_SIZE_OFFSET,
    LARGE_PAGE_HEADER_SIZE,
    PAGE_FLAGS_OFFSET,
    PAGE_HEADER,
    PAGE_NEXT_OFFSET,
    PAGE_OBJID_OFFSET,
    PAGE_PGNO_OFFSET,
    PAGE_PREV_OFFSET,
    TAG_OFFSET_MASK,
    TAG_SIZE,
)
from ..formats.legacy import HEADER_PAIR, WIN10_JOB_MARKER
from ..formats.markers import ESE_JOB_MARKERS, FILE_LIST_MARKER, FILE_MARKER, LEGACY_PREFIX_WIN10, LEGACY_QUEUE_MARKER
from ..model import Job, JobFile, JobPriority, JobState, JobType
from .carving import job_bytes
from .legacy import encode_legacy_job

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



@dataclass(frozen=True)
class EsePage:
    pgno: int
    objid: int
    flags: int
    prev: int
    next: int


def page_size_of(data: bytes) -> int:
    return struct.unpack_from("<I", data, HEADER_PAGE_SIZE_OFFSET)[0]


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


def lv_tree(path: str, table: str) -> tuple[int, int] | None:
    """(objid, root page) of a table's long-value tree."""
    from ..sources.ese_lv import EseLongValues

    return EseLongValues(path).lv_tree(table)


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
    return set_page_field(data, pgno, PAGE_NEXT_OFFSET, value)


def break_child(data: bytes, pgno: int, node: int = 1, value: int = 0xFFFF) -> bytes:
    """Point the child pointer of branch node `node` (tag index) of page `pgno` elsewhere."""
    size = page_size_of(data)
    base = page_offset(data, pgno)
    length, start = struct.unpack_from("<HH", data, base + size - TAG_SIZE * (node + 1))
    end = base + LARGE_PAGE_HEADER_SIZE + (start & TAG_OFFSET_MASK) + (length & TAG_OFFSET_MASK)
    out = bytearray(data)
    struct.pack_into("<I", out, end - 4, value)
    return bytes(out)


def truncate(data: bytes, size: int) -> bytes:
    return bytes(data[:size])


# --------------------------------------------------------------------------- structure-aware mutation

#: Values that break counts and lengths at their edges.
INTERESTING_U32 = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x10000, 0x7FFFFFFF,
                   0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


def length_fields(data: bytes, limit: int = 4096) -> list[int]:
    """Offsets of u32 values that look like string counts (UTF-16 text of that many units follows)
    or like small counts before a GUID marker: what a mutation should aim at first."""
    found = []
    for offset in range(0, max(len(data) - 8, 0)):
        (value,) = struct.unpack_from("<I", data, offset)
        if 1 <= value <= 512 and offset + 4 + 2 * value <= len(data):
            text = data[offset + 4:offset + 4 + 2 * value]
            if text[1::2].count(0) == len(text) // 2 and text[-2:] == b"\x00\x00":
                found.append(offset)
        elif value <= 64 and data[offset - 16:offset] in (FILE_LIST_MARKER, LEGACY_QUEUE_MARKER):
            found.append(offset)
        if len(found) >= limit:
            break
    return found


def mutate_record(data: bytes, rng: random.Random, fields: list[int] | None = None) -> bytes:
    """One to four mutations of a record: counts and lengths set to edge values, bytes flipped,
    inserted, deleted or repeated, the record cut, markers spliced in."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        choice = rng.randrange(9)
        if not out:
            out += rng.randbytes(rng.randrange(1, 64))
            continue
        at = rng.randrange(len(out))
        if choice <= 1 and fields:
            offset = rng.choice(fields)
            if offset + 4 <= len(out):
                value = rng.choice(INTERESTING_U32) if choice == 0 else \
                    (struct.unpack_from("<I", out, offset)[0] + rng.choice((-2, -1, 1, 2, 16, 4096))) & 0xFFFFFFFF
                struct.pack_into("<I", out, offset, value)
        elif choice == 2:
            out[at] ^= 1 << rng.randrange(8)
        elif choice == 3:
            out[at:at] = rng.randbytes(rng.randrange(1, 17))
        elif choice == 4:
            del out[at:at + rng.randrange(1, 65)]
        elif choice == 5:
            span = out[at:at + rng.randrange(1, 256)]
            out[at:at] = span * rng.randrange(1, 4)
        elif choice == 6:
            del out[rng.randrange(len(out) + 1):]
        elif choice == 7:
            marker = rng.choice([*ESE_JOB_MARKERS, FILE_MARKER, FILE_LIST_MARKER, WIN10_JOB_MARKER])
            out[at:at + (16 if rng.random() < 0.5 else 0)] = marker
        elif at + 4 <= len(out):
            struct.pack_into("<I", out, at, rng.choice(INTERESTING_U32))
    return bytes(out)


def mutate_database(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One structural damage to an ESE database (pages, trees, long values, catalog), and its name."""
    size = page_size_of(data) if len(data) >= 240 else 0
    count = len(data) // size - 2 if size in (4096, 8192, 16384, 32768) else 0
    if count < 1:
        return mutate_record(data, rng), "bytes"
    pgno = rng.randrange(1, count + 1)
    base = (pgno + 1) * size
    out = bytearray(data)
    kind = rng.randrange(12)
    if kind == 0:
        return truncate(data, rng.randrange(len(data))), "truncated"
    if kind == 1:
        out[base:base + size] = bytes(size)
        return bytes(out), f"page {pgno} zeroed"
    if kind == 2:
        field_offset = rng.choice((PAGE_PREV_OFFSET, PAGE_NEXT_OFFSET, PAGE_OBJID_OFFSET, PAGE_PGNO_OFFSET))
        struct.pack_into("<I", out, base + field_offset, rng.choice((*INTERESTING_U32, pgno, rng.randrange(count + 4))))
        return bytes(out), f"page {pgno} header field +{field_offset}"
    if kind == 3:
        struct.pack_into("<I", out, base + PAGE_FLAGS_OFFSET, rng.choice((0, 1, 2, 3, 5, 0x80, 0x82, 0xFFFFFFFF))
                         | (struct.unpack_from("<I", out, base + PAGE_FLAGS_OFFSET)[0] & ~0xFF if rng.random() < 0.5 else 0))
        return bytes(out), f"page {pgno} flags"
    if kind == 4:                                   # itagState / ibMicFree / cbFree
        struct.pack_into("<H", out, base + rng.choice((28, 30, 32, 34)), rng.choice((0, 1, 0x7FFF, 0xFFFF,
                                                                                       rng.randrange(0x10000))))
        return bytes(out), f"page {pgno} tag counts"
    if kind == 5:                                   # a tag entry (node offset or size)
        tag = rng.randrange(1, 16)
        struct.pack_into("<H", out, base + size - 4 * tag + rng.choice((0, 2)), rng.randrange(0x10000))
        return bytes(out), f"page {pgno} tag {tag - 1}"
    if kind == 6:                                   # node data: child pointers, LV roots, record bytes
        at = base + LARGE_PAGE_HEADER_SIZE + rng.randrange(size - LARGE_PAGE_HEADER_SIZE)
        struct.pack_into("<I", out, min(at, base + size - 4), rng.choice((*INTERESTING_U32, rng.randrange(count + 4))))
        return bytes(out), f"page {pgno} node bytes"
    if kind == 7:
        other = rng.randrange(1, count + 1)
        out[base:base + size] = data[(other + 1) * size:(other + 2) * size]
        return bytes(out), f"page {pgno} replaced by page {other}"
    if kind == 8:
        return zero_page(data, rng.choice((4, 5, pgno))), "catalog or page zeroed"
    if kind == 9:
        for _ in range(rng.randrange(1, 64)):
            at = base + rng.randrange(size)
            out[at] ^= 1 << rng.randrange(8)
        return bytes(out), f"page {pgno} bits flipped"
    if kind == 10:                                  # the database header
        at = rng.choice((4, 8, 236, 16, 52, size + 236)) if rng.random() < 0.6 else rng.randrange(min(size * 2, len(data)))
        struct.pack_into("<I", out, min(at, len(out) - 4), rng.choice(INTERESTING_U32))
        return bytes(out), "database header"
    start = base + LARGE_PAGE_HEADER_SIZE + rng.randrange(size - 200)
    out[start:start + 64] = mutate_record(bytes(out[start:start + 64]), rng)[:64].ljust(64, b"\x00")
    return bytes(out), f"page {pgno} record bytes"
