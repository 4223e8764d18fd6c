"""Evidence in, at scale: collection folders, zip triage packages and disk images (with shadow copies).

    iter_groups(path)            -> Iterator[ArtefactGroup]   files of one Downloader folder together
    iter_evidence(path)          -> Iterator[Artefact]        every BITS file, with provenance
    read_evidence(path, jobs=N)  -> list[SourceResult]        read with the existing readers
    run_batch(paths, jobs=N)     -> BatchReport               many items, worker processes, summary
    iter_batch(paths, jobs=N)    -> Iterator[ItemResult]      the same, streamed in a fixed order

Disk images need the optional extra `bitsdb[images]` (dfvfs); names of accounts and the
host come from the evidence's own SOFTWARE/SYSTEM hives (regipy), never from this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..sources.result import SourceError, SourceResult
from .batch import Unit, classify, iter_batch, open_unit, plan, run_batch, run_unit
from .cluster import default_jobs
from .records import Artefact, ArtefactGroup, BatchReport, ItemResult
from .registry import HiveFacts, hive_facts

__all__ = ["Artefact", "ArtefactGroup", "BatchReport", "HiveFacts", "ItemResult", "Unit",
           "classify", "default_jobs", "hive_facts", "iter_batch", "iter_evidence", "iter_groups", "plan",
           "read_evidence", "run_batch", "run_unit"]


def iter_groups(path: str | Path) -> Iterator[ArtefactGroup]:
    """Groups of one evidence path, in order; image/zip copies exist only while the generator runs.

    Raises SourceError (one line) when an item cannot be opened at all.
    """
    from .reading import apply_hive_facts

    for unit in plan([path]):
        if unit.kind == "error":
            raise SourceError(f"{unit.evidence}: {unit.error}")
        with open_unit(unit) as (groups, _warnings, _volumes):
            for group in groups:
                apply_hive_facts(group)
                yield group


def iter_evidence(path: str | Path) -> Iterator[Artefact]:
    """Every BITS artefact (store files and their ESE logs/checkpoint/journal companions) under `path`."""
    for group in iter_groups(path):
        yield from group.artefacts


def read_evidence(path: str | Path | list, jobs: int | None = None, progress=False) -> list[SourceResult]:
    """SourceResults of every store file in the evidence, in a fixed order.

    Raises SourceError when nothing could be read and something failed; partial failures are
    in `run_batch(...).failures`, which callers that must report them should use instead.
    """
    paths = path if isinstance(path, (list, tuple)) else [path]
    report = run_batch(paths, jobs=jobs, progress=progress)
    if report.failures and not report.results:
        extra = f" (+{len(report.failures) - 1} more)" if len(report.failures) > 1 else ""
        raise SourceError(report.failures[0] + extra)
    return report.results
