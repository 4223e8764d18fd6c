"""Labelled rule cases: job descriptions built into real records, decoded again, then judged.

A case file is YAML: `cases: [{id, label, verdict, family, source, record, note, job: {...},
files: [{...}], provenance: {...}, expect: {...}, damage: {...}, as_of: TIME}]`.

* `label` benign | malicious; `verdict` is the highest acceptable severity of a benign case
  and the lowest acceptable one of a malicious case (a benign case is also never allowed
  at medium or above).
* `record` live (default) | legacy | recovered: how the record reaches the rules. live and
  recovered go through the ESE job/file blob codecs (`encode_job` / `decode_job_blob`);
  recovered is marked deleted; legacy goes through the legacy state-file record codec given
  to `load_cases` (the rules layer cannot import the writers), so it has no creator image
  and no HTTP method, as on disk.
* Fields not given take the values of an ordinary, benign download job (`JOB_DEFAULTS`,
  `FILE_DEFAULTS`), so a case states only what it is about. `files: []` is a job without
  files; `file_records: missing` keeps the file ids but not the file records (a recovered
  job whose Files rows are gone).
* `expect` (optional) maps rule ids to the severity each must have: the rule-level check.
* `damage: {overwritten_at: SECTION}` turns the case into a carved record overwritten from
  that section on (partial_reason as the carver writes it), to test what rules may believe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from ..decode import decode_file_blob, decode_job_blob, encode_file, encode_job
from ..model import (
    CustomHeaders,
    Job,
    JobFile,
    JobHistory,
    JobPriority,
    JobState,
    JobType,
    Provenance,
    ProxyUsage,
    SecurityInfo,
)
from ..timeutil import iso_to_filetime
from .engine import RuleSet
from .trust import SECTION_ORDER, section_ends
from .verdict import SEVERITIES, SEVERITY_RANK, Verdict

JOB_DEFAULTS: dict[str, Any] = {
    "display_name": "Contoso update", "description": "", "type": "DOWNLOAD", "state": "TRANSFERRED",
    "priority": "NORMAL", "notify_program": "", "notify_parameters": "", "notify_flags": 3,
    "owner_sid": "S-1-5-21-1111111111-2222222222-3333333333-1001", "integrity_rid": 0x2000,
    "creator_image": r"C:\Program Files\Contoso\Updater\ContosoUpdate.exe", "min_retry_delay": 600,
    "no_progress_timeout": 1209600, "max_download_time": 7776000, "creation_time": "2023-03-01T10:00:00Z",
    "modification_time": "2023-03-01T10:05:00Z", "completion_time": "2023-03-01T10:05:00Z",
    "expiration_time": "2023-05-30T10:05:00Z", "proxy_usage": "PRECONFIG", "security_flags": 0,
    "custom_headers": False, "http_method": "GET", "proxy_list": None, "proxy_bypass": None,
    "package_family_name": None, "application_id": None,
}
FILE_DEFAULTS: dict[str, Any] = {
    "local_name": r"C:\Users\bob\Documents\report.pdf",
    "remote_name": "https://downloads.contoso.com/files/report.pdf",
    "temp_name": r"C:\Users\bob\Documents\BIT1234.tmp", "bytes_total": 1000, "bytes_transferred": 1000,
    "drive": "C:\\", "volume": "\\\\?\\Volume{08542f90-0000-0000-0000-501f00000000}\\",
}
CASE_KEYS = ("id", "label", "verdict", "family", "source", "record", "note", "job", "files", "file_records",
             "history", "provenance", "expect", "damage", "as_of", "confidence")
LABELS = ("benign", "malicious")
RECORDS = ("live", "legacy", "recovered")
ENUMS = {"type": JobType, "state": JobState, "priority": JobPriority, "proxy_usage": ProxyUsage}
TIMES = ("creation_time", "modification_time", "completion_time", "expiration_time")
BENIGN_CEILING = "low"          # no benign case may reach medium, whatever its own label says

#: Turns an ESE-shaped Job into what the legacy state-file codec gives back (tests pass
#: `lambda j: decode_legacy_job(encode_legacy_job(j))`).
LegacyCodec = Callable[[Job], Job]


class CaseError(ValueError):
    """A case that cannot be built; the message names the file and the case."""


@dataclass
class Case:
    id: str
    job: Job
    label: str | None = None
    verdict: str | None = None
    expect: dict[str, str] = field(default_factory=dict)
    family: str = ""
    source: str = ""            # where the behaviour comes from (report, vendor doc)
    record: str = "live"
    note: str = ""
    file: str = ""              # the case file
    as_of: int | None = None
    confidence: str | None = None

    @property
    def ceiling(self) -> str | None:
        """Highest severity a benign case may get."""
        if self.label != "benign":
            return None
        allowed = self.verdict or BENIGN_CEILING
        return min(allowed, BENIGN_CEILING, key=SEVERITY_RANK.__getitem__)

    def problem(self, verdict: Verdict) -> str | None:
        """Why the verdict is wrong for this case, or None."""
        got = SEVERITY_RANK[verdict.severity]
        if self.label == "malicious" and self.verdict and got < SEVERITY_RANK[self.verdict]:
            return f"malicious case at {verdict.severity}, expected {self.verdict} or higher"
        if self.label == "benign" and got > SEVERITY_RANK[self.ceiling]:
            return f"benign case at {verdict.severity}, expected {self.ceiling} or lower"
        if self.confidence and verdict.confidence != self.confidence:
            return f"confidence {verdict.confidence}, expected {self.confidence}"
        return None


def _guid(seed: str, index: int) -> str:
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
        layout = "upload" if job.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY) else "download"
        fvalues.setdefault("layout", layout)
        jf = JobFile(file_id=_guid(seed, index), **fvalues)
        files.append(decode_file_blob(encode_file(jf), jf.file_id, layout_hint=layout))
    job.file_ids = [f.file_id for f in files]
    decoded = decode_job_blob(encode_job(job))
    decoded.files = files
    return decoded


def overwrite(job: Job, section: str) -> Job:
    """The job as the carver reports a copy overwritten from `section` on (FORMAT.md §9)."""
    if section not in SECTION_ORDER:
        raise ValueError(f"unknown section {section!r} (sections: {', '.join(SECTION_ORDER)})")
    ends = section_ends(job)
    index = SECTION_ORDER.index(section)
    cut = ends[SECTION_ORDER[index - 1]] + 2 if index else 2
    damaged = dataclasses.replace(job)
    damaged.partial = True
    damaged.partial_reason = (f"overwritten: another job record starts {cut} bytes after the marker; "
                              f"stopped at trailer: check failed during parsing (offset 0x{ends['trailer']:x})")
    return damaged


def _case(raw: dict[str, Any], file: Path, legacy_codec: LegacyCodec | None) -> Case:
    case_id = raw.get("id")
    if not isinstance(case_id, str) or not case_id:
        raise CaseError(f"{file}: a case needs an id")
    where = f"{file}: case {case_id}"
    unknown = set(raw) - set(CASE_KEYS)
    if unknown:
        raise CaseError(f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {', '.join(CASE_KEYS)})")
    label, verdict = raw.get("label"), raw.get("verdict")
    if label is not None and label not in LABELS:
        raise CaseError(f"{where}: label must be benign or malicious")
    if verdict is not None and verdict not in SEVERITIES:
        raise CaseError(f"{where}: verdict must be one of {', '.join(SEVERITIES)}")
    if label is None and "expect" not in raw:
        raise CaseError(f"{where}: a case needs a label and verdict, or rule expectations")
    record = raw.get("record", "live")
    if record not in RECORDS:
        raise CaseError(f"{where}: record must be one of {', '.join(RECORDS)}")
    try:
        job = build_job(raw.get("job") or {}, raw.get("files", [{}]), case_id)
    except (ValueError, KeyError, TypeError) as exc:
        raise CaseError(f"{where}: {exc}") from None
    if raw.get("file_records") == "missing":
        job.files = []
    if raw.get("history") is not None:          # what event logs add (docs/EVENTLOGS.md), in its to_dict shape
        try:
            job.history = JobHistory.from_dict(raw["history"])
        except ValueError as exc:
            raise CaseError(f"{where}: history: {exc}") from None
    prov = dict(raw.get("provenance") or {})
    if record == "legacy":
        if legacy_codec is None:
            raise CaseError(f"{where}: a legacy case needs the legacy record codec (load_cases(legacy_codec=...))")
        job = legacy_codec(dataclasses.replace(job, creator_image=None, http_method=None, aux_string=None,
                                               marker=None))
        if raw.get("file_records") == "missing":
            job.files = []
        prov.setdefault("source_kind", "legacy_state_file")
        prov.setdefault("state_file", "current")
    elif record == "recovered":
        prov.setdefault("recovered", True)
        prov.setdefault("recovered_from", "db page")
    if raw.get("damage"):
        job = overwrite(job, str((raw["damage"] or {}).get("overwritten_at", "")))
    job.provenance = Provenance(source_path=f"corpus:{file.name}#{case_id}", **prov)
    expect = raw.get("expect") or {}
    if isinstance(expect, list):
        expect = {rule_id: None for rule_id in expect}
    as_of = iso_to_filetime(raw["as_of"]) if raw.get("as_of") else None
    return Case(id=case_id, job=job, label=label, verdict=verdict, expect=dict(expect),
                family=str(raw.get("family", "")),
                source=str(raw.get("source", "")), record=record, note=str(raw.get("note", "")), file=file.name,
                as_of=as_of, confidence=raw.get("confidence"))


def load_cases(path: str | Path, legacy_codec: LegacyCodec | None = None) -> list[Case]:
    """Cases of one YAML file, or of every .yaml file in a folder (sorted)."""
    path = Path(path)
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise CaseError(f"{file}: invalid YAML: {str(exc).splitlines()[0]}") from None
        for raw in document.get("cases", []):
            case = _case(raw, file, legacy_codec)
            if case.id in seen:
                raise CaseError(f"{file}: case {case.id}: id already used in {seen[case.id]}")
            seen[case.id] = file.name
            cases.append(case)
    return cases


# --------------------------------------------------------------------------- scores


@dataclass
class Score:
    """Counts of one rule (fired / expected) or one verdict level (reached / required)."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    quiet_benign: int = 0       # rules: fired on a benign case below medium (allow-listed or weak on its own)

    @property
    def precision(self) -> float:
        fired = self.true_positive + self.false_positive
        return 1.0 if fired == 0 else self.true_positive / fired

    @property
    def recall(self) -> float:
        wanted = self.true_positive + self.false_negative
        return 1.0 if wanted == 0 else self.true_positive / wanted


@dataclass
class Report:
    verdicts: dict[str, Verdict]
    rules: dict[str, Score]
    levels: dict[str, Score]
    problems: list[str]

    def table(self) -> str:
        """Per-verdict-level and per-rule precision / recall, for the test log."""
        lines = [f"{'verdict >=':<12} {'TP':>4} {'FP':>4} {'FN':>4} precision recall"]
        for level, score in self.levels.items():
            lines.append(f"{level:<12} {score.true_positive:>4} {score.false_positive:>4} {score.false_negative:>4} "
                         f"{score.precision:9.0%} {score.recall:6.0%}")
        lines.append(f"{'rule':<28} {'TP':>4} {'FP':>4} {'FN':>4} precision recall  benign<medium")
        for rule_id, score in self.rules.items():
            lines.append(f"{rule_id:<28} {score.true_positive:>4} {score.false_positive:>4} {score.false_negative:>4} "
                         f"{score.precision:9.0%} {score.recall:6.0%}  {score.quiet_benign:>13}")
        return "\n".join(lines)


def evaluate_cases(cases: list[Case], ruleset: RuleSet) -> Report:
    """Judge every case and score it.

    Per verdict level L (medium, high, critical): a malicious case whose lowest acceptable
    verdict is L or above is a positive; reaching L is a true positive, missing it a false
    negative; a benign case reaching L is a false positive. Per rule: a hit counts as a true
    positive on a malicious case (or where `expect` lists the rule), as a false positive on a
    benign case at medium or above (or, where `expect` is given, when the rule is not listed),
    and a listed rule that did not fire is a false negative; hits on benign cases below medium
    (allow-listed, or weak on their own) are counted apart.
    """
    verdicts: dict[str, Verdict] = {}
    rules: dict[str, Score] = {rule.id: Score() for rule in ruleset.rules}
    levels = {level: Score() for level in ("medium", "high", "critical")}
    problems = []
    for case in cases:
        verdict = ruleset.assess(case.job, case.as_of)
        verdicts[case.id] = verdict
        where = f"{case.file}:{case.id}"
        problem = case.problem(verdict)
        if problem:
            problems.append(f"{where}: {problem}: {' | '.join(verdict.top_reasons(4))}")
        got = SEVERITY_RANK[verdict.severity]
        for level, score in levels.items():
            rank = SEVERITY_RANK[level]
            if case.label == "malicious" and case.verdict and SEVERITY_RANK[case.verdict] >= rank:
                if got >= rank:
                    score.true_positive += 1
                else:
                    score.false_negative += 1
            elif case.label == "benign" and got >= rank:
                score.false_positive += 1
        fired = {h.rule_id: h for h in verdict.hits}
        for rule_id, severity in case.expect.items():
            hit = fired.get(rule_id)
            score = rules.setdefault(rule_id, Score())
            if hit is None:
                score.false_negative += 1
                problems.append(f"{where}: {rule_id} expected but did not fire")
            elif severity is not None and hit.severity != severity:
                problems.append(f"{where}: {rule_id} is {hit.severity}, expected {severity} ({hit.explanation})")
        for rule_id, hit in fired.items():
            score = rules.setdefault(rule_id, Score())
            if case.expect:
                if rule_id in case.expect:
                    score.true_positive += 1
                elif hit.severity != "info":
                    score.false_positive += 1
                    problems.append(f"{where}: {rule_id} fired unexpectedly ({hit.severity}): {hit.explanation}")
            elif case.label == "malicious":
                score.true_positive += 1
            elif case.label == "benign" and SEVERITY_RANK[hit.severity] >= SEVERITY_RANK["medium"]:
                score.false_positive += 1
            elif case.label == "benign":
                score.quiet_benign += 1
    return Report(verdicts=verdicts, rules=rules, levels=levels, problems=problems)
