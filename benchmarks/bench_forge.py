"""Benchmark: write a large qmgr.db (10,000 jobs + 30,000 files by default).

Reports write time, file size, page count and peak resident memory.  With
``--verify`` the result is read back with dissect.database and compared.

    python benchmarks/bench_forge.py [--jobs N] [--files N] [--verify] [--out PATH]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitsdb.forge.ese import DEFAULT_LV_CHUNK_SIZE, write_qmgr_database  # noqa: E402


def _blob(rng: random.Random, size: int) -> bytes:
    # Keep LV chunk starts away from bytes some readers take for compression headers.
    data = bytearray(rng.randbytes(size))
    for offset in range(0, size, DEFAULT_LV_CHUNK_SIZE):
        if data[offset] >> 3 in (1, 2, 3, 5, 6):
            data[offset] = 0x41
    return bytes(data)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    # Sizes resemble real BITS blobs: jobs 1.5-6 KB (some span two LV chunks), files ~1 KB.
    jobs = [(uuid.UUID(int=rng.getrandbits(128)).bytes_le, _blob(rng, rng.randint(1500, 6000))) for _ in range(args.jobs)]
    files = [(uuid.UUID(int=rng.getrandbits(128)).bytes_le, _blob(rng, rng.randint(800, 1300))) for _ in range(args.files)]
    input_mb = sum(len(blob) for _, blob in jobs + files) / 1e6
    rss_before = _peak_rss_mib()

    with tempfile.TemporaryDirectory() as scratch:
        path = args.out or Path(scratch) / "qmgr.db"
        started = time.perf_counter()
        report = write_qmgr_database(path, jobs, files)
        elapsed = time.perf_counter() - started
        rss_after = _peak_rss_mib()
        size_mb = path.stat().st_size / 1e6
        print(f"jobs={args.jobs} files={args.files} blob input={input_mb:.1f} MB")
        print(f"write time: {elapsed:.2f} s, file: {size_mb:.1f} MB, pages: {report.page_count}")
        print(f"peak RSS: {rss_after:.0f} MiB (inputs alone: {rss_before:.0f} MiB, writer added <= {rss_after - rss_before:.0f} MiB)")

        if args.verify:
            from dissect.database.ese import ESE

            started = time.perf_counter()
            with open(path, "rb") as handle:
                db = ESE(handle)
                for name, expected in (("Jobs", jobs), ("Files", files)):
                    got = {r.get("Id", raw=True): r.get("Blob") for r in db.table(name).records()}
                    if got != dict(expected):
                        print(f"verify FAILED for {name}")
                        return 1
            print(f"verify with dissect.database: ok ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
