"""Labelled rule cases: job descriptions built into real blobs, decoded again, then evaluated.

A case file is YAML: `cases: [{id, note, job: {...}, files: [{...}], provenance: {...},
expect: {rule_id: severity, ...}}]`. Fields not given take the values of an ordinary,
benign download job (`JOB_DEFAULTS`, `FILE_DEFAULTS`), so a case states only what it is
about. Going through `encode_job` / `decode_job_blob` means rules run on decoded data,
exactly as they do on evidence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..decode import decode_file_blob, decode_job_blob, encode_file, encode_job
from ..model import (
    CustomHeaders,
    Job,
    JobFile,
    JobPriority,
    JobState,
    JobType,
    Provenance,
    ProxyUsage,
    SecurityInfo,
)
from ..timeutil import iso_to_filetime
from .engine import RuleSet

JOB_DEFAULTS: dict[str, Any] = {
    "display_name": "Contoso update", "description": "", "type": "DOWNLOAD", "state": "TRANSFERRED",
    "priority": "NORMAL", "notify_program": "", "notify_parameters": "", "notify_flags": 3,
    "owner_sid": "S-1-5-21-1111111111-2222222222-3333333333-1001", "integrity_rid": 0x2000,
    "creator_image": r"C:\Program Files\Contoso\Updater\ContosoUpdate.exe", "min_retry_delay": 600,
    "no_progress_timeout": 1209600, "max_download_time": 7776000, "creation_time": "2023-03-01T10:00:00Z",
    "modification_time": "2023-03-01T10:05:00Z", "completion_time": "2023-03-01T10:05:00Z",
    "expiration_time": "2023-05-30T10:05:00Z", "proxy_usage": "PRECONFIG", "security_flags": 0,
    "custom_headers": False, "http_method": "GET", "proxy_list": None, "proxy_bypass": None,
}
FILE_DEFAULTS: dict[str, Any] = {
    "local_name": r"C:\Users\bob\Documents\report.pdf",
    "remote_name": "https://downloads.contoso.com/files/report.pdf",
    "temp_name": r"C:\Users\bob\Documents\BIT1234.tmp", "bytes_total": 1000, "bytes_transferred": 1000,
    "drive": "C:\\", "volume": "\\\\?\\Volume{08542f90-0000-0000-0000-501f00000000}\\",
}
ENUMS = {"type": JobType, "state": JobState, "priority": JobPriority, "proxy_usage": ProxyUsage}
TIMES = ("creation_time", "modification_time", "completion_time", "expiration_time")


@dataclass
class Case:
    id: str
    job: Job
    expect: dict[str, str]
    note: str = ""
    source: str = ""


def _guid(seed: str, index: int) -> str:
    import hashlib
    import uuid
    return str(uuid.UUID(bytes=hashlib.md5(f"{seed}/{index}".encode()).digest()))


def build_job(spec: dict[str, Any], file_specs: list[dict[str, Any]], seed: str) -> Job:
    """A Job described by `spec` (over JOB_DEFAULTS), round-tripped through the real blob codecs."""
    values = {**JOB_DEFAULTS, **spec}
    unknown = set(values) - set(JOB_DEFAULTS)
    if unknown:
        raise ValueError(f"case {seed}: unknown job field(s) {sorted(unknown)}")
    job = Job(job_id=_guid(seed, 0))
    for name, value in values.items():
        if name in ENUMS:
            value = ENUMS[name][value] if isinstance(value, str) else value
        elif name in TIMES:
            value = iso_to_filetime(value) if value else 0
        elif name == "integrity_rid":
            job.security = SecurityInfo(owner_integrity_rid=value, owner_integrity_level=None, token_unknown=[])
            continue
        elif name == "custom_headers":
            blob = bytes(64)
            job.custom_headers = CustomHeaders(plain_length=40, blob_length=len(blob), dpapi_blob=blob) \
                if value else None
            continue
        setattr(job, name, value)
    job.inactivity_base_time = job.modification_time
    job.modification_time_2 = job.modification_time
    files = []
    for index, fspec in enumerate(file_specs, start=1):
        fvalues = {**FILE_DEFAULTS, **fspec}
        bad = set(fvalues) - set(FILE_DEFAULTS) - {"layout"}
        if bad:
            raise ValueError(f"case {seed}: unknown file field(s) {sorted(bad)}")
        jf = JobFile(file_id=_guid(seed, index), **fvalues)
        layout = "upload" if job.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY) else "download"
        files.append(decode_file_blob(encode_file(jf), jf.file_id, layout_hint=layout))
    job.file_ids = [f.file_id for f in files]
    decoded = decode_job_blob(encode_job(job))
    decoded.files = files
    return decoded


def load_cases(path: str | Path) -> list[Case]:
    """Cases of one YAML file, or of every .yaml file in a folder (sorted)."""
    path = Path(path)
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    cases = []
    for file in files:
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for raw in document.get("cases", []):
            case_id = raw["id"]
            file_specs = raw.get("files", [{}])
            job = build_job(raw.get("job") or {}, file_specs, case_id)
            prov = raw.get("provenance") or {}
            job.provenance = Provenance(source_path=f"corpus:{file.name}#{case_id}", **prov)
            cases.append(Case(id=case_id, job=job, expect=dict(raw.get("expect") or {}),
                              note=raw.get("note", ""), source=file.name))
    return cases


@dataclass
class Score:
    """Per-rule counts over a corpus (a rule is 'fired' on a case when it yields a finding)."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    wrong_severity: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        fired = self.true_positive + self.false_positive
        return 1.0 if fired == 0 else self.true_positive / fired

    @property
    def recall(self) -> float:
        wanted = self.true_positive + self.false_negative
        return 1.0 if wanted == 0 else self.true_positive / wanted


def score(cases: list[Case], ruleset: RuleSet) -> tuple[dict[str, Score], list[str]]:
    """Per-rule scores and one line per disagreement (missing, unexpected or wrong severity)."""
    scores: dict[str, Score] = defaultdict(Score)
    for rule in ruleset.rules:
        scores[rule.id]
    problems = []
    for case in cases:
        fired = {f.rule_id: f for f in ruleset.evaluate(case.job)}
        for rule_id, severity in case.expect.items():
            finding = fired.get(rule_id)
            if finding is None:
                scores[rule_id].false_negative += 1
                problems.append(f"{case.source}:{case.id}: {rule_id} expected ({severity}) but did not fire")
                continue
            scores[rule_id].true_positive += 1
            if finding.severity != severity:
                scores[rule_id].wrong_severity.append(case.id)
                problems.append(f"{case.source}:{case.id}: {rule_id} is {finding.severity}, expected {severity}"
                                f" ({finding.explanation})")
        for rule_id, finding in fired.items():
            if rule_id not in case.expect:
                scores[rule_id].false_positive += 1
                problems.append(f"{case.source}:{case.id}: {rule_id} fired unexpectedly ({finding.severity}): "
                                f"{finding.explanation}")
    return dict(scores), problems
