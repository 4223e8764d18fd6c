"""Many evidence items in one run: plan units, read them in worker processes, summarise.

A unit is one Downloader group of a collection folder (cheap, found by one walk in the
parent), or one whole zip, disk image or loose BITS file (opened inside the worker).
Output order never depends on which worker finished first.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..formats.markers import InputKind
from ..sources.detect import detect_file, role_of, side_role, special_kind
from ..sources.result import SourceError, internal_error, unreadable
from .records import Artefact, ArtefactGroup, BatchReport, ItemResult

ProgressCallback = Callable[[int, int, ItemResult], None]


@dataclass
class Unit:
    """One unit of work: a Downloader group, a zip, a disk image, a loose file, or an error."""

    kind: str                       # group (a loose file is a group of one) | zip | image | error
    evidence: str
    group: ArtefactGroup | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)     # met while planning (entries of a tree left out)


def classify(path: str | Path) -> str:
    """folder | zip | file (a BITS store or blob) | image; raises SourceError for anything else.

    An input named by the user may be a link (it is followed); it must lead to a folder or a
    regular file: a FIFO, socket or device is refused (reading it could block or never end).
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise unreadable(exc) from None
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"not a regular file or folder ({special_kind(st)}): not read")
    try:
        if st.st_size == 0:
            raise SourceError("empty file")
        if detect_file(path) is not InputKind.UNKNOWN or side_role(path):
            return "file"
        from .archives import is_zip

        if is_zip(path):
            return "zip"
    except OSError as exc:
        raise unreadable(exc) from None
    from .images import looks_like_image

    if looks_like_image(path):
        return "image"
    if role_of(path.name) == "store":
        return "file"              # named like a store, its header damaged: read (and carved) as one
    from .archives import other_container

    container = other_container(path)
    if container:
        raise SourceError(container)
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
            units.append(Unit("group", str(given), group=_file_group(str(given)),
                              warnings=_special_companions(Path(given))))
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

        groups, nested, skipped = walk_folder(given)
        first = len(units)
        for group in sorted(groups, key=ArtefactGroup.sort_key):
            units.append(Unit("group", group.evidence, group=group))
        for inner in nested:
            units.append(Unit("zip" if is_zip(inner) else "image", str(inner)))
        if not groups and not nested:
            units.append(Unit("error", str(given), error="directory holds no BITS files (qmgr.db, qmgr0.dat, "
                                                         "qmgr1.dat), zip archives or disk images"))
        units[first].warnings.extend(skipped)
    return units


def _special_companions(path: Path) -> list[str]:
    """ESE logs beside a named database that are links or special files: never read (--recover), said."""
    try:
        with os.scandir(path.parent) as listing:
            companions = sorted((e for e in listing if role_of(e.name) == "companion"), key=lambda e: e.name)
        kinds = [(entry.path, special_kind(entry.stat(follow_symlinks=False))) for entry in companions]
    except OSError:
        return []
    return [f"{where}: {special} not followed or opened (evidence links and special files are skipped)"
            for where, special in kinds if special]


def _file_group(path: str) -> ArtefactGroup:
    p = Path(path)
    stat = p.stat()
    group = ArtefactGroup(evidence=path, evidence_kind="file", folder=str(p.parent))
    group.artefacts.append(Artefact(evidence=path, evidence_kind="file", path_in_evidence=p.name, name=p.name,
                                    role=side_role(path) or "store", size=stat.st_size, mtime=stat.st_mtime,
                                    local_path=path))
    return group


@contextmanager
def private_workdir(root: str | Path | None = None) -> Iterator[Path]:
    """A 0700 temporary folder (in `root`, else under $TMPDIR; never beside the evidence), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bitsdb-evidence-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def open_unit(unit: Unit, root: str | Path | None = None
              ) -> Iterator[tuple[list[ArtefactGroup], list[str], list[str]]]:
    """The unit's groups with readable local copies; temporary copies live until the block ends."""
    if unit.kind == "group":
        yield [unit.group], [], []
    elif unit.kind in ("zip", "image"):
        with private_workdir(root) as workdir:
            if unit.kind == "zip":
                from .archives import zip_groups as finder
            else:
                from .images import image_groups as finder
            yield finder(unit.evidence, workdir)
    else:
        raise SourceError(unit.error or "unreadable")


def run_unit(unit: Unit, recover: bool = False, root: str | Path | None = None) -> ItemResult:
    """Read one unit (with carved historical records when `recover`); never raises an Exception."""
    from .reading import read_group, read_group_logs

    started = time.perf_counter()
    kind = unit.group.evidence_kind if unit.group else unit.kind
    item = ItemResult(evidence=unit.evidence, evidence_kind=kind, warnings=list(unit.warnings))
    try:
        with open_unit(unit, root) as (groups, warnings, volumes):
            item.warnings.extend(warnings)
            item.volumes = volumes
            if not groups and unit.kind in ("zip", "image"):
                item.warnings.append(f"{unit.evidence}: no BITS files found")
            for group in groups:
                results, failures = read_group(group, recover)
                item.groups.append(group)
                item.results.extend(results)
                item.failures.extend(failures)
                logs, services, failures = read_group_logs(group)
                item.logs.extend(logs)
                item.services.extend(services)
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


def iter_batch(paths: Iterable[str | Path], jobs: int | None = None,
               progress: ProgressCallback | bool | None = None, workers_used: list | None = None,
               recover: bool = False, scheduler: str | None = None, range_size: int | None = None,
               events: list | None = None) -> Iterator[ItemResult]:
    """ItemResults in plan order as soon as each is ready (so output can stream); see run_batch.

    With `recover`, a disk image's whole decoded media is carved too (every volume, snapshot
    store and unpartitioned area, in ranges that run as separate tasks). `scheduler`: a Dask
    scheduler address (cluster mode); raises cluster.PoolError when it cannot be used.
    `events` receives what happened to workers (lost, tasks run again).

    Copies out of zips and images live in one private folder of the run (0700, under $TMPDIR; on a
    cluster, each worker's own), removed when the batch ends however it ends: an interruption, or
    a consumer that stops early, stops local worker processes first (docs/SECURITY.md).
    """
    from .cluster import TaskRunner, open_pool

    units = plan(paths)
    callback = _progress_callback(progress)
    copies = any(unit.kind in ("zip", "image") for unit in units)
    root = str(tempfile.mkdtemp(prefix="bitsdb-run-")) if copies and not scheduler else None
    try:
        with open_pool(jobs, scheduler, len(units)) as pool:
            if workers_used is not None:
                workers_used.append(pool.workers)
            runner = TaskRunner(pool)
            ready: dict[int, ItemResult] = {}
            finished = [0]

            def deliver(index: int, item: ItemResult) -> None:
                ready[index] = item
                finished[0] += 1
                if callback:
                    callback(finished[0], len(units), item)

            for indexes in _chunks(units, pool.workers):
                if len(indexes) > 1:
                    chunk = [units[i] for i in indexes]
                    runner.submit(run_units, (chunk, recover, root), partial(_chunk_done, indexes, chunk, deliver))
                    continue
                [index] = indexes
                unit = units[index]
                carve = recover and unit.kind == "image"
                joiner = _ImageJoin(partial(deliver, index)) if carve else None
                runner.submit(run_unit, (unit, recover, root),
                              partial(_unit_done, unit, joiner or partial(deliver, index)))
                if carve:
                    from .imagecarve import ImageCarving   # the carver (and construct) only when an image is carved

                    ImageCarving(unit.evidence, runner, joiner.carved, **_range(range_size)).start()
            for index in range(len(units)):
                while index not in ready:
                    runner.step()
                yield ready.pop(index)
            if events is not None:
                events.extend(pool.events())
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        if callback:
            callback(-1, len(units), None)


#: Cheap units (a collection's Downloader folder, a loose file) go to workers in chunks of at most
#: this many, so that per-task costs (a round trip to a worker or a Dask scheduler) are paid per chunk.
MAX_CHUNK = 16


def _chunks(units: list[Unit], workers: int) -> Iterator[list[int]]:
    """Unit indexes in plan order: runs of cheap units in chunks (at least 4 tasks per worker),
    every zip or image alone."""
    cheap = sum(unit.kind == "group" for unit in units)
    size = max(1, min(MAX_CHUNK, cheap // (4 * max(workers, 1)))) if workers > 1 else 1
    run: list[int] = []
    for index, unit in enumerate(units):
        if unit.kind == "group":
            run.append(index)
            if len(run) == size:
                yield run
                run = []
            continue
        if run:
            yield run
            run = []
        yield [index]
    if run:
        yield run


def run_units(units: list[Unit], recover: bool = False, root: str | Path | None = None) -> list[ItemResult]:
    """Task: several cheap units, one after the other."""
    return [run_unit(unit, recover, root) for unit in units]


def _chunk_done(indexes: list[int], chunk: list[Unit], deliver, items, exc: BaseException | None) -> None:
    for position, (index, unit) in enumerate(zip(indexes, chunk)):
        _unit_done(unit, partial(deliver, index), items[position] if exc is None else None, exc)


def _range(range_size: int | None) -> dict:
    return {"range_size": range_size} if range_size else {}


def _unit_done(unit: Unit, deliver, item: ItemResult | None, exc: BaseException | None) -> None:
    """A unit's outcome; a worker that died for good still gets its line."""
    if exc is not None:
        item = ItemResult(unit.evidence, unit.kind, failures=[f"{unit.evidence}: worker failed: {type(exc).__name__}: "
                                                               f"{exc}"])
    if isinstance(deliver, _ImageJoin):
        deliver.read(item)
    else:
        deliver(item)


class _ImageJoin:
    """An image read for its stores (one task) and carved as a whole (many): one ItemResult."""

    def __init__(self, deliver) -> None:
        self.deliver = deliver
        self.item: ItemResult | None = None
        self.carve = None

    def read(self, item: ItemResult) -> None:
        self.item = item
        self._join()

    def carved(self, carve) -> None:
        self.carve = carve
        self._join()

    def _join(self) -> None:
        if self.item is None or self.carve is None:
            return
        from .imagecarve import merge_into

        item, carve = self.item, self.carve
        hosts = {(g.host, g.host_source) for g in item.groups if g.host}
        host, source = sorted(hosts)[0] if len(hosts) == 1 else (None, None)
        result, _ = merge_into(item.results, carve, host, source)
        item.warnings.extend(carve.warnings)
        item.failures.extend(carve.failures)
        if result is not None:
            item.results.append(result)
            item.job_count += len(result.jobs)
        self.deliver(item)


def run_batch(paths: Iterable[str | Path], jobs: int | None = None,
              progress: ProgressCallback | bool | None = None, recover: bool = False,
              scheduler: str | None = None, range_size: int | None = None) -> BatchReport:
    """Read every evidence item; `jobs` worker processes (default: usable cores), or the workers
    of the Dask cluster at `scheduler`.

    progress: a callback(done, total, item) (done == -1 once at the end), True for a stderr
    line, None for a stderr line only when stderr is a terminal, False for none.
    """
    started = time.perf_counter()
    workers: list[int] = []
    events: list[str] = []
    items = list(iter_batch(paths, jobs, progress, workers, recover, scheduler, range_size, events))
    return BatchReport(items=items, jobs=workers[0] if workers else 1, seconds=time.perf_counter() - started,
                       events=events)


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
