"""The writer interface and the JSON shape of a record (shared by every writer)."""

from __future__ import annotations

from typing import IO, Any

from ..model import Job, JobFile


def job_record(job: Job) -> dict[str, Any]:
    return {"record_type": "job", **job.to_dict()}


def orphan_record(jf: JobFile) -> dict[str, Any]:
    return {"record_type": "orphan_file", **jf.to_dict()}


class RecordWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def begin_source(self, path: str, kind: str, job_count: int, orphan_count: int) -> None:
        """Called before a source's records; only the table writer shows it."""

    def write_job(self, job: Job) -> None:
        raise NotImplementedError

    def write_orphan(self, jf: JobFile) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()
