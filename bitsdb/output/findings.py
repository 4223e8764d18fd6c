"""Writers of rule findings (`bitsdb scan`): JSON Lines, CSV and a table."""

from __future__ import annotations

from typing import IO

from ..text import one_line
from .base import WholeRecords
from .csvout import CsvRows
from .jsonout import dumps

FINDING_FORMATS = ("table", "jsonl", "csv")
CSV_COLUMNS = ("severity", "rule_id", "title", "attack", "job_id", "job_name", "explanation", "allowlisted",
               "partial", "source_path", "table", "record_index", "offset", "recovered", "state_file")


class FindingWriter(WholeRecords):
    def __init__(self, stream: IO[str], fmt: str) -> None:
        super().__init__(stream)
        self.fmt = fmt
        self.csv = None
        if fmt == "csv":
            self.csv = CsvRows(self.stream)
            self._whole(self.csv.writerow, CSV_COLUMNS)
        elif fmt == "table":
            self._whole(self.stream.write, f"{'SEVERITY':<9} {'RULE':<27} {'JOB':<10} {'NAME':<28} EXPLANATION\n")

    def write(self, finding) -> None:
        self._record(self._finding, finding)

    def _finding(self, finding) -> None:
        if self.fmt == "jsonl":
            self.stream.write(dumps(finding.to_dict(), sort_keys=True) + "\n")
            return
        prov = finding.provenance or {}
        if self.csv is not None:
            row = {**finding.to_dict(), **{k: prov.get(k) for k in ("source_path", "table", "record_index",
                                                                     "offset", "recovered", "state_file")}}
            row["attack"] = ";".join(finding.attack)
            self.csv.writerow(["" if row.get(c) is None else row.get(c) for c in CSV_COLUMNS])
            return
        name = one_line(finding.job_name or "")[:28]
        self.stream.write(one_line(f"{finding.severity:<9} {finding.rule_id:<27} {(finding.job_id or '?')[:8]:<10} "
                                   f"{name:<28} {finding.explanation}") + "\n")
