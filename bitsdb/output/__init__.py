"""One writer per output format. Writers take plain records and never look at bytes."""

from __future__ import annotations

from typing import IO

from .base import RecordWriter

FORMATS = ("jsonl", "json", "csv", "table")


def make_writer(name: str, stream: IO[str]) -> RecordWriter:
    if name == "jsonl":
        from .jsonout import JsonLinesWriter
        return JsonLinesWriter(stream)
    if name == "json":
        from .jsonout import JsonArrayWriter
        return JsonArrayWriter(stream)
    if name == "csv":
        from .csvout import CsvWriter
        return CsvWriter(stream)
    if name == "table":
        from .table import TableWriter
        return TableWriter(stream)
    raise ValueError(f"unknown format {name}")
