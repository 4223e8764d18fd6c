"""Writers of verdicts (`bitsdb scan`): one record per job in JSON Lines, CSV or a table.

JSON Lines keeps everything (`Verdict.to_dict()`: severity, confidence, ordered reasons,
the rule hits as evidence, the allow-list decision, the job's identity and provenance); CSV
has one row per job; the table one line per job with its top reasons. Text from the
evidence is printed with control characters escaped, so a crafted job name cannot forge
lines of output.
"""

from __future__ import annotations

from typing import IO

from ..text import one_line
from .base import WholeRecords
from .csvout import CsvRows
from .jsonout import dumps

FINDING_FORMATS = ("table", "jsonl", "csv")
CSV_COLUMNS = ("severity", "confidence", "host", "job_id", "job_name", "owner_sid", "creator_image", "reasons",
               "rules", "attack", "allowlist_entry", "confidence_reasons", "partial", "recovered", "source_path",
               "table", "record_index", "offset", "state_file", "as_of")
TABLE_REASONS = 3


def plain(text: object) -> str:
    """One printable line (bitsdb.text.one_line: control, bidi and format characters escaped)."""
    return one_line("" if text is None else str(text))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


class VerdictWriter(WholeRecords):
    def __init__(self, stream: IO[str], fmt: str) -> None:
        super().__init__(stream)
        self.fmt = fmt
        self.csv = None
        if fmt == "csv":
            self.csv = CsvRows(self.stream)
            self._whole(self.csv.writerow, CSV_COLUMNS)
        elif fmt == "table":
            self._whole(self.stream.write,
                        f"{'SEVERITY':<9} {'CONF':<6} {'HOST':<16} {'JOB':<8} {'NAME':<30} REASONS\n")

    def write(self, verdict) -> None:
        self._record(self._verdict, verdict)

    def _verdict(self, verdict) -> None:
        if self.fmt == "jsonl":
            self.stream.write(dumps(verdict.to_dict(), sort_keys=True) + "\n")
            return
        subject = verdict.subject
        prov = subject.get("provenance") or {}
        if self.csv is not None:
            attack = sorted({a for h in verdict.hits for a in h.attack})
            row = {
                "severity": verdict.severity, "confidence": verdict.confidence, "host": subject.get("host"),
                "job_id": subject.get("job_id"), "job_name": subject.get("job_name"),
                "owner_sid": subject.get("owner_sid"), "creator_image": subject.get("creator_image"),
                "reasons": " | ".join(r.text for r in verdict.reasons),
                "rules": ";".join(f"{h.severity}:{h.rule_id}" for h in verdict.hits), "attack": ";".join(attack),
                "allowlist_entry": (verdict.allowlist or {}).get("entry"),
                "confidence_reasons": " | ".join(verdict.confidence_reasons), "partial": subject.get("partial"),
                "recovered": subject.get("recovered"), "as_of": verdict.as_of,
                **{k: prov.get(k) for k in ("source_path", "table", "record_index", "offset", "state_file")},
            }
            self.csv.writerow(["" if row.get(c) is None else row.get(c) for c in CSV_COLUMNS])
            return
        host = _clip(plain(subject.get("host") or "-"), 16)
        name = _clip(plain(subject.get("job_name") or ""), 30)
        reasons = " | ".join(plain(r) for r in verdict.top_reasons(TABLE_REASONS))
        job_id = plain(subject.get("job_id") or "?")[:8]
        self.stream.write(f"{verdict.severity:<9} {verdict.confidence:<6} {host:<16} {job_id:<8} {name:<30} "
                          f"{reasons}\n")
