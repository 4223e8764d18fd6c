"""JSON Lines (one object per job, files nested) and a JSON array of the same objects."""

from __future__ import annotations

import json
from typing import Any

from .base import RecordWriter, job_record, orphan_record, other_record


#: One encoder for every line (json.dumps with options builds a new one per call). Records
#: are fresh trees from to_dict, never circular, so the circular-reference check is skipped.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def dumps(obj: Any) -> str:
    return _COMPACT.encode(obj)


class JsonLinesWriter(RecordWriter):
    def write_job(self, job):
        self.stream.write(dumps(job_record(job, self.findings(job))) + "\n")

    def write_orphan(self, jf):
        self.stream.write(dumps(orphan_record(jf)) + "\n")

    def write_record(self, record_type, record, findings=None):
        self.stream.write(dumps(other_record(record_type, record, findings)) + "\n")


class JsonArrayWriter(RecordWriter):
    """Streams the array so memory does not grow with the number of records."""

    def __init__(self, stream, findings_for=None):
        super().__init__(stream, findings_for)
        self._count = 0

    def _emit(self, record):
        self.stream.write(("[\n" if self._count == 0 else ",\n") + json.dumps(record, ensure_ascii=False, indent=2))
        self._count += 1

    def write_job(self, job):
        self._emit(job_record(job, self.findings(job)))

    def write_orphan(self, jf):
        self._emit(orphan_record(jf))

    def write_record(self, record_type, record, findings=None):
        self._emit(other_record(record_type, record, findings))

    def close(self):
        self.stream.write("[]\n" if self._count == 0 else "\n]\n")
        super().close()
