"""What the benchmarks share: child processes timed with their resource use, references measured
in the same run, and medians with their spread.

Absolute times drift 2x on the shared 2-core machines this project runs on, so every figure is
reported beside a reference measured in the same run, interleaved with it (reference, subject,
reference, subject, ...), as a ratio of medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "samples" / "real" / "artemis"

#: Reading the raw Jobs/Files tables (every record's Id and Blob column as stored: the reference
#: for "reading the database at all") with another ESE library, dissect.database.
DISSECT_RAW_TABLES = """
import sys
from dissect.database.ese import ESE
with open(sys.argv[1], "rb") as handle:
    db = ESE(handle)
    rows = 0
    for name in ("Jobs", "Files"):
        for record in db.table(name).records():
            record.get("Id", raw=True), record.get("Blob", raw=True)
            rows += 1
print(rows)
"""


def child_env() -> dict[str, str]:
    """The environment of timed children: bytecode is written and used, as in an installed package
    (PYTHONDONTWRITEBYTECODE would make every start compile the sources again)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def bitsdb_command() -> list[str]:
    """The console script users run (installed beside this Python), else `python -m bitsdb`."""
    script = Path(sys.executable).with_name("bitsdb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bitsdb"]


@dataclass
class Runs:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of repeated runs of one command."""

    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def median(self, what: str = "wall") -> float:
        return statistics.median(getattr(self, what))

    def spread(self, what: str = "wall") -> str:
        values = getattr(self, what)
        return f"{min(values):.3f}-{max(values):.3f}"


def run_child(command: list[str], runs: Runs, cwd: Path | None = None) -> None:
    """Run once; record wall time, CPU time and peak RSS of the child (its own worker processes
    included: wait4 counts the descendants it waited for). Fails on a non-zero exit."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env(), cwd=cwd)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    runs.wall.append(time.perf_counter() - started)
    runs.cpu.append(usage.ru_utime + usage.ru_stime)
    runs.rss.append(usage.ru_maxrss / 1024)
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed ({status}): {stderr.decode(errors='replace')[-500:]}")


def interleaved(commands: dict[str, list[str]], count: int, warm_up: bool = True) -> dict[str, Runs]:
    """Each command `count` times, round-robin (so drift hits all alike); one untimed run each first."""
    results = {name: Runs(name) for name in commands}
    if warm_up:
        for command in commands.values():
            run_child(command, Runs("warm-up"))
    for _ in range(count):
        for name, command in commands.items():
            run_child(command, results[name])
    return results


def report_line(runs: Runs, reference: Runs | None = None, what: str = "wall", target: float | None = None) -> str:
    text = f"{runs.name:<34} {what} median {runs.median(what):7.3f} s (spread {runs.spread(what)})"
    if reference is not None:
        ratio = runs.median(what) / reference.median(what)
        text += f"  = {ratio:5.2f} x {reference.name}"
        if target is not None:
            text += f" (target <= {target:g}: {'met' if ratio <= target else 'NOT met'})"
    return text
