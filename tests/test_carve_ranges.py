"""Range scanning: any cut of a stream into ranges, merged, gives what one whole-stream scan gives."""

from __future__ import annotations

import io
import random

import pytest

from bitsdb.carve.history import content_key
from bitsdb.carve.ranges import merge_ranges, merge_regions, scan_range, split_ranges
from bitsdb.carve.scanner import MAX_RECORD, Scanner
from bitsdb.forge.carving import file_bytes, file_id, inline_row, job_bytes, job_id, noisy_image

WINDOW = 64 * 1024


def _image(size: int, seed: int) -> tuple[bytes, list[int]]:
    """Noise with jobs, inline file rows, a double-marker blob and a truncated job, some of them
    placed right across the 100 000-byte boundaries the tests cut at."""
    rng = random.Random(seed)
    records: list[tuple[int, bytes]] = []
    findable: list[int] = []
    at = 0
    boundaries = [100_000 * k for k in range(1, size // 100_000)]
    for index, boundary in enumerate(boundaries):
        blob = job_bytes(index, version=index % 2) if index % 3 else inline_row(file_id(index), file_bytes(index))
        if index % 5 == 4 and index % 3:
            blob = blob[:16] + blob                         # an outer marker before the head (double marker)
        if index % 7 == 6:
            blob = blob[: len(blob) // 2]                   # cut: partial, swallows nothing
        start = boundary - rng.randrange(0, len(blob)) if index % 2 else boundary + rng.randrange(0, 40)
        if start < at:
            continue
        records.append((start, blob))
        if index % 7 != 6:
            findable.append(start + (26 if index % 3 == 0 else 0))      # file markers follow the row prefix
        at = start + len(blob)
    stream = io.BytesIO()
    noisy_image(stream, size, records, seed=seed, chunk=WINDOW)
    return stream.getvalue(), findable


def _whole(data: bytes):
    return list(Scanner(window=WINDOW, hash_input=False).records(io.BytesIO(data)))


def _key(records):
    return [(r.kind, r.offset, r.length, r.complete, r.row_id, content_key(r.record)) for r in records]


@pytest.mark.parametrize("range_size", [100_000, 65_537, 1 << 20, 10 ** 9])
def test_any_cut_merges_to_the_whole_stream_scan(range_size):
    data, planted = _image(1_200_000, seed=range_size % 97)
    whole = _whole(data)
    assert {r.offset for r in whole} >= set(planted) and len(planted) > 5
    ranges = split_ranges([(0, len(data))], range_size)
    stream = io.BytesIO(data)
    results = [scan_range(stream, start, stop, window=WINDOW) for start, stop in ranges]
    random.Random(1).shuffle(results)                    # order of completion must not matter
    assert _key(merge_ranges(results)) == _key(whole)


def test_ranges_read_only_their_overlap():
    data, _ = _image(1_200_000, seed=3)

    class Counting(io.BytesIO):
        furthest = 0

        def read(self, size=-1):
            chunk = super().read(size)
            Counting.furthest = max(Counting.furthest, self.tell())
            return chunk

    scan_range(Counting(data), 200_000, 300_000, window=WINDOW)
    assert Counting.furthest <= 300_000 + MAX_RECORD + 16


def test_double_marker_blob_across_a_boundary_is_one_record():
    blob = job_bytes(7)
    blob = blob[:16] + blob
    data = bytes(50_000 - 8) + blob + bytes(60_000)
    whole = _whole(data)
    results = [scan_range(io.BytesIO(data), a, b) for a, b in split_ranges([(0, len(data))], 50_000)]
    assert len(whole) == 1 and whole[0].record.job_id == job_id(7)
    assert _key(merge_ranges(results)) == _key(whole)


def test_regions_are_merged_and_split_in_order():
    assert merge_regions([(10, 20), (0, 5), (5, 8), (30, 30), (15, 25)]) == [(0, 8), (10, 25)]
    assert split_ranges([(0, 10), (20, 25)], 4) == [(0, 4), (4, 8), (8, 10), (20, 24), (24, 25)]
