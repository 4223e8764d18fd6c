"""Timesketch import files: JSONL and CSV with message, datetime, timestamp_desc.

`datetime` carries microseconds (what Timesketch and its importer keep) and the same
instant as `timestamp` (µs since 1970); the full 100-ns FILETIME is kept in `filetime`.
"""

from __future__ import annotations


from ..timeutil import filetime_to_datetime
from .base import EventWriter
from .csvout import CsvRows, raw_strings_cell
from .flatten import flatten
from .jsonout import dumps

FILETIME_UNIX_EPOCH = 116444736000000000


def event_time_fields(filetime: int) -> dict:
    when = filetime_to_datetime(filetime)
    return {"datetime": when.isoformat(timespec="microseconds"),
            "timestamp": (filetime - FILETIME_UNIX_EPOCH) // 10, "filetime": filetime}


def timesketch_record(event) -> dict:
    record = {"message": event.message, **event_time_fields(event.filetime),
              "timestamp_desc": event.kind.timestamp_desc, "data_type": event.kind.data_type,
              "tag": list(event.tags)}
    job = event.job.to_dict()
    job.pop("history", None)                 # each log event is an event of its own, not repeated here
    job.pop("files", None) if event.file is not None else None
    if event.record is not None:
        for key, value in flatten(event.record.to_dict(), "log").items():
            record.setdefault(key, value)
    for key, value in flatten(job).items():
        record.setdefault(key, value)
    if event.file is not None:
        for key, value in flatten(event.file.to_dict(), "file").items():
            record.setdefault(key, value)
    return record


class TimesketchJsonlWriter(EventWriter):
    def write_event(self, event):
        self.stream.write(dumps(timesketch_record(event)) + "\n")


#: The CSV keeps a fixed set of columns (a CSV has one header); JSONL carries every field.
CSV_COLUMNS = ("message", "datetime", "timestamp_desc", "timestamp", "data_type", "tag", "filetime", "job_id",
               "display_name", "type", "state", "priority", "owner_sid", "owner_name", "creator_image",
               "package_family_name", "notify_program", "notify_parameters", "file_remote_name", "file_local_name",
               "file_bytes_transferred", "file_bytes_total", "partial", "provenance_source_path",
               "provenance_recovered", "provenance_recovered_from", "provenance_offset",
               "provenance_source_sha256", "raw_strings")


class TimesketchCsvWriter(EventWriter):
    def __init__(self, stream, rules=None):
        super().__init__(stream, rules)
        self._csv = CsvRows(self.stream)
        self._whole(self._csv.writerow, CSV_COLUMNS)

    def write_event(self, event):
        record = timesketch_record(event)
        jf = event.shown_file
        if event.file is None and jf is not None:
            for key, value in flatten(jf.to_dict(), "file").items():
                record.setdefault(key, value)
        record["tag"] = ",".join(record["tag"]) or "-"
        record["raw_strings"] = raw_strings_cell(event.job, jf)
        self._csv.writerow(["" if record.get(c) is None else record.get(c) for c in CSV_COLUMNS])
