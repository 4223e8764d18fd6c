"""Many evidence items in one run: plan units, read them in worker processes, summarise.

A unit is one Downloader group of a collection folder (cheap, found by one walk in the
parent), or one whole zip, disk image or loose BITS file (opened inside the worker).
Output order never depends on which worker finished first.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..formats.markers import InputKind
from ..sources.detect import detect_file, role_of
from ..sources.result import SourceError, internal_error
from .records import Artefact, ArtefactGroup, BatchReport, ItemResult

ProgressCallback = Callable[[int, int, ItemResult], None]


@dataclass
class Unit:
    kind: str                       # group | zip | image | file | error
    evidence: str
    group: ArtefactGroup | None = None
    error: str | None = None


def classify(path: str | Path) -> str:
    """folder | zip | file (a BITS store or blob) | image; raises SourceError for anything else."""
    path = Path(path)
    if not path.exists():
        raise SourceError("no such file or directory")
    if path.is_dir():
        return "folder"
    try:
        if path.stat().st_size == 0:
            raise SourceError("empty file")
        if detect_file(path) is not InputKind.UNKNOWN:
            return "file"
        from .archives import is_zip

        if is_zip(path):
            return "zip"
    except PermissionError:
        raise SourceError("permission denied") from None
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror or exc})") from None
    from .images import looks_like_image

    if looks_like_image(path):
        return "image"
    if role_of(path.name) == "store":
        return "file"              # named like a store, its header damaged: read (and carved) as one
    raise SourceError("not a BITS database, state file, job/file record, zip archive or disk image "
                      "(unrecognised content)")


def plan(paths: Iterable[str | Path]) -> list[Unit]:
    """Units in a fixed order: the given order, then each folder's items by path."""
    units: list[Unit] = []
    loose: dict[Path, Unit] = {}                 # qmgr0/1.dat given one by one: paired by folder
    for given in paths:
        try:
            kind = classify(given)
        except SourceError as exc:
            units.append(Unit("error", str(given), error=str(exc)))
            continue
        if kind == "file" and Path(given).name.lower() not in ("qmgr0.dat", "qmgr1.dat"):
            units.append(Unit("group", str(given), group=_file_group(str(given))))
            continue
        if kind == "file":
            folder = Path(given).resolve().parent
            if folder in loose:
                unit = loose[folder]
                unit.group.artefacts.extend(_file_group(str(given)).artefacts)
                unit.evidence = unit.group.evidence = str(Path(given).parent)   # several files: their folder
                for artefact in unit.group.artefacts:
                    artefact.evidence = unit.evidence
            else:
                loose[folder] = Unit("group", str(given), group=_file_group(str(given)))
                units.append(loose[folder])
            continue
        if kind != "folder":
            units.append(Unit(kind, str(given)))
            continue
        from .archives import is_zip
        from .folders import walk_folder

        groups, nested = walk_folder(given)
        for group in sorted(groups, key=ArtefactGroup.sort_key):
            units.append(Unit("group", group.evidence, group=group))
        for inner in nested:
            units.append(Unit("zip" if is_zip(inner) else "image", str(inner)))
        if not groups and not nested:
            units.append(Unit("error", str(given), error="directory holds no BITS files (qmgr.db, qmgr0.dat, "
                                                         "qmgr1.dat), zip archives or disk images"))
    return units


def _file_group(path: str) -> ArtefactGroup:
    p = Path(path)
    stat = p.stat()
    group = ArtefactGroup(evidence=path, evidence_kind="file", folder=str(p.parent))
    group.artefacts.append(Artefact(evidence=path, evidence_kind="file", path_in_evidence=p.name, name=p.name,
                                    role="store", size=stat.st_size, mtime=stat.st_mtime, local_path=path))
    return group


@contextmanager
def private_workdir() -> Iterator[Path]:
    """A 0700 temporary folder (under $TMPDIR, never beside the evidence), removed afterwards."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bitsdb-evidence-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def open_unit(unit: Unit) -> Iterator[tuple[list[ArtefactGroup], list[str], list[str]]]:
    """The unit's groups with readable local copies; temporary copies live until the block ends."""
    if unit.kind == "group":
        yield [unit.group], [], []
    elif unit.kind == "file":
        yield [_file_group(unit.evidence)], [], []
    elif unit.kind in ("zip", "image"):
        with private_workdir() as workdir:
            if unit.kind == "zip":
                from .archives import zip_groups as finder
            else:
                from .images import image_groups as finder
            yield finder(unit.evidence, workdir)
    else:
        raise SourceError(unit.error or "unreadable")


def run_unit(unit: Unit, recover: bool = False) -> ItemResult:
    """Read one unit (with carved historical records when `recover`); never raises."""
    from .reading import read_group

    started = time.perf_counter()
    kind = unit.group.evidence_kind if unit.group else unit.kind
    item = ItemResult(evidence=unit.evidence, evidence_kind=kind)
    try:
        with open_unit(unit) as (groups, warnings, volumes):
            item.warnings.extend(warnings)
            item.volumes = volumes
            if not groups and unit.kind in ("zip", "image"):
                item.warnings.append(f"{unit.evidence}: no BITS files found")
            for group in groups:
                results, failures = read_group(group, recover)
                item.groups.append(group)
                item.results.extend(results)
                item.failures.extend(failures)
                item.warnings.extend(group.warnings)
                group.warnings = []
    except SourceError as exc:
        item.failures.append(f"{unit.evidence}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one failing item never stops the batch
        item.failures.append(internal_error(unit.evidence, exc))
    for group in item.groups:
        for artefact in group.artefacts:
            if artefact.evidence_kind in ("zip", "image"):
                artefact.local_path = None          # the temporary copy is gone
    item.store_count = sum(len(g.stores) for g in item.groups)
    item.job_count = sum(len(r.jobs) for r in item.results)
    item.seconds = time.perf_counter() - started
    return item


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _context():
    """fork when it is safe (Linux, no other threads: cheapest start, works from any __main__),
    else forkserver/spawn."""
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def iter_batch(paths: Iterable[str | Path], jobs: int | None = None,
               progress: ProgressCallback | bool | None = None, workers_used: list | None = None,
               recover: bool = False) -> Iterator[ItemResult]:
    """ItemResults in plan order as soon as each is ready (so output can stream); see run_batch."""
    jobs = default_jobs() if not jobs or jobs < 1 else jobs
    units = plan(paths)
    callback = _progress_callback(progress)
    workers = max(1, min(jobs, len(units)))
    if workers_used is not None:
        workers_used.append(workers)
    if workers == 1:
        for index, unit in enumerate(units):
            item = run_unit(unit, recover)
            if callback:
                callback(index + 1, len(units), item)
            yield item
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed   # only when there are workers

        ready: dict[int, ItemResult] = {}
        next_index = 0
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            futures = {pool.submit(run_unit, unit, recover): index for index, unit in enumerate(units)}
            for done, future in enumerate(as_completed(futures), 1):
                index = futures[future]
                try:
                    ready[index] = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker that died still gets its line
                    unit = units[index]
                    ready[index] = ItemResult(unit.evidence, unit.kind, failures=[
                        f"{unit.evidence}: worker failed: {type(exc).__name__}: {exc}"])
                if callback:
                    callback(done, len(units), ready[index])
                while next_index in ready:
                    yield ready.pop(next_index)
                    next_index += 1
    if callback:
        callback(-1, len(units), None)


def run_batch(paths: Iterable[str | Path], jobs: int | None = None,
              progress: ProgressCallback | bool | None = None, recover: bool = False) -> BatchReport:
    """Read every evidence item; `jobs` worker processes (default: usable cores).

    progress: a callback(done, total, item) (done == -1 once at the end), True for a stderr
    line, None for a stderr line only when stderr is a terminal, False for none.
    """
    started = time.perf_counter()
    workers: list[int] = []
    items = list(iter_batch(paths, jobs, progress, workers, recover))
    return BatchReport(items=items, jobs=workers[0] if workers else 1, seconds=time.perf_counter() - started)


def _progress_callback(progress: ProgressCallback | bool | None) -> ProgressCallback | None:
    if callable(progress):
        return progress
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    state = {"last": 0.0, "failed": 0, "stores": 0}

    def show(done: int, total: int, item: ItemResult | None) -> None:
        if item is not None:
            state["failed"] += bool(item.failures)
            state["stores"] += sum(len(g.stores) for g in item.groups)
        now = time.monotonic()
        if done == -1:
            sys.stderr.write("\n" if state["last"] else "")
        elif done == total or now - state["last"] >= 0.1:
            state["last"] = now
            sys.stderr.write(f"\rbitsdb: {done}/{total} item(s), {state['stores']} store file(s), "
                             f"{state['failed']} failed")
        sys.stderr.flush()

    return show
