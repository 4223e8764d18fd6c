"""The writer interface and the JSON shape of a record (shared by every writer)."""

from __future__ import annotations

from typing import IO, Any, Callable

from ..model import Job, JobFile


def job_record(job: Job, findings: list | None = None) -> dict[str, Any]:
    record = {"record_type": "job", **job.to_dict()}
    if findings is not None:
        record["findings"] = [f.to_dict() for f in findings]
    return record


def orphan_record(jf: JobFile) -> dict[str, Any]:
    return {"record_type": "orphan_file", **jf.to_dict()}


class RecordWriter:
    def __init__(self, stream: IO[str], findings_for: Callable[[Job], list] | None = None) -> None:
        self.stream = stream
        self.findings_for = findings_for     # the rules engine, when findings were asked for

    def findings(self, job: Job) -> list | None:
        """The job's findings (None when findings were not asked for)."""
        return self.findings_for(job) if self.findings_for else None

    def tags(self, job: Job) -> list[str]:
        """Rule ids of the job's findings: what timeline formats put in their tag fields."""
        return sorted({f.rule_id for f in self.findings(job) or []})

    def begin_source(self, path: str, kind: str, job_count: int, orphan_count: int) -> None:
        """Called before a source's records; only the table writer shows it."""

    def write_job(self, job: Job) -> None:
        raise NotImplementedError

    def write_orphan(self, jf: JobFile) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()


class EventWriter(RecordWriter):
    """Base of the timeline formats: each job is expanded into events, written one by one."""

    def write_job(self, job: Job) -> None:
        from ..timeline.jobs import expand_job

        for event in expand_job(job, self.tags(job)):
            self.write_event(event)

    def write_orphan(self, jf: JobFile) -> None:
        from ..timeline.jobs import expand_job

        holder = Job(job_id=None, display_name="(orphan file, no job references it)", files=[jf],
                     provenance=jf.provenance)
        for event in expand_job(holder):
            self.write_event(event)

    def write_event(self, event) -> None:
        raise NotImplementedError
