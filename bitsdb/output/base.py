"""The writer interface and the JSON shape of a record (shared by every writer).

A record reaches the output whole or not at all: each writer formats one record into a
buffer and hands its text to the stream in one call. A record that cannot be written
(the caller reports it) leaves nothing behind, and an interrupted run never ends on half
a record.
"""

from __future__ import annotations

import io
from typing import IO, Any, Callable

from ..model import Job, JobFile


def record_type_of(job: Job) -> str:
    """`log_job` for a job only the event logs know, else `job`."""
    return "log_job" if job.history is not None and job.history.log_only else "job"


def _judged(record: dict[str, Any], verdict) -> dict[str, Any]:
    """`verdict` (without its hits) and `findings` (the hits: its evidence) beside the record."""
    if verdict is not None:
        summary = verdict.to_dict()
        record["findings"] = summary.pop("hits")
        for key in ("record_type", "subject"):
            summary.pop(key, None)
        record["verdict"] = summary
    return record


def job_record(job: Job, verdict=None) -> dict[str, Any]:
    return _judged({"record_type": record_type_of(job), **job.to_dict()}, verdict)


def orphan_record(jf: JobFile) -> dict[str, Any]:
    return {"record_type": "orphan_file", **jf.to_dict()}


def other_record(record_type: str, record, verdict=None) -> dict[str, Any]:
    return _judged({"record_type": record_type, **record.to_dict()}, verdict)


class WholeRecords:
    """`self.stream` is the record being formatted; `self.out` receives finished records only."""

    def __init__(self, stream: IO[str]) -> None:
        self.out = stream
        self.stream = io.StringIO()
        self.records = 0                     # records handed to `out`

    def _whole(self, write: Callable[..., None], *args: Any) -> None:
        """Run `write` into the buffer, then give `out` its text in one call (nothing if `write` fails)."""
        try:
            write(*args)
            text = self.stream.getvalue()
        finally:
            self.stream.seek(0)
            self.stream.truncate()
        if text:
            self.out.write(text)

    def _record(self, write: Callable[..., None], *args: Any) -> None:
        self._whole(write, *args)
        self.records += 1

    def close(self) -> None:
        self.out.flush()


class RecordWriter(WholeRecords):
    """Subclasses format into `self.stream` in `_job`, `_orphan`, `_other` (and `_begin`, `_end`)."""

    def __init__(self, stream: IO[str], rules=None) -> None:
        super().__init__(stream)
        self.rules = rules                   # the rules engine (a RuleSet), when verdicts were asked for
        self.as_of: int | None = None        # FILETIME time-based rules count to (set per source)
        self._last: tuple[Any, Any] = (None, None)

    def verdict(self, job: Job):
        """The job's verdict, as `bitsdb scan` gives it (None when verdicts were not asked for)."""
        if self.rules is None:
            return None
        if self._last[0] is not job:         # writers ask more than once per job
            self._last = (job, self.rules.assess(job, self.as_of))
        return self._last[1]

    def verdict_of_record(self, record_type: str, record):
        """The verdict on a record that is not a job (None when not asked for or no rule covers it)."""
        return None if self.rules is None else self.rules.assess_record(record_type, record, self.as_of)

    def findings(self, job: Job) -> list | None:
        """The rule hits behind the job's verdict (None when verdicts were not asked for)."""
        verdict = self.verdict(job)
        return None if verdict is None else verdict.hits

    def tags(self, job: Job) -> list[str]:
        """Rule ids of the job's findings: what timeline formats put in their tag fields."""
        return sorted({f.rule_id for f in self.findings(job) or []})

    def begin_source(self, path: str, kind: str, job_count: int, orphan_count: int) -> None:
        """Called before a source's records; only the table writer shows it."""
        self._whole(self._begin, path, kind, job_count, orphan_count)

    def write_job(self, job: Job) -> None:
        self._record(self._job, job)

    def write_orphan(self, jf: JobFile) -> None:
        self._record(self._orphan, jf)

    def write_record(self, record_type: str, record, verdict=None) -> None:
        """A record that is not a job: `process`, `log_event` or `service` (docs/EVENTLOGS.md)."""
        self._record(self._other, record_type, record, verdict)

    def close(self) -> None:
        self._whole(self._end)
        super().close()

    def _begin(self, path: str, kind: str, job_count: int, orphan_count: int) -> None:
        pass

    def _job(self, job: Job) -> None:
        raise NotImplementedError

    def _orphan(self, jf: JobFile) -> None:
        raise NotImplementedError

    def _other(self, record_type: str, record, verdict) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        pass


class EventWriter(RecordWriter):
    """Base of the timeline formats: each job is expanded into events (a job's events are one record)."""

    def _job(self, job: Job) -> None:
        from ..timeline.jobs import EVENT_KINDS, expand_job

        tags = self.tags(job)
        log_only = job.history is not None and job.history.log_only
        events = [] if log_only else expand_job(job, tags)     # a log-only job's times are its log events
        if job.history is not None:
            from ..timeline.logs import expand_history

            events += expand_history(job, tags)
            events.sort(key=lambda e: (e.filetime, e.record is not None,
                                       EVENT_KINDS.index(e.kind) if e.kind in EVENT_KINDS else 0))
        for event in events:
            self.write_event(event)

    def _other(self, record_type: str, record, verdict) -> None:
        from ..timeline.logs import expand_record

        tags = sorted({f.rule_id for f in (verdict.hits if verdict else [])})
        for event in expand_record(record_type, record):
            event.tags = list(tags)
            self.write_event(event)

    def _orphan(self, jf: JobFile) -> None:
        from ..timeline.jobs import expand_job

        holder = Job(job_id=None, display_name="(orphan file, no job references it)", files=[jf],
                     provenance=jf.provenance)
        for event in expand_job(holder):
            self.write_event(event)

    def write_event(self, event) -> None:
        raise NotImplementedError
