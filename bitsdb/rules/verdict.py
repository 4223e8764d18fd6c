"""One verdict per subject: rule hits combined by documented combination rules (data, YAML).

Each rule belongs to a facet: one independent aspect of a job (what it runs, who owns it,
who created it, what lands where, where it comes from, ...). A verdict starts at the most
severe hit; combination rules (`combine:` in verdict.yaml) then raise it when several
independent facets are suspicious at once, so that four unrelated medium facts do not stay
medium. The allow-list lowers hits before they combine. Confidence says how complete the
evidence behind the verdict was (damaged, legacy or file-less records lower it).

A verdict is a plain value (`to_dict()`); its hits stay available as evidence, and its
reasons are ordered: what raised the verdict first, then the hits from the most severe down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .conditions import ConditionError, check_mapping, line_of

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
CONFIDENCES = ("low", "medium", "high")
COMBINE_KEYS = ("id", "severity", "reason", "description", "when")
COMBINE_OPS = ("facets", "hit", "all", "any", "not")


def lower(severity: str, levels: int) -> str:
    return SEVERITIES[max(0, SEVERITY_RANK[severity] - levels)]


def at_least(severity: str, floor: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[floor]


@dataclass
class Reason:
    """One line of a verdict's explanation, with what produced it."""

    text: str
    severity: str
    source: str            # rule:ID | combine:ID | allowlist:ENTRY | confidence

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "severity": self.severity, "source": self.source}


# --------------------------------------------------------------------------- combination rules


class CombineCondition:
    def holds(self, hits: list) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class FacetCount(CombineCondition):
    """At least `count` distinct facets have a hit at `floor` or above (optionally among some)."""

    count: int
    floor: str
    among: list[str] = field(default_factory=list)

    def facets(self, hits: list) -> list[str]:
        found: list[str] = []
        for hit in hits:
            if at_least(hit.severity, self.floor) and (not self.among or hit.facet in self.among) \
                    and hit.facet not in found:
                found.append(hit.facet)
        return found

    def holds(self, hits: list) -> bool:
        return len(self.facets(hits)) >= self.count

    def describe(self) -> str:
        among = f" among {', '.join(self.among)}" if self.among else ""
        return f"{self.count}+ facets at {self.floor} or above{among}"


@dataclass
class HitOf(CombineCondition):
    rule_id: str
    floor: str = "info"

    def holds(self, hits: list) -> bool:
        return any(h.rule_id == self.rule_id and at_least(h.severity, self.floor) for h in hits)

    def describe(self) -> str:
        return f"hit {self.rule_id}" + (f" at {self.floor}+" if self.floor != "info" else "")


@dataclass
class Combined(CombineCondition):
    op: str
    parts: list[CombineCondition]

    def holds(self, hits: list) -> bool:
        if self.op == "all":
            return all(p.holds(hits) for p in self.parts)
        if self.op == "any":
            return any(p.holds(hits) for p in self.parts)
        return not self.parts[0].holds(hits)

    def describe(self) -> str:
        if self.op == "not":
            return f"not ({self.parts[0].describe()})"
        joint = " and " if self.op == "all" else " or "
        return joint.join(f"({p.describe()})" for p in self.parts)


@dataclass
class Combination:
    id: str
    severity: str
    reason: str
    when: CombineCondition
    description: str = ""
    source: str = ""
    line: int | None = None

    def text(self, hits: list) -> str:
        facets = self.when.facets(hits) if isinstance(self.when, FacetCount) else sorted({h.facet for h in hits})
        return self.reason.replace("{facets}", ", ".join(facets)).replace("{count}", str(len(facets)))


def checked_severity(value: Any, line: int | None) -> str:
    """`value` if it names a severity; else ConditionError at `line`."""
    if value not in SEVERITY_RANK:
        raise ConditionError(f"severity must be one of {', '.join(SEVERITIES)}, not {value!r}", line)
    return value


def compile_combine_condition(node: Any, facets: Iterable[str], line: int | None) -> CombineCondition:
    line = line_of(node, line)
    if not isinstance(node, dict) or len(node) < 1:
        raise ConditionError(f"a combination condition is a mapping with one of {', '.join(COMBINE_OPS)}", line)
    if "facets" in node:
        unknown = set(node) - {"facets", "at_least", "among"}
        if unknown:
            raise ConditionError(f"unknown key {sorted(unknown)[0]!r} beside 'facets' (at_least, among)", line)
        count = node["facets"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConditionError("facets: takes a count (1 or more)", line)
        among = node.get("among", [])
        bad = [f for f in among if f not in facets]
        if bad:
            raise ConditionError(f"unknown facet {bad[0]!r} (facets: {', '.join(facets)})", line)
        return FacetCount(count, checked_severity(node.get("at_least", "medium"), line), list(among))
    if "hit" in node:
        unknown = set(node) - {"hit", "at_least"}
        if unknown:
            raise ConditionError(f"unknown key {sorted(unknown)[0]!r} beside 'hit' (at_least)", line)
        return HitOf(str(node["hit"]), checked_severity(node.get("at_least", "info"), line))
    if len(node) != 1 or next(iter(node)) not in ("all", "any", "not"):
        raise ConditionError(f"a combination condition is one of {', '.join(COMBINE_OPS)}", line)
    op, body = next(iter(node.items()))
    if op == "not":
        return Combined("not", [compile_combine_condition(body, facets, line)])
    if not isinstance(body, list) or not body:
        raise ConditionError(f"{op!r} needs a non-empty list", line)
    return Combined(op, [compile_combine_condition(item, facets, line) for item in body])


def compile_combination(node: Any, facets: Iterable[str], source: str, rule_ids: set[str]) -> Combination:
    line = check_mapping(node, "a combination rule", COMBINE_KEYS, ("id", "severity", "reason", "when"))
    when = compile_combine_condition(node["when"], list(facets), line)
    for rule_id in _hit_ids(when):
        if rule_id not in rule_ids:
            raise ConditionError(f"hit names unknown rule {rule_id!r}", line)
    return Combination(id=str(node["id"]), severity=checked_severity(node["severity"], line),
                       reason=str(node["reason"]), when=when, description=str(node.get("description", "")).strip(),
                       source=source, line=line)


def _hit_ids(condition: CombineCondition) -> Iterable[str]:
    if isinstance(condition, HitOf):
        yield condition.rule_id
    elif isinstance(condition, Combined):
        for part in condition.parts:
            yield from _hit_ids(part)


# --------------------------------------------------------------------------- the verdict


@dataclass
class Verdict:
    """Severity, confidence and ordered reasons for one subject; the rule hits are its evidence."""

    subject: dict[str, Any]
    severity: str
    confidence: str
    reasons: list[Reason] = field(default_factory=list)
    hits: list = field(default_factory=list)                  # Finding objects
    combinations: list[dict[str, Any]] = field(default_factory=list)
    allowlist: dict[str, Any] | None = None
    confidence_reasons: list[str] = field(default_factory=list)
    as_of: str | None = None

    def top_reasons(self, count: int = 3) -> list[str]:
        return [r.text for r in self.reasons[:count]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_type": "verdict", "subject": dict(self.subject), "severity": self.severity,
            "confidence": self.confidence, "confidence_reasons": list(self.confidence_reasons),
            "reasons": [r.to_dict() for r in self.reasons], "combinations": [dict(c) for c in self.combinations],
            "allowlist": dict(self.allowlist) if self.allowlist else None, "as_of": self.as_of,
            "hits": [h.to_dict() for h in self.hits],
        }


def combine(hits: list, combinations: list[Combination]) -> tuple[str, list[Reason], list[dict[str, Any]]]:
    """The verdict severity from the (allow-list-lowered) hits, with the reasons that set it."""
    severity = max((h.severity for h in hits), key=SEVERITY_RANK.__getitem__, default="info")
    applied, lead = [], []
    for rule in combinations:
        if not rule.when.holds(hits):
            continue
        text = rule.text(hits)
        applied.append({"id": rule.id, "severity": rule.severity, "reason": text})
        if SEVERITY_RANK[rule.severity] > SEVERITY_RANK[severity]:
            severity = rule.severity
            lead = [Reason(text, rule.severity, f"combine:{rule.id}")]
    ordered = sorted(hits, key=lambda h: -SEVERITY_RANK[h.severity])
    reasons = lead + [Reason(h.summary, h.severity, f"rule:{h.rule_id}") for h in ordered]
    if not reasons:
        reasons = [Reason("no rule fired", "info", "rules")]
    return severity, reasons, applied


def confidence(trust, view, check) -> tuple[str, list[str]]:
    """How complete the evidence behind the verdict is: high, medium or low, with the reasons."""
    level, why = 2, []
    if trust.ignored_sections or trust.ignored_files:
        decisive = trust.decisive
        level = min(level, 0 if decisive else 1)
        fields = ", ".join(trust.ignored_fields) or ", ".join(trust.ignored_sections)
        why.append(f"damaged record: fields decoded past the damage point were ignored ({fields})"
                   + (f"; {trust.ignored_files} damaged file record(s) ignored" if trust.ignored_files else ""))
    elif view.get("partial"):
        why.append("partial record: every field the rules use was decoded before the damage point")
    if view.get("files_missing"):
        level = min(level, 1)
        why.append("the job's file records were not found: its URLs and destinations are unknown")
    if view.get("record_format") == "legacy":
        level = min(level, 1)
        why.append("legacy state file: the format stores no creator image")
    if check is not None and check.matched and not check.files_known:
        level = min(level, 1)
        why.append(f"allow-list entry {check.entry.name!r} matched without the file records")
    if check is not None and check.matched and check.site_hosts:
        level = min(level, 1)
        why.append(f"allow-list entry {check.entry.name!r} matched a host taken for the site's own server: "
                   "list it with --allowlist to verify it")
    return CONFIDENCES[level], why
