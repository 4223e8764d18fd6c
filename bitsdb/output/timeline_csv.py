"""Long-form timeline CSV for Timeline Explorer: Timestamp + TimestampDescription per row."""

from __future__ import annotations


from ..timeutil import filetime_to_ez
from .base import EventWriter
from .csvout import (
    FILE_COLUMNS,
    JOB_COLUMNS,
    RAW_STRINGS_COLUMN,
    SOURCE_COLUMNS,
    CsvRows,
    raw_strings_cell,
    source_cells,
)

COLUMNS = ["Timestamp", "TimestampDescription", "Message", "DataType", "Tags", *SOURCE_COLUMNS[1:],
           *JOB_COLUMNS, *(c for c in FILE_COLUMNS if c != "FileIndex"), RAW_STRINGS_COLUMN]


class TimelineCsvWriter(EventWriter):
    def __init__(self, stream, rules=None):
        super().__init__(stream, rules)
        self._csv = CsvRows(self.stream)
        self._whole(self._csv.writerow, COLUMNS)

    def write_event(self, event):
        job = event.job
        jf = event.shown_file
        files = [fn(jf) if jf is not None else "" for name, fn in FILE_COLUMNS.items() if fn is not None]
        self._csv.writerow([filetime_to_ez(event.filetime), event.kind.timestamp_desc, event.message,
                            event.kind.data_type, ",".join(event.tags),
                            *source_cells(job.provenance), *(fn(job) for fn in JOB_COLUMNS.values()), *files,
                            raw_strings_cell(job, jf)])
