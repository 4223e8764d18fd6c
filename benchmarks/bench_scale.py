"""Benchmark: `bitsdb parse` (whole process) on a large forged qmgr.db, against reading its raw tables.

Writes 10,000 jobs x 3 files (by default) with bitsdb.forge.scale (kept under /tmp/bitsdb_scale/
and reused when it exists), then runs, interleaved and `--runs` times each:

  reference  python + dissect.database reading every Jobs/Files record (Id and Blob as stored)
  subject    bitsdb parse -o /dev/null DB

and reports medians and spread of wall and CPU time, each as a ratio to the reference of the
same run, and the peak RSS of the parse. Issue 17's targets: <= 3 s where the reference takes
about 3 s (ratio <= 1.0), and <= 150 MiB.

    python benchmarks/bench_scale.py [--jobs N] [--files-per-job N] [--runs N] [--fresh]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from measure import DISSECT_RAW_TABLES, bitsdb_command, interleaved, report_line  # noqa: E402
from bitsdb.forge.scale import write_scale_database  # noqa: E402

TARGET_RATIO = 1.0
TARGET_MIB = 150.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files-per-job", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="Write the database again even if it exists.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    out = args.out or Path(f"/tmp/bitsdb_scale/qmgr-{args.jobs}x{args.files_per_job}-s{args.seed}.db")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh or not out.exists():
        started = time.perf_counter()
        report = write_scale_database(out, args.jobs, args.files_per_job, args.seed)
        print(f"generated {report.jobs} jobs / {report.files} files, {report.size / 1e6:.1f} MB "
              f"in {time.perf_counter() - started:.1f} s: {out}")
    else:
        print(f"reusing {out} ({out.stat().st_size / 1e6:.1f} MB)")

    commands = {
        "dissect.database raw tables": [sys.executable, "-c", DISSECT_RAW_TABLES, str(out)],
        "bitsdb parse": [*bitsdb_command(), "parse", "-o", "/dev/null", str(out)],
    }
    results = interleaved(commands, args.runs)
    reference, parse = results["dissect.database raw tables"], results["bitsdb parse"]
    print(f"{args.runs} runs each, interleaved (medians; spread = min-max):")
    print(report_line(reference))
    print(report_line(parse, reference, "wall", TARGET_RATIO))
    print(report_line(parse, reference, "cpu", TARGET_RATIO))
    peak = max(parse.rss)
    print(f"{'bitsdb parse peak RSS':<34} {peak:.0f} MiB (target <= {TARGET_MIB:.0f}: "
          f"{'met' if peak <= TARGET_MIB else 'NOT met'}); reference {max(reference.rss):.0f} MiB")
    met = parse.median() / reference.median() <= TARGET_RATIO and peak <= TARGET_MIB
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
