"""Scanning one byte source as independent ranges, and merging them back deterministically.

A volume is cut into ranges that any process can scan on its own: each range owns the
hits that start inside it and reads RANGE_OVERLAP bytes past its end (more than the
largest record a decoder accepts), so every record is decoded from exactly the bytes a
whole-stream scan would see. Ranges decode every hit, even those inside a complete
record; `merge_ranges` applies that rule afterwards in offset order, so the merged list
is the same whatever the cut and whichever process finished first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterable

from .scanner import DEFAULT_WINDOW, CarvedRecord, MarkerFamily, Scanner

#: Default size of one unit of work (a task): large enough that task overhead is noise.
DEFAULT_RANGE = 64 << 20


@dataclass
class RangeResult:
    """What one range produced: every validated hit it owns (none dropped yet)."""

    start: int
    stop: int
    hits: int = 0
    records: list[CarvedRecord] = field(default_factory=list)


def merge_regions(regions: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-empty regions (touching ones joined)."""
    out: list[list[int]] = []
    for start, stop in sorted(regions):
        if stop <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], stop)
        else:
            out.append([start, stop])
    return [(a, b) for a, b in out]


def split_ranges(regions: Iterable[tuple[int, int]], range_size: int = DEFAULT_RANGE) -> list[tuple[int, int]]:
    """The regions cut into ranges of at most `range_size` bytes, in offset order."""
    range_size = max(range_size, 1)
    out = []
    for start, stop in merge_regions(regions):
        for at in range(start, stop, range_size):
            out.append((at, min(stop, at + range_size)))
    return out


def scan_range(stream: BinaryIO, start: int, stop: int, *, families: Iterable[MarkerFamily] | None = None,
               window: int = DEFAULT_WINDOW) -> RangeResult:
    """Every validated record whose marker lies in [start, stop) of a seekable stream."""
    scanner = Scanner(families, window=window, hash_input=False)
    records = list(scanner.records(stream, start=start, stop=stop, swallow=False))
    return RangeResult(start=start, stop=stop, hits=scanner.stats.hits, records=records)


def merge_ranges(results: Iterable[RangeResult]) -> list[CarvedRecord]:
    """Records of one source in offset order; a hit inside a complete record is that record's own
    marker (a footer, the inner marker of a double-marker blob) and is dropped, as a single scan does."""
    records = sorted((record for result in results for record in result.records), key=lambda r: r.offset)
    kept: list[CarvedRecord] = []
    skip_until = 0
    for record in records:
        if record.offset < skip_until:
            continue
        kept.append(record)
        if record.complete:
            skip_until = record.offset + record.length
    return kept
