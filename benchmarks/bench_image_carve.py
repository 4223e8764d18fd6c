"""Carving whole disk images: throughput per worker, scaling with workers, E01 cost, memory.

Usage: python benchmarks/bench_image_carve.py [--size-mib 512] [--records 300] [--runs 3] [--work DIR]

Builds a GPT disk whose partition holds SIZE MiB of disk-like bytes (1 MiB blocks, alternately
pseudo-random and zero) with RECORDS job/file records at known offsets, and an E01 of it
(ewfacquirestream -c fast). Each measurement is a fresh `bitsdb carve --no-hash` process:

  reference  one core reading the raw disk in 4 MiB blocks (nothing else): the machine's own pace
  plain      one core, the plain whole-file scanner (`carve` of the same bytes as a flat file)
  raw j1     one core, the disk image through dfvfs, ranges in process        target >= 150 MiB/s
  raw j2     two worker processes                                             target >= 1.7 x raw j1
  e01 j1/j2  the same through the E01 container

Numbers are medians of RUNS, also given as ratios to the reference measured in the same run (this
2-core machine is shared and drifts), and as MiB per CPU-second of the carve processes (which other
load on the machine hardly changes). Peak RSS is the largest process (memory must not grow with
the image). Every planted record must be found in every run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from bitsdb.forge.carving import file_bytes, job_bytes  # noqa: E402
from measure import Runs, run_child  # noqa: E402

READER = """
import sys, time
start = time.perf_counter()
with open(sys.argv[1], 'rb', buffering=0) as handle:
    while handle.read(4 << 20):
        pass
print(time.perf_counter() - start)
"""


def build(work: Path, size_mib: int, count: int) -> tuple[Path, Path, Path, int]:
    from bitsdb.forge.evidence import partitioned_disk, to_e01

    work.mkdir(parents=True, exist_ok=True)
    volume, disk, e01 = work / "volume.bin", work / "disk.raw", work / "disk.E01"
    rng = random.Random(7)
    blocks = size_mib
    slots = sorted(rng.sample(range(blocks), min(count, blocks)))
    planted = 0
    with open(volume, "wb") as out:
        for block in range(blocks):
            data = bytearray(rng.randbytes(1 << 20) if block % 2 else bytes(1 << 20))
            if slots and slots[0] == block:
                slots.pop(0)
                record = job_bytes(block, version=block % 3) if block % 3 else file_bytes(block)
                at = rng.randrange(0, (1 << 20) - len(record))
                data[at:at + len(record)] = record
                planted += 1
            out.write(data)
    if not disk.exists():
        partitioned_disk(disk, [volume], "gpt")
    if not e01.exists():
        to_e01(disk, work / "disk", compression="fast")
    return volume, disk, e01, planted


def carve(path: Path, jobs: int, pin: bool) -> dict:
    """One carve process: wall and CPU seconds, peak RSS of its largest process (its own, not the
    largest of any process run before it), records written."""
    out = path.with_suffix(".out.jsonl")
    args = [sys.executable, "-m", "bitsdb", "carve", "--no-hash", "--no-progress", "--all-records", "-j", str(jobs),
            "-o", str(out), str(path)]
    if pin:
        args = ["taskset", "-c", "0", *args]
    runs = Runs("carve")
    run_child(args, runs, cwd=ROOT)
    records = sum(1 for _ in out.open())
    out.unlink()
    return {"wall": runs.wall[0], "cpu": runs.cpu[0], "peak_mib": runs.rss[0], "records": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bitsdb-bench-image"))
    args = parser.parse_args()
    volume, disk, e01, planted = build(args.work / f"{args.size_mib}m", args.size_mib, args.records)
    size = args.size_mib
    print(f"{size} MiB volume, {planted} records; disk {disk.stat().st_size >> 20} MiB, "
          f"E01 {e01.stat().st_size >> 20} MiB")
    cases = {"plain": (volume, 1, True), "raw j1": (disk, 1, True), "raw j2": (disk, 2, False),
             "e01 j1": (e01, 1, True), "e01 j2": (e01, 2, False)}
    walls: dict[str, list[float]] = {name: [] for name in ["reference", *cases]}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    peaks: dict[str, float] = {}
    for _ in range(args.runs):
        read = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", READER, str(disk)], check=True,
                              capture_output=True, text=True)
        walls["reference"].append(float(read.stdout))
        for name, (path, jobs, pin) in cases.items():
            result = carve(path, jobs, pin)
            if result["records"] < planted:
                raise SystemExit(f"{name}: {result['records']} records, {planted} planted")
            walls[name].append(result["wall"])
            cpus[name].append(result["cpu"])
            peaks[name] = max(peaks.get(name, 0.0), result["peak_mib"])
    median = {name: statistics.median(values) for name, values in walls.items()}
    speed = {name: size / wall for name, wall in median.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    for name in walls:
        extra = (f"  CPU {cpu[name]:5.2f} s = {size / cpu[name]:6.1f} MiB per CPU-second  peak RSS {peaks[name]:4.0f} MiB"
                 if name in peaks else "")
        print(f"{name:10s} median {median[name]:6.2f} s  {speed[name]:7.1f} MiB/s  "
              f"= {speed[name] / speed['reference']:.2f} x reference{extra}   runs {[round(w, 2) for w in walls[name]]}")
    print(json.dumps({"scaling_raw_2_workers": round(median["raw j1"] / median["raw j2"], 2),
                      "scaling_e01_2_workers": round(median["e01 j1"] / median["e01 j2"], 2),
                      "e01_vs_raw_one_core": round(median["raw j1"] / median["e01 j1"], 2),
                      "raw_one_core_mib_s": round(speed["raw j1"], 1),
                      "raw_mib_per_cpu_second": round(size / cpu["raw j1"], 1),
                      "e01_mib_per_cpu_second": round(size / cpu["e01 j1"], 1),
                      # CPU spent by 2 workers vs 1 on the same work: 2 x this bounds the wall-clock
                      # speed-up on 2 idle cores (the part of scaling that the split itself costs)
                      "cpu_efficiency_raw_2_workers": round(cpu["raw j1"] / cpu["raw j2"], 2),
                      "cpu_efficiency_e01_2_workers": round(cpu["e01 j1"] / cpu["e01 j2"], 2)}))


if __name__ == "__main__":
    main()
