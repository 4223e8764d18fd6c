"""JSON Lines (one object per job, files nested) and a JSON array of the same objects."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from .base import RecordWriter, job_record, orphan_record, other_record


#: One encoder for every line (json.dumps with options builds a new one per call). Records
#: are fresh trees from to_dict, never circular, so the circular-reference check is skipped.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_ORJSON = orjson.dumps
#: Characters JSON leaves raw that line-splitting readers (Python's str.splitlines, older
#: JavaScript) take as line ends: escaped, so one record is always one line.
_LINE_ENDS = re.compile("[\x85\u2028\u2029]")


def _escape_line_end(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def one_line_json(text: str) -> str:
    if text.isascii():                      # O(1) in CPython: most records never reach the search
        return text
    return _LINE_ENDS.sub(_escape_line_end, text) if _LINE_ENDS.search(text) else text


def _compact(obj: Any) -> str:
    """orjson writes the same compact text as _COMPACT (same escapes, UTF-8 as it is) ten times
    faster; what it refuses (integers beyond 64 bits, non-text keys) goes to the standard encoder.
    Floats (no decoded field is one) may differ in exponent spelling (1e-06 vs 1e-6), and NaN is null."""
    try:
        return _ORJSON(obj).decode()
    except TypeError:
        return _COMPACT.encode(obj)


def dumps(obj: Any, **options: Any) -> str:
    """JSON text of a record: UTF-8 text as it is, every line end escaped (the writers' one encoder)."""
    return one_line_json(_compact(obj) if not options else json.dumps(obj, ensure_ascii=False, **options))


class JsonLinesWriter(RecordWriter):
    def _job(self, job):
        self.stream.write(dumps(job_record(job, self.verdict(job))) + "\n")

    def _orphan(self, jf):
        self.stream.write(dumps(orphan_record(jf)) + "\n")

    def _other(self, record_type, record, verdict):
        self.stream.write(dumps(other_record(record_type, record, verdict)) + "\n")


class JsonArrayWriter(RecordWriter):
    """Streams the array so memory does not grow with the number of records."""

    def _emit(self, record):
        self.stream.write(("[\n" if self.records == 0 else ",\n") + dumps(record, indent=2))

    def _job(self, job):
        self._emit(job_record(job, self.verdict(job)))

    def _orphan(self, jf):
        self._emit(orphan_record(jf))

    def _other(self, record_type, record, verdict):
        self._emit(other_record(record_type, record, verdict))

    def _end(self):
        self.stream.write("[]\n" if self.records == 0 else "\n]\n")
