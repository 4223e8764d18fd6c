"""Long-run, structure-aware fuzzer: mutated records into every decoder, mutated stores through the CLI.

Usage (from the project root):
    python tools/fuzz.py decoders --inputs 1000000 [--seed 1] [--crashes DIR]
    python tools/fuzz.py stores --runs 5000 [--seed 1] [--timeout 60] [--crashes DIR]

`decoders` (in-process, fast): seeds are the real samples under ../shared/samples/real (when present),
the project's own samples and records forged here; each input is a seed mutated where it hurts (string
counts and lengths, file and job counts, markers, cuts, inserted/deleted/repeated bytes) and goes to
decode_job_blob, decode_file_blob, decode_legacy_job, decode_legacy_file_list, decode_legacy_record,
parse_state_file, detect_bytes and the carving scanner. Only BlobError / SourceError may escape, and
every result must be well-formed (to_dict and JSON work, offsets inside the input, partial records
say why). Counted: inputs, crashes (by exception type and place), malformed results, slow inputs.

`stores` (whole files, subprocess): each run is an evidence folder with a damaged store (an ESE
database with one structural damage: truncated, zeroed or swapped pages, page header fields, tags,
child and sibling pointers, long-value chunks, catalog, database header — or a mutated legacy state
file or raw record) beside a good store, read with `python -m bitsdb parse --recover` under a
private TMPDIR and a timeout. Counted: internal errors (or tracebacks), lost good inputs (a job of
the good store missing from the output), files left in the private temp folder, evidence changes
(hash before/after), hangs (timeouts), exit statuses other than 0/1.

Inputs that fail a check are written to --crashes (default: fuzz-crashes/ in the working folder).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitsdb.carve.scanner import Scanner  # noqa: E402
from bitsdb.decode import BlobError, decode_file_blob, decode_job_blob  # noqa: E402
from bitsdb.decode.legacy import decode_legacy_file_list, decode_legacy_job, decode_legacy_record  # noqa: E402
from bitsdb.forge.carving import file_bytes, job_bytes  # noqa: E402
from bitsdb.forge.hostile import COSTLY_SHAPES, legacy_job_record, length_fields, mutate_database, mutate_record  # noqa: E402
from bitsdb.sources.detect import detect_bytes  # noqa: E402
from bitsdb.sources.legacy import parse_state_file  # noqa: E402
from bitsdb.sources.result import SourceError  # noqa: E402

REAL = ROOT.parent / "shared" / "samples" / "real"
EXPECTED = (BlobError, SourceError)
#: A string that is not valid Unicode reaching a writer (issue 12 class 1: output representation, not a
#: reader's failure); counted apart so reader failures stay visible.
WRITER_UNICODE = "internal error in a writer (UnicodeEncodeError: issue 12 class 1)"
SLOW_SECONDS = 1.0


# --------------------------------------------------------------------------- seeds


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def record_seeds() -> dict[str, list[bytes]]:
    """Seeds per decoder family; real samples when present, the project's own and forged records always."""
    from bitsdb.sources.ese_lv import EseLongValues

    seeds: dict[str, list[bytes]] = {"job": [job_bytes(n, version=n % 3, files=n % 3) for n in range(4)],
                                     "file": [file_bytes(n) for n in range(3)],
                                     "legacy_job": [legacy_job_record()], "legacy_files": [], "state": []}
    for name, kind in (("artemis/win10_job.raw", "job"), ("artemis/win10_file.raw", "file"),
                       ("artemis/win81_file.raw", "legacy_files"),
                       ("bitsinject/win10legacy_job_SYSTEM_cmd_vlc.dat", "legacy_job"),
                       ("bitsinject/win10legacy_no_jobs_qmgr.dat", "state")):
        data = _read(REAL / name)
        if data:
            seeds[kind].append(data)
    for name, kind in (("persistence_job.blob", "job"), ("persistence_file.blob", "file")):
        data = _read(ROOT / "samples" / "synthetic" / name)
        if data:
            seeds[kind].append(data)
    for state in sorted((ROOT / "samples" / "legacy").glob("*/qmgr*.dat")):
        data = state.read_bytes()
        seeds["state"].append(data)
        for record in parse_state_file(data).records:
            seeds["legacy_job"].append(data[record.offset:record.end])
    for db in [ROOT / "samples" / "demo" / "qmgr.db", REAL / "artemis" / "win11_qmgr.db"]:
        if db.exists():
            reader = EseLongValues(db)
            seeds["job"].extend(list(reader.blobs("Jobs").values())[:6])
            seeds["file"].extend(list(reader.blobs("Files").values())[:6])
    seeds["legacy_files"].extend(_file_lists(seeds["legacy_job"]))
    return seeds


def _file_lists(records: list[bytes]) -> list[bytes]:
    from bitsdb.formats.markers import FILE_LIST_MARKER

    out = []
    for record in records:
        at = record.find(FILE_LIST_MARKER)
        if at >= 0:
            out.append(record[at:])
    return out


# --------------------------------------------------------------------------- decoder fuzzing


def _check_record(record, size: int) -> str | None:
    data = record.to_dict()
    json.dumps(data)
    if record.partial and not record.partial_reason:
        return "partial without a reason"
    if getattr(record, "blob_size", None) is not None and record.blob_size > size + 32:
        return f"blob_size {record.blob_size} beyond the input ({size})"
    return None


def _decode_job(data: bytes) -> str | None:
    return _check_record(decode_job_blob(data), len(data))


def _decode_file(data: bytes) -> str | None:
    return _check_record(decode_file_blob(data), len(data))


def _decode_legacy_job(data: bytes) -> str | None:
    return _check_record(decode_legacy_job(data), len(data))


def _decode_legacy_record(data: bytes) -> str | None:
    job, end = decode_legacy_record(data, 0)
    if not 0 <= end <= len(data):
        return f"end {end} outside the input"
    return _check_record(job, len(data))


def _decode_file_list(data: bytes) -> str | None:
    files, end, error = decode_legacy_file_list(data)
    if not 0 <= end <= len(data):
        return f"end {end} outside the input"
    for jf in files:
        problem = _check_record(jf, len(data))
        if problem:
            return problem
    return None


def _state(data: bytes) -> str | None:
    state = parse_state_file(data)
    for record in state.records:
        if not 0 <= record.offset < record.end <= len(data):
            return f"record span {record.offset}..{record.end} outside the input"
        problem = _check_record(record.job, len(data))
        if problem:
            return problem
    return None


def _carve(data: bytes) -> str | None:
    last = -1
    for carved in Scanner(window=64 * 1024, hash_input=False).records(io.BytesIO(data)):
        if not last < carved.offset < len(data):
            return f"carved offset {carved.offset} out of order or outside the input"
        last = carved.offset
        problem = _check_record(carved.record, len(data))
        if problem:
            return problem
    return None


def _detect(data: bytes) -> str | None:
    detect_bytes(data[:1 << 16])
    return None


DECODERS = {
    "job": [_decode_job, _detect, _carve],
    "file": [_decode_file, _detect, _carve],
    "legacy_job": [_decode_legacy_job, _decode_legacy_record, _carve],
    "legacy_files": [_decode_file_list, _detect],
    "state": [_state, _carve],
}


def fuzz_decoders(inputs: int, seed: int, crashes: Path, report_every: int = 50000) -> dict:
    rng = random.Random(seed)
    seeds = record_seeds()
    fields = {kind: [length_fields(s) for s in items] for kind, items in seeds.items()}
    kinds = [kind for kind in seeds if seeds[kind]]
    counts: Counter = Counter()
    signatures: Counter = Counter()
    started = time.perf_counter()
    for number in range(inputs):
        kind = rng.choice(kinds)
        index = rng.randrange(len(seeds[kind]))
        data = seeds[kind][index]
        if kind == "state" and rng.random() < 0.02:
            data = rng.choice(list(COSTLY_SHAPES.values()))(rng.randrange(1024, 64 * 1024))
        data = mutate_record(data, rng, fields[kind][index])
        decoder = rng.choice(DECODERS[kind])
        counts["inputs"] += 1
        counts[f"inputs {decoder.__name__.strip('_')}"] += 1
        begun = time.perf_counter()
        try:
            problem = decoder(data)
        except EXPECTED:
            counts["documented errors"] += 1
            problem = None
        except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            signature = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno} ({decoder.__name__})"
            counts["crashes"] += 1
            if signatures[signature] == 0:
                _save(crashes, f"crash-{len(signatures)}", data, signature + "\n" + traceback.format_exc())
            signatures[signature] += 1
            continue
        elapsed = time.perf_counter() - begun
        if elapsed > SLOW_SECONDS:                   # timed again: the first use of a schema compiles it
            begun = time.perf_counter()
            try:
                decoder(data)
            except EXPECTED:
                pass
            elapsed = time.perf_counter() - begun
        if elapsed > SLOW_SECONDS:
            counts["slow inputs"] += 1
            _save(crashes, f"slow-{counts['slow inputs']}", data, f"{decoder.__name__}: {elapsed:.2f} s")
        if problem:
            counts["malformed results"] += 1
            signatures[f"malformed: {problem.split(' ')[0]} ({decoder.__name__})"] += 1
            _save(crashes, f"malformed-{counts['malformed results']}", data, problem)
        if report_every and (number + 1) % report_every == 0:
            print(f"fuzz decoders: {number + 1} inputs, {counts['crashes']} crashes, "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return {"counts": dict(counts), "signatures": dict(signatures), "seconds": round(time.perf_counter() - started)}


def _save(folder: Path, name: str, data: bytes, note: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.bin").write_bytes(data)
    (folder / f"{name}.txt").write_text(note, encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------- whole-store fuzzing


def store_seeds(work: Path) -> tuple[list[tuple[str, bytes]], Path]:
    """(name, bytes) of stores to damage, and the good store's file (a real one when present)."""
    from bitsdb.forge.scale import write_scale_database

    seeds: list[tuple[str, bytes]] = []
    for name in ("win10_qmgr.db", "win11_qmgr.db"):
        data = _read(REAL / "artemis" / name)
        if data:
            seeds.append(("qmgr.db", data))
    seeds.append(("qmgr.db", (ROOT / "samples" / "demo" / "qmgr.db").read_bytes()))
    forged = work / "forged.db"
    write_scale_database(forged, jobs=200, files_per_job=2, seed=5)
    seeds.append(("qmgr.db", forged.read_bytes()))
    for state in sorted((ROOT / "samples" / "legacy").glob("*/qmgr*.dat")):
        seeds.append((state.name, state.read_bytes()))
    for name in ("artemis/win10_job.raw", "bitsinject/win10legacy_job_SYSTEM_cmd_vlc.dat"):
        data = _read(REAL / name)
        if data:
            seeds.append(("record.bin", data))
    good = REAL / "artemis" / "win11_qmgr.db"
    return seeds, good if good.exists() else ROOT / "samples" / "demo" / "qmgr.db"


def _good_job_ids(good: Path) -> set[str]:
    from bitsdb.stores import read

    return {job.job_id for job in read(good).jobs if job.job_id}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def fuzz_stores(runs: int, seed: int, crashes: Path, timeout: float, report_every: int = 250,
                python: str = sys.executable, project: Path = ROOT, workers: int = 1) -> dict:
    """`python -m bitsdb` run in `project` (another checkout, e.g. to measure what a fix changed);
    run N's damage depends only on (seed, N), so results do not depend on `workers`."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    counts: Counter = Counter()
    examples: dict[str, str] = {}
    lock = threading.Lock()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bitsdb-fuzz-") as scratch:
        work = Path(scratch)
        seeds, good = store_seeds(work)
        good_ids = _good_job_ids(good)

        def one(number: int) -> None:
            rng = random.Random(seed * 1_000_003 + number)
            name, data = rng.choice(seeds)
            if name == "qmgr.db" and rng.random() < 0.85:
                damaged, how = mutate_database(data, rng)
            else:
                damaged, how = mutate_record(data, rng, None), "bytes"
            evidence = work / f"run{number}"
            private_tmp = work / f"tmp{number}"
            (evidence / "hostA" / "Downloader").mkdir(parents=True)
            (evidence / "hostB" / "Downloader").mkdir(parents=True)
            private_tmp.mkdir()
            (evidence / "hostA" / "Downloader" / name).write_bytes(damaged)
            if name.startswith("qmgr") and name.endswith(".dat") and rng.random() < 0.5:
                sibling = "qmgr1.dat" if name == "qmgr0.dat" else "qmgr0.dat"
                other = next((d for n, d in seeds if n == sibling), None)
                if other:
                    (evidence / "hostA" / "Downloader" / sibling).write_bytes(mutate_record(other, rng, None))
            shutil.copyfile(good, evidence / "hostB" / "Downloader" / "qmgr.db")
            before = _digest(evidence)
            env = dict(os.environ, TMPDIR=str(private_tmp), TEMP=str(private_tmp), TMP=str(private_tmp))
            failures = []
            stderr = ""
            try:
                proc = subprocess.run([python, "-m", "bitsdb", "parse", "--recover", "--jobs", "1",
                                       str(evidence)], capture_output=True, timeout=timeout, env=env, cwd=project)
                stderr = proc.stderr.decode("utf-8", "replace")
                seen = set()
                for line in proc.stdout.splitlines():
                    try:
                        seen.add(json.loads(line).get("job_id"))
                    except ValueError:
                        failures.append("output line that is not JSON")
                        break
                if "internal error" in stderr or "Traceback" in stderr:
                    failures.append(WRITER_UNICODE if "UnicodeEncodeError" in stderr else "internal error")
                if proc.returncode not in (0, 1):
                    failures.append(f"exit status {proc.returncode}")
                if not good_ids <= seen:
                    failures.append("lost good input" + (" (after a writer UnicodeEncodeError)"
                                                         if WRITER_UNICODE in failures else ""))
            except subprocess.TimeoutExpired:
                failures.append("hang")
            if any(private_tmp.iterdir()):
                failures.append("files left in the temp folder")
            if _digest(evidence) != before:
                failures.append("evidence changed")
            shutil.rmtree(evidence, ignore_errors=True)
            shutil.rmtree(private_tmp, ignore_errors=True)
            with lock:
                counts["runs"] += 1
                counts["clean runs"] += not failures
                for failure in failures:
                    counts[failure] += 1
                    key = f"{failure}: {how}"
                    if key not in examples:
                        examples[key] = stderr[-2000:]
                        _save(crashes, f"store-{len(examples)}-{name}", damaged, f"{key} (run {number})\n{stderr[-4000:]}")
                if report_every and counts["runs"] % report_every == 0:
                    bad = sum(v for k, v in counts.items() if k not in ("runs", "clean runs"))
                    print(f"fuzz stores: {counts['runs']} runs, {bad} failures, "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

        pool = ThreadPoolExecutor(max_workers=max(workers, 1))
        try:
            for future in [pool.submit(one, number) for number in range(runs)]:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)     # stopped: only the runs under way finish
    return {"counts": dict(counts), "examples": {k: v[-600:] for k, v in examples.items()},
            "seconds": round(time.perf_counter() - started)}


def main() -> int:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # remove the scratch folder when stopped
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    decoders = sub.add_parser("decoders")
    decoders.add_argument("--inputs", type=int, default=100000)
    stores = sub.add_parser("stores")
    stores.add_argument("--runs", type=int, default=200)
    stores.add_argument("--timeout", type=float, default=60.0)
    stores.add_argument("--python", default=sys.executable, help="interpreter whose bitsdb is run")
    stores.add_argument("--project", type=Path, default=ROOT, help="folder the CLI runs in")
    stores.add_argument("--workers", type=int, default=1, help="runs at the same time")
    for each in (decoders, stores):
        each.add_argument("--seed", type=int, default=1)
        each.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    if args.mode == "decoders":
        report = fuzz_decoders(args.inputs, args.seed, args.crashes)
        bad = report["counts"].get("crashes", 0) + report["counts"].get("malformed results", 0)
    else:
        report = fuzz_stores(args.runs, args.seed, args.crashes, args.timeout, python=args.python,
                             project=args.project, workers=args.workers)
        bad = sum(v for k, v in report["counts"].items() if k not in ("runs", "clean runs"))
    print(json.dumps(report, indent=1, sort_keys=True))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
