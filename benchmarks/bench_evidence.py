"""Speed and memory of the evidence layer at scale.

(a) N collection folders (KAPE layout), each with a copy of a real qmgr.db, read with
    run_batch(jobs=2): target < 20 s wall for 1,000 folders on 2 cores.
(b) Locating and parsing qmgr.db in a GPT/NTFS E01 of SIZE GiB holding FILES extra files:
    target < 2 s for 2 GiB / 50,000 files.
(c) The batch of (a) through a local Dask cluster (a scheduler and 2 single-threaded workers on
    127.0.0.1, started here) against 2 local worker processes, alternately: overhead <= 20 %.

Inputs are generated under --work (default /tmp/bitsdb-bench; never committed; the image is
reused between runs). Each measurement runs in a fresh process; peak RSS is reported for it
and its worker processes. Usage:
    python benchmarks/bench_evidence.py [--only folders|image|cluster] [--hosts 1000] [--size-gib 2] [--files 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "real" / "artemis"
DBS = [SAMPLES / "win11_qmgr.db", SAMPLES / "win10_qmgr.db"]


def build_folders(base: Path, hosts: int) -> Path:
    from bitsdb.forge.evidence import kape_collection

    root = base / f"collections-{hosts}"
    if root.exists() and len(list(root.iterdir())) == hosts:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for index in range(hosts):
        kape_collection(root, f"HOST{index:05d}", DBS[index % 2])
    return root


def build_image(base: Path, size_gib: int, files: int) -> Path:
    """GPT disk with one NTFS volume: Downloader folder, hives, and `files` small files in 500-file folders."""
    from bitsdb.forge.evidence import (
        missing_tools,
        partitioned_disk,
        software_hive,
        system_hive,
        to_e01,
        write_volume,
    )

    target = base / f"disk-{size_gib}g-{files}.E01"
    if target.exists():
        return target
    reason = missing_tools("mkntfs", "ntfs-3g", "sfdisk", "ewfacquirestream")
    if reason:
        raise SystemExit(f"image benchmark {reason}")
    base.mkdir(parents=True, exist_ok=True)
    volume = base / "volume.raw"
    with open(volume, "wb") as handle:
        handle.truncate(size_gib << 30)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", "-L", "BENCH", str(volume)], check=True, capture_output=True)
    mount = base / "mnt"
    mount.mkdir(exist_ok=True)
    subprocess.run(["ntfs-3g", str(volume), str(mount)], check=True)
    try:
        write_volume(mount, DBS[0], hives={"SOFTWARE": software_hive({}), "SYSTEM": system_hive("BENCHHOST")})
        made = 0
        while made < files:
            folder = mount / "Users" / "bench" / "files" / f"d{made // 500:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(min(500, files - made)):
                (folder / f"f{made:06d}.txt").write_bytes(os.urandom(made % 4000))
                made += 1
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    disk = partitioned_disk(base / "disk.raw", [volume], "gpt")
    volume.unlink()
    e01 = to_e01(disk, target.with_suffix(""), compression="fast")
    disk.unlink()
    return e01


CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from bitsdb.evidence import run_batch
report = run_batch([sys.argv[1]], jobs=int(sys.argv[2]), progress=False,
                   scheduler=sys.argv[3] if len(sys.argv) > 3 else None)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "items": len(report.items), "stores": len(report.results),
                  "jobs": sum(len(r.jobs) for r in report.results), "failures": report.failures[:3],
                  "self_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure(path: Path, jobs: int, scheduler: str | None = None) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(jobs), *([scheduler] if scheduler else [])],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    result["process_wall"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["folders", "image", "cluster"])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--size-gib", type=int, default=2)
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bitsdb-bench"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not DBS[0].exists():
        raise SystemExit(f"real samples absent: {SAMPLES}")
    if args.only in (None, "folders"):
        started = time.perf_counter()
        root = build_folders(args.work, args.hosts)
        print(f"(a) {args.hosts} collection folders built in {time.perf_counter() - started:.1f} s: {root}")
        for _ in range(args.runs):
            r = measure(root, args.jobs)
            print(f"    jobs={args.jobs}: run_batch {r['wall']:.2f} s, whole process {r['process_wall']:.2f} s; "
                  f"{r['items']} items, {r['stores']} databases, {r['jobs']} job records, "
                  f"failures {r['failures']}; peak RSS parent {r['self_rss_mib']:.0f} MiB, "
                  f"largest worker {r['worker_rss_mib']:.0f} MiB  (target < 20 s)")
    if args.only in (None, "cluster"):
        cluster_case(args)
    if args.only in (None, "image"):
        started = time.perf_counter()
        image = build_image(args.work, args.size_gib, args.files)
        size = sum(p.stat().st_size for p in image.parent.glob(image.stem + ".E*"))
        print(f"(b) {args.size_gib} GiB GPT/NTFS E01 with {args.files} files ({size / 1e6:.0f} MB on disk) "
              f"ready in {time.perf_counter() - started:.1f} s: {image}")
        for _ in range(args.runs):
            r = measure(image, 1)
            print(f"    run_batch {r['wall']:.2f} s, whole process {r['process_wall']:.2f} s; {r['stores']} "
                  f"databases, {r['jobs']} job records, failures {r['failures']}; peak RSS "
                  f"{r['self_rss_mib']:.0f} MiB  (target < 2 s)")


def local_cluster(workers: int = 2):
    """Start `dask scheduler` + workers on 127.0.0.1 (free port); returns (address, processes)."""
    import socket

    from distributed import Client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-dashboard"], **quiet)]
    for index in range(workers):
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--host",
                                           "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                           "--name", f"bench{index}"], **quiet))
    with Client(address, timeout=60, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=60)
    return address, processes


def cluster_case(args) -> None:
    import signal
    import statistics

    root = build_folders(args.work, args.hosts)
    address, processes = local_cluster(args.jobs)
    try:
        local, remote = [], []
        for _ in range(args.runs):
            r = measure(root, args.jobs)
            local.append(r["wall"])
            c = measure(root, args.jobs, address)
            remote.append(c["wall"])
            if (c["items"], c["stores"], c["jobs"]) != (r["items"], r["stores"], r["jobs"]):
                raise SystemExit(f"cluster run differs: {c} vs {r}")
        ratio = statistics.median(remote) / statistics.median(local)
        print(f"(c) {args.hosts} collections: {args.jobs} local workers median {statistics.median(local):.2f} s "
              f"{[round(x, 2) for x in local]}; Dask cluster ({args.jobs} workers) median "
              f"{statistics.median(remote):.2f} s {[round(x, 2) for x in remote]}; cluster / local = {ratio:.2f} "
              f"(target <= 1.20)")
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
