"""Benchmark: `bitsdb parse` (whole process) on a large forged qmgr.db.

Writes 10,000 jobs x 3 files (by default) under /tmp with bitsdb.forge.scale, then
runs `bitsdb parse -o /dev/null DB` as a child process and reports wall time and
peak RSS of that process. Targets: < 10 s, < 200 MiB.

    python benchmarks/bench_scale.py [--jobs N] [--files-per-job N] [--keep] [--timeout S]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitsdb.forge.scale import write_scale_database  # noqa: E402

TARGET_SECONDS = 10.0
TARGET_MIB = 200.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files-per-job", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bitsdb_scale/qmgr.db"))
    parser.add_argument("--timeout", type=float, default=600.0, help="Give up on the parse after S seconds.")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = write_scale_database(args.out, args.jobs, args.files_per_job, args.seed)
    print(f"generated {report.jobs} jobs / {report.files} files, {report.size / 1e6:.1f} MB "
          f"(LV chunk {report.lv_chunk_size}) in {time.perf_counter() - started:.1f} s: {report.path}")

    bitsdb = Path(sys.executable).with_name("bitsdb")
    command = [str(bitsdb)] if bitsdb.exists() else [sys.executable, "-m", "bitsdb"]
    command += ["parse", "-o", os.devnull, str(args.out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    try:
        done = subprocess.run(command, timeout=args.timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        print(f"parse: did not finish within {args.timeout:.0f} s (target {TARGET_SECONDS:.0f} s)")
        return 1
    elapsed = time.perf_counter() - started
    peak_mib = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    print(f"parse: exit {done.returncode}, {elapsed:.2f} s (target < {TARGET_SECONDS:.0f} s), "
          f"peak RSS {peak_mib:.0f} MiB (target < {TARGET_MIB:.0f} MiB)")
    if done.stderr.strip():
        print("stderr:", done.stderr.strip().splitlines()[-1])
    if not args.keep:
        args.out.unlink()
    return 0 if done.returncode == 0 and elapsed < TARGET_SECONDS and peak_mib < TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
