"""The one adapter between the rules layer and the report: a job's verdict as a plain dict.

The report shows a verdict per job: severity, confidence, ordered reasons and the rule hits
that are its evidence. Until the rules layer gives a verdict of its own, it is derived here
from the job's findings (worst severity; reasons = finding explanations, worst first). When
the rules layer grows real verdicts, only this module changes.
"""

from __future__ import annotations

from typing import Any, Callable

from ..model import Job
from ..rules.engine import SEVERITIES, SEVERITY_RANK

#: Verdict levels shown by the report, lowest first: "none" = no rule fired.
LEVELS = ("none",) + SEVERITIES
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}

VerdictSource = Callable[[Job], dict[str, Any]]


def verdict_source(ruleset) -> VerdictSource:
    """A function job -> verdict dict for `ruleset` (a bitsdb.rules RuleSet)."""

    def verdict(job: Job) -> dict[str, Any]:
        findings = ruleset.evaluate(job)
        worst = max((f.severity for f in findings), key=SEVERITY_RANK.__getitem__, default=None)
        return {
            "severity": worst or "none",
            "confidence": "partial record" if job.partial else None,
            "reasons": [f.explanation for f in findings],
            "hits": [{"rule": f.rule_id, "severity": f.severity, "title": f.title,
                      "attack": list(f.attack), "allowlisted": f.allowlisted,
                      "evidence": [f"{e['field']} = {e['value']}" for e in f.evidence]} for f in findings],
        }

    return verdict
