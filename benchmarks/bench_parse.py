"""Speed and memory of `bitsdb parse` on the real databases, against references of the same run.

Whole process: `bitsdb parse DB -o /dev/null` against the bare interpreter (`python -c pass`),
interleaved, medians and spread (target, issue 17: <= 4x). In-process: `bitsdb.read(DB)` with
imports warm (target: <= 3 ms), beside dissect.database reading the same raw tables in-process.
Bytecode is written and used (as in an installed package): with PYTHONDONTWRITEBYTECODE set,
every start compiles bitsdb's sources again and the ratio is about twice as large.

    python benchmarks/bench_parse.py [--runs N] [DB ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from measure import REAL, bitsdb_command, interleaved, report_line  # noqa: E402

DEFAULT_DBS = [REAL / "win10_qmgr.db", REAL / "win11_qmgr.db"]
TARGET_START_RATIO = 4.0
#: Standard-library modules the parse path imports (directly or through click / dataclasses).
STDLIB_USED = "dataclasses, enum, typing, inspect, pathlib, json, hashlib, uuid, datetime, threading, struct, re"
TARGET_IN_PROCESS_MS = 3.0


def in_process(db: Path, runs: int) -> tuple[list[float], list[float], float]:
    """Wall and CPU times (all threads: the hash runs beside decoding) of bitsdb.read() with
    imports and caches warm, and its Python heap peak (MiB)."""
    import bitsdb

    bitsdb.read(db)
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        bitsdb.read(db)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    bitsdb.read(db)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return times, cpu, peak / 2**20


def dissect_in_process(db: Path, runs: int) -> list[float] | None:
    """Times of dissect.database opening DB and reading every Jobs/Files record's Id and Blob as stored."""
    try:
        from dissect.database.ese import ESE
    except ImportError:
        return None
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        with db.open("rb") as handle:
            database = ESE(handle)
            for name in ("Jobs", "Files"):
                for record in database.table(name).records():
                    record.get("Id", raw=True), record.get("Blob", raw=True)
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dbs", nargs="*", type=Path, default=DEFAULT_DBS)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; {args.runs} runs each, interleaved; medians (spread = min-max)")
    met = True
    for db in args.dbs:
        if not db.exists():
            print(f"{db}: not available, skipped")
            continue
        results = interleaved({"python -c pass": [sys.executable, "-c", "pass"],
                               f"bitsdb parse {db.name}": [*bitsdb_command(), "parse", str(db), "-o", "/dev/null"],
                               "import click": [sys.executable, "-c", "import click"],
                               "import the stdlib modules used": [sys.executable, "-c", "import " + STDLIB_USED]},
                              args.runs)
        start, parse, click, stdlib = results.values()
        print(report_line(start))
        print(report_line(parse, start, "wall", TARGET_START_RATIO))
        print(report_line(click, start) + "   (what the CLI framework alone costs)")
        print(report_line(stdlib, start) + "   (a floor: standard modules bitsdb and click need)")
        met &= parse.median() / start.median() <= TARGET_START_RATIO
        times, cpu, heap = in_process(db, args.runs * 4)
        inner = statistics.median(times) * 1000
        line = (f"{'bitsdb.read (in process)':<34} median {inner:7.2f} ms (spread {min(times) * 1000:.2f}-"
                f"{max(times) * 1000:.2f}; target <= {TARGET_IN_PROCESS_MS:g} ms: "
                f"{'met' if inner <= TARGET_IN_PROCESS_MS else 'NOT met'}), CPU median "
                f"{statistics.median(cpu) * 1000:.2f} ms, heap peak {heap:.2f} MiB")
        reference = dissect_in_process(db, args.runs)
        if reference:
            line += f"; {inner / (statistics.median(reference) * 1000):.2f} x dissect.database raw tables " \
                    f"({statistics.median(reference) * 1000:.2f} ms)"
        print(line)
        print(f"{'bitsdb parse peak RSS':<34} {max(parse.rss):.1f} MiB")
        met &= inner <= TARGET_IN_PROCESS_MS
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
