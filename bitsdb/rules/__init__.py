"""Rules layer: YAML detections over decoded jobs, combined into one verdict per job.

`assess(job)` gives the Verdict (severity, confidence, ordered reasons, the rule hits as
evidence); `evaluate(job)` the hits alone; `load_rules([...], allowlists=[...])` adds user
rule files and site allow-lists. The condition language is described in
`bitsdb.rules.conditions` and in docs/RULES.md.
"""

from __future__ import annotations

from .engine import (
    Finding,
    Rule,
    RuleError,
    RuleSet,
    Subject,
    assess,
    builtin_rules,
    check_rule_file,
    evaluate,
    evidence_time,
    load_rules,
)
from .paths import normalise_path
from .verdict import SEVERITIES, Verdict

__all__ = ["SEVERITIES", "Finding", "Rule", "RuleError", "RuleSet", "Subject", "Verdict", "assess", "builtin_rules",
           "check_rule_file", "evaluate", "evidence_time", "load_rules", "normalise_path"]
