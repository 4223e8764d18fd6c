"""Throughput and peak memory of `bitsdb carve` on a generated image.

Usage: python benchmarks/bench_carve.py [--size-mib 512] [--records 300] [--keep FILE]

Builds SIZE MiB of pseudo-random bytes with RECORDS synthetic job/file records at
known offsets, runs the carve command in a child process pinned to one core, and
reports MiB/s and the child's peak resident memory (targets: >= 100 MiB/s,
<= 64 MiB). Also checks that every planted record was found.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitsdb.forge.carving import file_bytes, job_bytes, noisy_image  # noqa: E402

RUNNER = """
import sys
from bitsdb.cli.carve import command as carve_command
if hasattr(__import__('os'), 'sched_setaffinity'):
    __import__('os').sched_setaffinity(0, {0})
carve_command.main(sys.argv[1:], prog_name="bitsdb carve", standalone_mode=True)
"""


def build(path: Path, size: int, count: int) -> dict[int, str]:
    rng = random.Random(11)
    planted: dict[int, bytes] = {}
    slots = sorted(rng.sample(range(0, size // 65536 - 1), count))
    for index, slot in enumerate(slots):
        offset = slot * 65536 + rng.randrange(0, 60000)
        planted[offset] = job_bytes(index, version=index % 3) if index % 2 else file_bytes(index)
    with open(path, "wb") as handle:
        noisy_image(handle, size, list(planted.items()), seed=3, chunk=4 << 20)
    return {offset: ("job" if index % 2 else "file") for index, offset in enumerate(sorted(planted))}


def run(path: Path, extra: list[str]) -> tuple[float, int, list[dict]]:
    out = path.with_suffix(".jsonl")
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", RUNNER, "--all-records", "-o", str(out), *extra, str(path)],
                   check=True, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    records = [json.loads(line) for line in out.read_text().splitlines()]
    out.unlink()
    return elapsed, max(peak_kib, before), records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="build the image here and keep it")
    args = parser.parse_args()
    size = args.size_mib << 20
    folder = Path(tempfile.mkdtemp(prefix="bench_carve_"))
    path = args.keep or folder / "image.raw"
    t0 = time.perf_counter()
    planted = build(path, size, args.records)
    print(f"built {args.size_mib} MiB with {len(planted)} records in {time.perf_counter() - t0:.1f}s")
    try:
        for label, extra in (("with sha256", []), ("--no-hash", ["--no-hash"])):
            elapsed, peak_kib, records = run(path, extra)
            found = {r["provenance"]["offset"] for r in records}
            missing = set(planted) - found
            extra_found = found - set(planted)
            print(f"carve {label:12s}: {elapsed:6.2f}s  {args.size_mib / elapsed:7.1f} MiB/s  "
                  f"peak RSS {peak_kib / 1024:5.1f} MiB  records {len(records)} "
                  f"(missing {len(missing)}, unexpected {len(extra_found)})")
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            folder.rmdir()


if __name__ == "__main__":
    main()
