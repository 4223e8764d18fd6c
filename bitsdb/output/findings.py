"""Writers of verdicts (`bitsdb scan`): one record per job in JSON Lines, CSV or a table.

JSON Lines keeps everything (`Verdict.to_dict()`: severity, confidence, ordered reasons,
the rule hits as evidence, the allow-list decision, the job's identity and provenance); CSV
has one row per job; the table one line per job with its top reasons. Text from the
evidence is printed with control characters escaped, so a crafted job name cannot forge
lines of output.
"""

from __future__ import annotations

import csv
import json
import re
from typing import IO

FINDING_FORMATS = ("table", "jsonl", "csv")
CSV_COLUMNS = ("severity", "confidence", "host", "job_id", "job_name", "owner_sid", "creator_image", "reasons",
               "rules", "attack", "allowlist_entry", "confidence_reasons", "partial", "recovered", "source_path",
               "table", "record_index", "offset", "state_file", "as_of")
TABLE_REASONS = 3
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text: object) -> str:
    """One printable line: control and bidi characters shown as \\xNN / \\uNNNN escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", "" if text is None else str(text))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


class VerdictWriter:
    def __init__(self, stream: IO[str], fmt: str) -> None:
        self.stream, self.fmt = stream, fmt
        self.csv = None
        if fmt == "csv":
            self.csv = csv.writer(stream, lineterminator="\n")
            self.csv.writerow(CSV_COLUMNS)
        elif fmt == "table":
            stream.write(f"{'SEVERITY':<9} {'CONF':<6} {'HOST':<16} {'JOB':<8} {'NAME':<30} REASONS\n")

    def write(self, verdict) -> None:
        if self.fmt == "jsonl":
            self.stream.write(json.dumps(verdict.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
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
        self.stream.write(f"{verdict.severity:<9} {verdict.confidence:<6} {host:<16} "
                          f"{(subject.get('job_id') or '?')[:8]:<8} {name:<30} {reasons}\n")
