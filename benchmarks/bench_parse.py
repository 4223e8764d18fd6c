"""Speed and memory of `bitsdb parse` on the real databases.

Targets (issue 2): whole process < 0.2 s, in-process parse < 10 ms per database,
peak memory < 50 MiB. Usage: python benchmarks/bench_parse.py [--runs N] [DB ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DBS = [ROOT.parent / "shared/samples/real/artemis/win10_qmgr.db",
               ROOT.parent / "shared/samples/real/artemis/win11_qmgr.db"]


def bitsdb_command() -> list[str]:
    """The console script users run (installed beside this Python), else `python -m bitsdb`."""
    script = Path(sys.executable).with_name("bitsdb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bitsdb"]


def whole_process(db: Path, runs: int) -> tuple[float, float]:
    """Median wall time and max RSS (MiB) of `bitsdb parse DB -o /dev/null`."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([*bitsdb_command(), "parse", str(db), "-o", os.devnull])
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        if status != 0:
            raise SystemExit(f"bitsdb parse {db} failed with status {status}")
    return statistics.median(times), max(peaks)


def in_process(db: Path, runs: int) -> tuple[float, float]:
    """Median time of bitsdb.read() (imports warm) and its Python heap peak (MiB)."""
    import bitsdb

    bitsdb.read(db)  # warm imports and caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        bitsdb.read(db)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    bitsdb.read(db)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def interpreter_start(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dbs", nargs="*", type=Path, default=DEFAULT_DBS)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, interpreter start alone: {interpreter_start(args.runs) * 1000:.1f} ms")
    print(f"{'database':<16} {'process (median)':>17} {'process max RSS':>16} {'in-process':>11} {'heap peak':>10}")
    for db in args.dbs:
        if not db.exists():
            print(f"{db}: not available, skipped")
            continue
        wall, rss = whole_process(db, args.runs)
        inner, heap = in_process(db, args.runs * 4)
        print(f"{db.name:<16} {wall * 1000:>14.1f} ms {rss:>12.1f} MiB {inner * 1000:>8.2f} ms {heap:>6.2f} MiB")


if __name__ == "__main__":
    main()
