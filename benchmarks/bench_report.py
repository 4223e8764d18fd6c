"""Speed and size of `bitsdb report` on a 1,000-host batch.

The batch is forge.fleet's layout: a few forged stores (one hostile, three varied ones from
forge.scale, the demo store with its log) hard-linked into N KAPE collection folders. Each
command runs in a fresh process; the reference is `bitsdb scan` of the same batch in the same
run (it reads the same evidence and evaluates the same rules), so the ratio says what the report
itself costs on this machine today. Targets: report < 10 s, file < 10 MB (1,000 hosts).

    python benchmarks/bench_report.py [--hosts 1000] [--runs 3] [--recover] [--work /tmp/bitsdb-bench]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Runs, run_child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samples" / "demo"


def build(work: Path, hosts: int) -> Path:
    from bitsdb.forge.fleet import fleet, forge_fleet_stores

    root = work / f"report-fleet-{hosts}"
    if root.exists() and len(list(root.iterdir())) == hosts:
        return root
    shutil.rmtree(root, ignore_errors=True)
    stores_dir = work / "report-stores"
    shutil.rmtree(stores_dir, ignore_errors=True)
    stores = forge_fleet_stores(stores_dir, scale_stores=3, jobs_per_store=8)
    demo = stores_dir / "demo"
    demo.mkdir()
    for name in ("qmgr.db", "edb.log"):
        shutil.copyfile(DEMO / name, demo / name)
    return fleet(root, hosts, stores + [demo / "qmgr.db"], hostile_host=7)


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its worker processes): CPU time hardly moves
    when other processes load the machine, wall time does."""
    runs = Runs(args[0])
    run_child([sys.executable, "-m", "bitsdb", *args], runs)
    return runs.wall[0], runs.cpu[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recover", action="store_true", help="both commands with --recover")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bitsdb-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    root = build(args.work, args.hosts)
    print(f"{args.hosts} collection folders ready in {time.perf_counter() - started:.1f} s: {root}")
    out = args.work / "report.html"
    extra = ["--recover"] if args.recover else []
    for run in range(args.runs):
        scan = timed(["scan", "-f", "jsonl", "-o", str(args.work / "scan.jsonl"), "--no-progress", *extra, str(root)])
        report = timed(["report", "-o", str(out), "--no-progress", *extra, str(root)])
        size = out.stat().st_size
        from bitsdb.report import read_data_block
        from bitsdb.report.render import plotly_js

        page = out.read_text(encoding="utf-8")
        block = page.split('id="bitsdb-data">', 1)[1].split("</script>", 1)[0]
        data = read_data_block(block)
        library = len(plotly_js()[0].encode("utf-8"))
        jobs = len(data["jobs"])
        print(f"run {run + 1}: scan {scan[0]:.2f} s ({scan[1]:.2f} CPU s), report {report[0]:.2f} s ({report[1]:.2f} "
              f"CPU s); ratio {report[0] / scan[0]:.2f} wall, {report[1] / scan[1]:.2f} CPU; target < 10 s; "
              f"{size / 1e6:.2f} MB (target < 10 MB): plotly.js {library / 1e6:.2f} MB, data "
              f"{len(block) / 1e6:.2f} MB = {len(block) / max(jobs, 1):.0f} B per job; "
              f"{len(data['hosts'])} hosts, {jobs} jobs")


if __name__ == "__main__":
    main()
