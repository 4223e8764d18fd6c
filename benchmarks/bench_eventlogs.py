"""Speed and memory of reading a Bits-Client/Operational log (issue 14: 20 MB in under 1 s, memory flat
in the number of records).

No EVTX writer exists, so the big logs are made from a real one by bitsdb.forge.evtx: its first
chunk is filled with verified copies of its own records (59/60 pairs of the Windows 7 sample)
and repeated; ~39,000 records in 20 MB, the density of a real Bits-Client log. The inputs are
written under /tmp/bitsdb-bench and never committed. Every time is shown beside references
measured in the same run (this 2-core machine is shared and drifts): reading the file's bytes,
and the evtx library's own iteration of the records (records_json, no decoding).

Usage: python benchmarks/bench_eventlogs.py [--runs N] [--source EVTX]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Runs, bitsdb_command, run_child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared/samples/real/evtx/persist_bitsadmin_Microsoft-Windows-Bits-Client-Operational.evtx"
WORK = Path("/tmp/bitsdb-bench")


def build(source: Path, size_mib: int) -> tuple[Path, int]:
    from bitsdb.forge.evtx import replicate_log

    WORK.mkdir(parents=True, exist_ok=True)
    target = WORK / f"bits-client-{size_mib}m.evtx"
    count = replicate_log(source, target, size_mib << 20)
    return target, count


def timed(function, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `function()`."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def read_bytes(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(1 << 20):
            pass


def raw_iteration(path: Path) -> None:
    import evtx

    for _ in evtx.PyEvtxParser(str(path), number_of_threads=1, indent=False).records_json():
        pass


def stream(path: Path) -> int:
    from bitsdb.sources.events import iter_normalised

    return sum(1 for _ in iter_normalised(path))


def stream_peak(path: Path) -> float:
    """Python heap peak (MiB) while every record is read and normalised, none kept."""
    tracemalloc.start()
    stream(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def stream_rss(path: Path) -> float:
    """Max RSS (MiB) of a process that only streams the log's records (native memory included)."""
    code = f"from bitsdb.sources.events import iter_normalised\nfor _ in iter_normalised({str(path)!r}): pass"
    runs = Runs("stream")
    run_child([sys.executable, "-c", code], runs)
    return runs.rss[0]


def whole_process(path: Path) -> tuple[float, float, float]:
    """Wall time, CPU time and max RSS (MiB) of `bitsdb parse LOG -o /dev/null` (read, join, write)."""
    runs = Runs("parse")
    run_child([*bitsdb_command(), "parse", str(path), "-o", os.devnull], runs)
    return runs.wall[0], runs.cpu[0], runs.rss[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()
    if not args.source.exists():
        raise SystemExit(f"real sample {args.source} not available (../shared/samples is absent)")
    small, small_count = build(args.source, 5)
    big, big_count = build(args.source, 20)
    size = big.stat().st_size / 2**20
    print(f"input: {big} ({size:.1f} MiB, {big_count} records); {small} ({small_count} records)")
    stream(small)                                             # warm imports and caches
    bytes_wall, _ = timed(lambda: read_bytes(big), args.runs)
    raw_wall, raw_cpu = timed(lambda: raw_iteration(big), args.runs)
    ours_wall, ours_cpu = timed(lambda: stream(big), args.runs)
    print(f"read the file's bytes            {bytes_wall:7.3f} s wall")
    print(f"evtx raw iteration (reference)   {raw_wall:7.3f} s wall  {raw_cpu:7.3f} s CPU")
    print(f"bitsdb read + normalise          {ours_wall:7.3f} s wall  {ours_cpu:7.3f} s CPU  "
          f"({ours_cpu / raw_cpu:.1f}x the raw iteration's CPU; target < 1 s)")
    small_peak, big_peak = stream_peak(small), stream_peak(big)
    print(f"heap peak while streaming        {small_peak:7.2f} MiB for {small_count} records, "
          f"{big_peak:.2f} MiB for {big_count} ({big_peak / small_peak:.2f}x for {big_count / small_count:.1f}x "
          f"the records: flat)")
    small_rss, big_rss = stream_rss(small), stream_rss(big)
    print(f"max RSS of a streaming process   {small_rss:7.1f} MiB for {small_count} records, {big_rss:.1f} MiB for "
          f"{big_count} ({big_rss / small_rss:.2f}x)")
    for path, count in ((small, small_count), (big, big_count)):
        wall, cpu, rss = whole_process(path)
        print(f"bitsdb parse LOG -o /dev/null    {wall:7.3f} s wall  {cpu:7.3f} s CPU, max RSS {rss:.0f} MiB for "
              f"{count} records (reads, joins, writes; the join keeps each job's lifecycle)")


if __name__ == "__main__":
    main()
