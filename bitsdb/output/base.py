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


def job_record(job: Job, findings: list | None = None) -> dict[str, Any]:
    record = {"record_type": record_type_of(job), **job.to_dict()}
    if findings is not None:
        record["findings"] = [f.to_dict() for f in findings]
    return record


def orphan_record(jf: JobFile) -> dict[str, Any]:
    return {"record_type": "orphan_file", **jf.to_dict()}


def other_record(record_type: str, record, findings: list | None = None) -> dict[str, Any]:
    out = {"record_type": record_type, **record.to_dict()}
    if findings is not None:
        out["findings"] = [f.to_dict() for f in findings]
    return out


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

    def __init__(self, stream: IO[str], findings_for: Callable[[Job], list] | None = None) -> None:
        super().__init__(stream)
        self.findings_for = findings_for     # the rules engine, when findings were asked for

    def findings(self, job: Job) -> list | None:
        """The job's findings (None when findings were not asked for)."""
        return self.findings_for(job) if self.findings_for else None

    def findings_of_record(self, record_type: str, record) -> list | None:
        """Findings of a record that is not a job (None when findings were not asked for or the
        rules have none for it)."""
        evaluate = getattr(self.findings_for, "__self__", None)
        evaluate = getattr(evaluate, "evaluate_record", None)
        return evaluate(record_type, record) if evaluate is not None else None

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

    def write_record(self, record_type: str, record, findings: list | None = None) -> None:
        """A record that is not a job: `process`, `log_event` or `service` (docs/EVENTLOGS.md)."""
        self._record(self._other, record_type, record, findings)

    def close(self) -> None:
        self._whole(self._end)
        super().close()

    def _begin(self, path: str, kind: str, job_count: int, orphan_count: int) -> None:
        pass

    def _job(self, job: Job) -> None:
        raise NotImplementedError

    def _orphan(self, jf: JobFile) -> None:
        raise NotImplementedError

    def _other(self, record_type: str, record, findings: list | None) -> None:
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

    def _other(self, record_type: str, record, findings: list | None) -> None:
        from ..timeline.logs import expand_record

        tags = sorted({f.rule_id for f in findings or []})
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
