"""Large event logs for benchmarks, made from a real one: no EVTX writer exists, so real records are
replicated inside the format's own framing.

A chunk (64 KiB) is self-contained: its records refer to templates and names by offset inside
the chunk. A record whose template was defined by an earlier record of the chunk can therefore be
copied to the end of the chunk and still decode (the copy is verified by decoding it). The
chunk is filled with such copies (record numbers renumbered, checksums recomputed), and the
dense chunk is repeated up to the size asked for, with a file header that counts the chunks.
The EventRecordID inside each record's XML is the original's (it is template data).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from ..sources.evtx import CHUNK_SIZE, HEADER_SIZE

CHUNK_HEADER = 0x200
RECORD_SIGNATURE = b"\x2a\x2a\x00\x00"


def _records(chunk: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each record of a chunk, up to its free-space offset."""
    free = struct.unpack_from("<I", chunk, 0x30)[0]
    out, offset = [], CHUNK_HEADER
    while offset + 24 <= min(free, CHUNK_SIZE) and chunk[offset:offset + 4] == RECORD_SIGNATURE:
        size = struct.unpack_from("<I", chunk, offset + 4)[0]
        if size < 28 or offset + size > CHUNK_SIZE:
            break
        out.append((offset, size))
        offset += size
    return out


def _finish_chunk(chunk: bytearray, records: list[tuple[int, int]], first_number: int) -> None:
    """Renumber the records from `first_number` and rewrite the chunk header and its checksums."""
    for index, (offset, _) in enumerate(records):
        struct.pack_into("<Q", chunk, offset + 8, first_number + index)
    last = first_number + len(records) - 1
    end = records[-1][0] + records[-1][1]
    struct.pack_into("<QQQQ", chunk, 8, first_number, last, first_number, last)
    struct.pack_into("<II", chunk, 0x2C, records[-1][0], end)
    chunk[end:] = b"\x00" * (CHUNK_SIZE - end)
    struct.pack_into("<I", chunk, 0x34, zlib.crc32(bytes(chunk[CHUNK_HEADER:end])))
    struct.pack_into("<I", chunk, 0x7C, zlib.crc32(bytes(chunk[:0x78]) + bytes(chunk[0x80:CHUNK_HEADER])))


def _decodes(chunk: bytes, header: bytes) -> list[str]:
    """The rendered records of a one-chunk file (empty when they do not decode)."""
    import evtx

    file_header = bytearray(header)
    struct.pack_into("<H", file_header, 0x2A, 1)
    try:
        parser = evtx.PyEvtxParser(_Buffer(bytes(file_header) + chunk), number_of_threads=1)
        return [r["data"] for r in parser.records_json()]
    except (RuntimeError, OSError, ValueError):
        return []


class _Buffer:
    """A minimal file-like object over bytes (what PyEvtxParser accepts besides a path)."""

    def __init__(self, data: bytes) -> None:
        import io

        self._io = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._io.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._io.seek(offset, whence)

    def tell(self) -> int:
        return self._io.tell()


def dense_chunk(source: Path) -> tuple[bytes, bytes, int]:
    """(file header, first chunk filled with verified copies of its own records, record count)."""
    data = Path(source).read_bytes()
    header = data[:HEADER_SIZE]
    chunk = bytearray(data[HEADER_SIZE:HEADER_SIZE + CHUNK_SIZE])
    records = _records(chunk)
    if not records:
        raise ValueError(f"{source}: no records in the first chunk")
    _finish_chunk(chunk, records, 1)
    reference = _decodes(bytes(chunk), header)
    copyable = []
    for index, (offset, size) in enumerate(records):
        trial = bytearray(chunk)
        end = records[-1][0] + records[-1][1]
        if end + size > CHUNK_SIZE:
            continue
        trial[end:end + size] = chunk[offset:offset + size]
        _finish_chunk(trial, records + [(end, size)], 1)
        rendered = _decodes(bytes(trial), header)
        if len(rendered) == len(records) + 1 and rendered[-1] == reference[index]:
            copyable.append((offset, size))
    if not copyable:
        raise ValueError(f"{source}: no record of the first chunk can be copied (each defines its template)")
    end = records[-1][0] + records[-1][1]
    turn = 0
    while end + copyable[turn % len(copyable)][1] <= CHUNK_SIZE:
        offset, size = copyable[turn % len(copyable)]
        chunk[end:end + size] = chunk[offset:offset + size]
        records.append((end, size))
        end += size
        turn += 1
    _finish_chunk(chunk, records, 1)
    return header, bytes(chunk), len(records)


def replicate_log(source: Path, target: Path, size: int) -> int:
    """Write `target`, about `size` bytes of real records from `source`; returns the record count."""
    header, chunk, per_chunk = dense_chunk(source)
    count = max(1, (size - HEADER_SIZE) // CHUNK_SIZE)
    file_header = bytearray(header)
    struct.pack_into("<QQQ", file_header, 8, 0, count - 1, count * per_chunk + 1)
    struct.pack_into("<H", file_header, 0x2A, count)
    struct.pack_into("<I", file_header, 0x78, struct.unpack_from("<I", file_header, 0x78)[0] & ~1)   # not dirty
    struct.pack_into("<I", file_header, 0x7C, zlib.crc32(bytes(file_header[:0x78])))
    with open(target, "wb") as out:
        out.write(bytes(file_header))
        work = bytearray(chunk)
        records = _records(work)
        for number in range(count):
            _finish_chunk(work, records, number * per_chunk + 1)
            out.write(bytes(work))
    return count * per_chunk
