"""Rules layer: YAML detections over decoded jobs, producing ATT&CK-mapped findings.

`evaluate(job)` runs the built-in rules; `load_rules([...])` adds user files; findings
serialise with `Finding.to_dict()`. The condition language is described in
`bitsdb.rules.conditions` and in docs/RULES.md.
"""

from __future__ import annotations

from .engine import (
    SEVERITIES,
    Finding,
    Rule,
    RuleError,
    RuleSet,
    builtin_rules,
    check_rule_file,
    evaluate,
    load_rules,
)
from .paths import normalise_path

__all__ = ["SEVERITIES", "Finding", "Rule", "RuleError", "RuleSet", "builtin_rules", "check_rule_file",
           "evaluate", "load_rules", "normalise_path"]
