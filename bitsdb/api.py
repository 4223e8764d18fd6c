"""The public entry points; the CLI is one of their callers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .model import Job
from .sources.result import SourceError
from .stores import read

__all__ = ["parse", "read"]


def parse(path: str | Path, *, recover: bool = False) -> Iterator[Job]:
    """Yield every job of one evidence item: a BITS file, a folder or collection, a zip or a
    disk image (+ recovered versions), and the event logs in it: database jobs carry their
    logged `history`, jobs only the logs know follow (`history.log_only`). Raises SourceError,
    after the jobs that could be read, when something could not be read."""
    from .evidence import iter_batch

    failures, logs, jobs = [], [], []
    for item in iter_batch([path], jobs=1, progress=False, recover=recover):
        for result in item.results:
            jobs.extend(result.jobs)          # held: a log read later may hold their history
        logs.extend(item.logs)
        failures.extend(item.failures)
    if logs:
        from .history import join

        picture = join(jobs, logs)
        jobs = picture.jobs + picture.log_jobs
    yield from jobs
    if failures:
        raise SourceError("; ".join(failures))
