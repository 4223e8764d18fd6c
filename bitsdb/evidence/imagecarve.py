"""Carving a whole disk image: survey → ranges → locate, as tasks on any pool, then one history.

    survey(image)                        one task: volumes, snapshot stores, unpartitioned space
    scan_target_range(target, a, b)      one task per range (DEFAULT_RANGE bytes, overlapping reads)
    locate_hits(target, offsets)         one task per target with hits: unallocated / file / slack

Ranges of a target are merged in offset order (carve.ranges.merge_ranges), so the records
are the same whatever the split, the pool or the order tasks finished in. Records then get
their provenance (evidence, partition, snapshot, volume offset, allocation, file path) and
go through carve.history like any carved record: identical copies — the live qmgr.db's page
and a deleted copy's cluster — become one record listing every place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterable

from ..carve.history import History, Located, build_history
from ..carve.ranges import DEFAULT_RANGE, RangeResult, merge_ranges, split_ranges
from ..carve.recover import DB_PAGE, IMAGE, LOG_FILE, SLACK
from ..carve.scanner import CarvedRecord
from ..model import Job, JobFile, Provenance
from ..sources.detect import role_of
from ..sources.result import SourceError, SourceResult, internal_error
from .cluster import TaskRunner
from .locate import host_from_name
from .volumes import Place, Survey, Target, locate_hits, scan_target_range, survey

#: Rank of a copy's place when several identical copies exist (lower is reported first).
_PLACE_RANK = {DB_PAGE: 0, LOG_FILE: 1, SLACK: 1}


@dataclass
class ImageCarve:
    """What carving one image's decoded media produced."""

    image: str
    survey: Survey | None = None
    records: dict[int, list[CarvedRecord]] = field(default_factory=dict)     # target index -> merged
    places: dict[int, dict[int, Place]] = field(default_factory=dict)        # target index -> offset -> place
    hits: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[Target]:
        return self.survey.targets if self.survey else []

    @property
    def bytes_scanned(self) -> int:
        return sum(t.scanned_bytes for t in self.targets)

    @property
    def record_count(self) -> int:
        return sum(len(r) for r in self.records.values())

    def located(self, host: str | None = None, host_source: str | None = None) -> list[Located]:
        """Every merged record with its provenance, targets in survey order."""
        if host is None:
            host = host_from_name(self.image.replace("\\", "/").rsplit("/", 1)[-1])
            host_source = "image name" if host else None
        out = []
        for index, target in enumerate(self.targets):
            places = self.places.get(index, {})
            for carved in self.records.get(index, []):
                place = places.get(carved.offset) or Place("no file system")
                provenance = _provenance(self.image, target, carved.offset, place, host, host_source)
                rank = index * 4 + _PLACE_RANK.get(provenance.recovered_from, 2 if place.path else 3)
                out.append(Located(carved=carved, provenance=provenance, rank=rank))
        return out


def _provenance(image: str, target: Target, offset: int, place: Place, host, host_source) -> Provenance:
    where = target.label if target.kind != "media" else ""
    if place.path is not None:
        inner = place.path.lstrip("/")
        source_path = f"{image}!{where + '/' if where else ''}{inner}"
        recovered_from = _recovered_from(place.path)
    else:
        source_path = f"{image}!{where}" if where else image
        recovered_from = IMAGE
    return Provenance(source_path=source_path, source_kind="image", recovered=True, recovered_from=recovered_from,
                      offset=place.file_offset if place.path is not None else offset, container=image, host=host,
                      host_source=host_source, partition=target.partition, snapshot=target.snapshot,
                      path_in_evidence=place.path, volume_offset=offset, allocation=place.allocation)


def _recovered_from(path: str) -> str:
    """Bytes inside a BITS file are named as file carving names them (db page, log file, slack)."""
    name = path.rsplit("/", 1)[-1].lower()
    if name == "qmgr.db":
        return DB_PAGE
    role = role_of(name)
    if role == "companion":
        return LOG_FILE
    return SLACK if role == "store" else IMAGE


class ImageCarving:
    """One image's tasks on a shared runner; `on_done(carve)` is called once everything is in."""

    def __init__(self, image: str, runner: TaskRunner, on_done: Callable[[ImageCarve], None],
                 range_size: int = DEFAULT_RANGE) -> None:
        self.carve = ImageCarve(image=image)
        self.runner = runner
        self.on_done = on_done
        self.range_size = range_size
        self._ranges: dict[int, list[RangeResult]] = {}
        self._waiting: dict[int, int] = {}
        self._open = 0

    def start(self) -> None:
        self._open += 1
        self.runner.submit(survey, (self.carve.image,), self._surveyed)

    def _surveyed(self, result: Survey | None, exc: BaseException | None) -> None:
        self._open -= 1
        if exc is not None:
            self._fail(self.carve.image, exc)
        else:
            self.carve.survey = result
            self.carve.warnings.extend(f"{self.carve.image}!{w}" for w in result.warnings)
            for index, target in enumerate(result.targets):
                ranges = split_ranges(target.regions, self.range_size)
                self._waiting[index] = len(ranges)
                self._ranges[index] = []
                for start, stop in ranges:
                    self._open += 1
                    self.runner.submit(scan_target_range, (target, start, stop), partial(self._scanned, index))
        self._maybe_done()

    def _scanned(self, index: int, result: RangeResult | None, exc: BaseException | None) -> None:
        self._open -= 1
        self._waiting[index] -= 1
        target = self.carve.targets[index]
        if exc is not None:
            self._fail(f"{self.carve.image}!{target.label}", exc)
        else:
            self._ranges[index].append(result)
            self.carve.hits += result.hits
        if not self._waiting[index]:
            merged = merge_ranges(self._ranges.pop(index))
            self.carve.records[index] = merged
            if merged:
                self._open += 1
                self.runner.submit(locate_hits, (target, [r.offset for r in merged]), partial(self._located, index))
        self._maybe_done()

    def _located(self, index: int, result: dict[int, Place] | None, exc: BaseException | None) -> None:
        self._open -= 1
        if exc is not None:
            self.carve.warnings.append(f"{self.carve.image}!{self.carve.targets[index].label}: hits not located "
                                       f"({type(exc).__name__}: {exc})")
        else:
            self.carve.places[index] = result
        self._maybe_done()

    def _fail(self, where: str, exc: BaseException) -> None:
        if isinstance(exc, SourceError):
            message = str(exc)
            self.carve.failures.append(message if message.startswith(where) else f"{where}: {message}")
        else:
            self.carve.failures.append(internal_error(where, exc))

    def _maybe_done(self) -> None:
        if not self._open:
            self.on_done(self.carve)


def carve_images(images: Iterable[str], runner: TaskRunner, range_size: int = DEFAULT_RANGE,
                 progress: Callable[[int, int], None] | None = None) -> list[ImageCarve]:
    """Carve several images on one runner (their tasks interleave); results in the given order."""
    done: dict[int, ImageCarve] = {}
    images = list(images)
    for index, image in enumerate(images):
        ImageCarving(image, runner, partial(done.__setitem__, index), range_size).start()
    while runner.busy:
        runner.step()
        if progress:
            progress(runner.finished, runner.submitted)
    return [done[index] for index in range(len(images))]


def merge_into(item_results: list[SourceResult], carve: ImageCarve, host: str | None = None,
               host_source: str | None = None) -> tuple[SourceResult | None, History]:
    """`parse --recover` on an image: what the media holds beyond what the store files gave.

    Copies identical to a record already read (live row, or a version carved from the copied-out
    database and logs) are not repeated: their places are added to that record's `locations`.
    Returns the new records as one SourceResult named after the image (None when there are none).
    """
    known_jobs: list[Job] = [job for result in item_results for job in result.jobs]
    known_files: list[JobFile] = [jf for result in item_results for jf in result.orphan_files]
    history = build_history(carve.located(host, host_source), known_jobs, known_files)
    if not history.jobs and not history.orphan_files:
        return None, history
    result = SourceResult(path=carve.image, kind="image", jobs=history.jobs, orphan_files=history.orphan_files,
                          warnings=list(history.warnings))
    return result, history


def summary_line(carve: ImageCarve) -> str:
    """`IMAGE: N bytes of K volume(s) (p1, p1/vss1 …), H marker hits, J job and F file records`."""
    jobs = sum(1 for records in carve.records.values() for r in records if r.kind == "job")
    labels = ", ".join(t.label for t in carve.targets) or "none"
    return (f"{carve.image}: {carve.bytes_scanned} bytes of {len(carve.targets)} volume(s) ({labels}), "
            f"{carve.hits} marker hits, {jobs} job and {carve.record_count - jobs} file records")

