"""One writer per output format. Writers take plain records and never look at bytes."""

from __future__ import annotations

from typing import IO

from .base import RecordWriter

_WRITERS = {
    ("record", "jsonl"): ("jsonout", "JsonLinesWriter"),
    ("record", "json"): ("jsonout", "JsonArrayWriter"),
    ("record", "csv"): ("csvout", "CsvWriter"),
    ("record", "table"): ("table", "TableWriter"),
    ("timeline", "timesketch"): ("timesketch", "TimesketchJsonlWriter"),
    ("timeline", "timesketch-csv"): ("timesketch", "TimesketchCsvWriter"),
    ("timeline", "bodyfile"): ("bodyfile", "BodyfileWriter"),
    ("timeline", "ecs"): ("ecs", "EcsWriter"),
    ("timeline", "csv"): ("timeline_csv", "TimelineCsvWriter"),
}
#: One record per job (`bitsdb parse`).
RECORD_FORMATS = tuple(name for kind, name in _WRITERS if kind == "record")
#: One record per event (`bitsdb timeline`).
TIMELINE_FORMATS = tuple(name for kind, name in _WRITERS if kind == "timeline")


def make_writer(name: str, stream: IO[str], *, timeline: bool = False,
                rules=None) -> RecordWriter:
    """The writer for a format name; `timeline` picks the event formats (`bitsdb timeline`); with
    `rules` (a RuleSet), each job's verdict and its rule hits go with it."""
    import importlib

    key = ("timeline" if timeline else "record", name)
    if key not in _WRITERS:
        raise ValueError(f"unknown format {name}")
    module, cls = _WRITERS[key]
    writer_type = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return writer_type(stream, rules=rules)
