"""The one adapter between the rules layer and the report: a job's verdict as a plain dict.

The rules layer gives one Verdict per job (`RuleSet.assess`): severity, confidence, ordered
reasons and the rule hits that are its evidence (docs/RULES.md). The report shows it as it is;
this module only turns it into text the page can hold, so a change of the rules layer's shape
changes this file alone.
"""

from __future__ import annotations

from typing import Any, Callable

from ..model import Job
from ..rules.verdict import SEVERITIES

#: Verdict levels shown by the report, lowest first (the rules layer's: a job no rule fired on is "info").
LEVELS = SEVERITIES
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}

VerdictSource = Callable[..., dict[str, Any]]
RecordVerdictSource = Callable[..., dict[str, Any]]


def _hit(finding) -> dict[str, Any]:
    return {"rule": finding.rule_id, "severity": finding.severity, "title": finding.summary,
            "facet": finding.facet, "attack": list(finding.attack), "allowlisted": finding.allowlisted,
            "evidence": [f"{e['field']} = {e['value']}" for e in finding.evidence]}


def verdict_view(verdict) -> dict[str, Any]:
    """A rules-layer Verdict as the report's plain dict."""
    confidence = verdict.confidence
    if verdict.confidence_reasons:
        confidence += " (" + "; ".join(verdict.confidence_reasons) + ")"
    return {
        "severity": verdict.severity,
        "confidence": confidence,
        "reasons": [reason.text for reason in verdict.reasons],
        "hits": [_hit(f) for f in verdict.hits],
        "allowlist": _allowlist_text(verdict.allowlist),
    }


def _allowlist_text(decision: dict[str, Any] | None) -> str | None:
    if not decision:
        return None
    parts = []
    for key, value in sorted(decision.items()):
        if value in (None, "", [], {}):
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def verdict_source(ruleset) -> VerdictSource:
    """A function (job, as_of=None) -> verdict dict for `ruleset` (a bitsdb.rules RuleSet); `as_of` is the
    time age rules count to (scan's default: the newest time of the job's store, `evidence_time`)."""

    def verdict(job: Job, as_of: int | None = None) -> dict[str, Any]:
        return verdict_view(ruleset.assess(job, as_of))

    return verdict


def record_verdict_source(ruleset) -> RecordVerdictSource:
    """A function (record type, record, as_of=None) -> verdict dict for records of no job (service
    configuration, log coverage, process evidence, log events); the lowest level, with no reason, for
    kinds the rules layer writes no rule for."""

    def verdict(kind: str, record: Any, as_of: int | None = None) -> dict[str, Any]:
        judged = ruleset.assess_record(kind, record, as_of)
        if judged is None:
            return {"severity": LEVELS[0], "confidence": None, "reasons": [], "hits": [], "allowlist": None}
        return verdict_view(judged)

    return verdict
