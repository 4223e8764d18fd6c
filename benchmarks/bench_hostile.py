"""Seconds per MiB of crafted, costly inputs, beside a reference measured in the same run.

Usage: python benchmarks/bench_hostile.py [--size-mib 1] [--repeat 1]

Each shape of `bitsdb.forge.hostile.COSTLY_SHAPES` (dense job markers, markers with plausible
headers and garbage after, huge declared counts and lengths, dense ESE markers) is written to a
temporary folder as a legacy state file and read the way `bitsdb parse --recover` reads it
(framing + carving), and carved on its own as `bitsdb carve` would. References: plain reading
and hashing of the same bytes, and parsing the real Windows 10 qmgr.db
(`../shared/samples/real/artemis/win10_qmgr.db`, when present).

The target (issue 12): at most ~2 s per MiB for every shape, whatever its content.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitsdb.carve.recover import carve_file  # noqa: E402
from bitsdb.forge.hostile import COSTLY_SHAPES, MIB  # noqa: E402
from bitsdb.stores import read_files  # noqa: E402

REAL_DB = ROOT.parent / "shared" / "samples" / "real" / "artemis" / "win10_qmgr.db"
LIMIT_S_PER_MIB = 2.0


def timed(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def read_all(path: Path) -> None:
    for _, outcome in read_files([path], recover=True):
        if isinstance(outcome, Exception) and not hasattr(outcome, "args"):
            raise outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    size = int(args.size_mib * MIB)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "plain.bin"
        plain.write_bytes(bytes(size))
        reference = timed(lambda: hashlib.sha256(plain.read_bytes()).hexdigest(), args.repeat) / args.size_mib
        rows.append(("reference: read + sha256", reference, None))
        if REAL_DB.exists():
            mib = REAL_DB.stat().st_size / MIB
            real = timed(lambda: read_all(REAL_DB), args.repeat) / mib
            rows.append(("reference: win10 qmgr.db parse --recover", real, None))
        worst = 0.0
        for name, build in COSTLY_SHAPES.items():
            data = build(size)
            target = Path(folder) / name.replace(" ", "_") / "qmgr0.dat"
            target.parent.mkdir()
            target.write_bytes(data)
            mib = len(data) / MIB
            parse = timed(lambda: read_all(target), args.repeat) / mib
            carve = timed(lambda: carve_file(target), args.repeat) / mib
            worst = max(worst, parse, carve)
            rows.append((f"{name}: parse --recover", parse, parse / reference))
            rows.append((f"{name}: carve", carve, carve / reference))
    print(f"{'input':48} {'s/MiB':>9} {'x read':>9}")
    for name, seconds, ratio in rows:
        print(f"{name:48} {seconds:9.3f} {'' if ratio is None else f'{ratio:9.0f}'}")
    verdict = "ok" if worst <= LIMIT_S_PER_MIB else "TOO SLOW"
    print(f"worst hostile shape: {worst:.3f} s/MiB (limit {LIMIT_S_PER_MIB}) {verdict}")
    return 0 if worst <= LIMIT_S_PER_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
