"""Rules are data: YAML files loaded into a RuleSet that turns each Job into Findings.

A rule file may hold three top-level keys: `rules` (detections), `lists` (named value
lists a condition refers to as `$name`) and `allowlist` (known benign updaters). The
built-in files ship in this package; users add theirs with `--rules FILE|DIR`. Any
problem while loading is a RuleError naming the file, the rule and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..model import Job
from .allowlist import AllowEntry, compile_entry
from .conditions import Condition, ConditionError, Context, Evidence, compile_condition, line_of
from .fields import FIELDS, View, job_view

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
ALLOWLIST_LOWERING = 2          # levels an allow-listed job's finding drops
RULE_KEYS = ("id", "title", "severity", "attack", "description", "when", "explain", "escalate", "allowlisted")
ESCALATE_KEYS = ("severity", "when", "reason", "attack")
ESCALATE_REQUIRED = ("severity", "when", "reason")
TOP_KEYS = ("rules", "lists", "allowlist")
ATTACK_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
TEMPLATE_FIELD = re.compile(r"\{([a-z_.]+)\}")
BUILTIN_DIR = Path(__file__).resolve().parent
BUILTIN_FILES = ("builtin.yaml", "allowlist.yaml")


class RuleError(ValueError):
    """A rule file that does not load. The message names file, rule and line."""


# --------------------------------------------------------------------------- YAML with line numbers


class LineDict(dict):
    line: int | None = None


class LineList(list):
    line: int | None = None


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    out = LineDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    out.line = node.start_mark.line + 1
    return out


def _sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


# --------------------------------------------------------------------------- model


@dataclass
class Escalation:
    severity: str
    when: Condition
    reason: str
    attack: list[str] = field(default_factory=list)     # techniques the escalation adds


@dataclass
class Rule:
    id: str
    title: str
    severity: str
    attack: list[str]
    when: Condition
    description: str = ""
    explain: str | None = None
    escalate: list[Escalation] = field(default_factory=list)
    allowlisted: str = "lower"          # lower | keep
    source: str = ""
    line: int | None = None

    @property
    def max_severity(self) -> str:
        return max([self.severity] + [e.severity for e in self.escalate], key=SEVERITY_RANK.__getitem__)


@dataclass
class Finding:
    """One rule that fired on one job, with the evidence that made it fire."""

    rule_id: str
    title: str
    severity: str
    attack: list[str]
    explanation: str
    job_id: str | None
    job_name: str | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    base_severity: str | None = None
    allowlisted: str | None = None
    provenance: dict[str, Any] | None = None
    partial: bool = False           # the job record did not decode completely: fields may be missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_type": "finding", "rule_id": self.rule_id, "title": self.title, "severity": self.severity,
            "attack": list(self.attack), "explanation": self.explanation, "job_id": self.job_id,
            "job_name": self.job_name, "evidence": [dict(e) for e in self.evidence], "reasons": list(self.reasons),
            "base_severity": self.base_severity, "allowlisted": self.allowlisted,
            "provenance": dict(self.provenance) if self.provenance else None, "partial": self.partial,
        }


def _one_line(value: Any, limit: int = 160) -> str:
    # Quoted but not escaped: Windows paths read as written (C:\Users, not C:\\Users).
    text = f"'{value}'" if isinstance(value, str) else str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _lower(severity: str, levels: int) -> str:
    return SEVERITIES[max(0, SEVERITY_RANK[severity] - levels)]


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    lists: dict[str, list[Any]] = field(default_factory=dict)
    allowlist: list[AllowEntry] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def view(self, job: Job) -> tuple[View, list[View]]:
        """The job's field view, with the allow-list fields filled in."""
        view, files = job_view(job)
        entry = next((e for e in self.allowlist if e.matches(view, files)), None)
        view.set("allowlisted", entry is not None)
        view.set("allowlist_entry", entry.name if entry else None)
        view.set("creator_known_updater", any(e.creator_matches(view.get("creator_image")) for e in self.allowlist))
        return view, files

    def evaluate(self, job: Job) -> list[Finding]:
        """Every rule that fires on `job`, highest severity first (then rule id)."""
        view, files = self.view(job)
        ctx = Context(view, files)
        provenance = job.provenance.to_dict() if job.provenance else None
        findings = []
        for rule in self.rules:
            evidence = rule.when.test(ctx)
            if evidence is None:
                continue
            severity, reasons, attack = rule.severity, [], list(rule.attack)
            for step in rule.escalate:
                extra = step.when.test(ctx)
                if extra is None:
                    continue
                reasons.append(step.reason)
                attack.extend(a for a in step.attack if a not in attack)
                evidence = evidence + extra
                if SEVERITY_RANK[step.severity] > SEVERITY_RANK[severity]:
                    severity = step.severity
            base = severity
            allow = view.get("allowlist_entry")
            if allow and rule.allowlisted == "lower":
                severity = _lower(severity, ALLOWLIST_LOWERING)
            finding = self._finding(rule, job, view, evidence, reasons, severity, base, allow, provenance)
            finding.attack = attack
            findings.append(finding)
        findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.rule_id))
        return findings

    def _finding(self, rule: Rule, job: Job, view: View, evidence: list[Evidence], reasons: list[str],
                 severity: str, base: str, allow: str | None, provenance: dict[str, Any] | None) -> Finding:
        unique: list[Evidence] = []
        for item in evidence:
            if item not in unique and item[1] is not None:
                unique.append(item)
        headline = rule.title
        if rule.explain:
            headline = TEMPLATE_FIELD.sub(lambda m: _one_line(view.shown(m.group(1))[1], 120), rule.explain)
        parts = [headline]
        if unique:
            parts.append("evidence: " + ", ".join(f"{name} = {_one_line(value)}" for name, value in unique))
        if reasons:
            lead = f"raised to {base}: " if base != rule.severity else "also: "
            parts.append(lead + "; ".join(reasons))
        if allow and severity != base:
            parts.append(f"allow-listed ({allow}): lowered from {base}")
        elif allow:
            parts.append(f"allow-listed ({allow}) but kept at {base}")
        if job.partial:
            parts.append(f"partial record ({job.partial_reason or 'incomplete'})")
        return Finding(rule_id=rule.id, title=rule.title, severity=severity, attack=list(rule.attack),
                       explanation="; ".join(parts), job_id=job.job_id, job_name=job.display_name,
                       evidence=[{"field": n, "value": v} for n, v in unique], reasons=reasons,
                       base_severity=base, allowlisted=allow, provenance=provenance, partial=job.partial)


# --------------------------------------------------------------------------- loading


def _rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
        if not found:
            raise RuleError(f"{path}: directory holds no .yaml/.yml rule files")
        return found
    if not path.exists():
        raise RuleError(f"{path}: no such file or directory")
    return [path]


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from None
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"{path}{where}: invalid YAML: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise RuleError(f"{path}: a rule file is a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = set(document) - set(TOP_KEYS)
    if unknown:
        key = sorted(unknown)[0]
        raise RuleError(f"{path}: unknown top-level key {key!r} (expected {', '.join(TOP_KEYS)})")
    return document


def _compile_rule(node: Any, path: Path, lists: dict[str, list[Any]]) -> Rule:
    line = line_of(node)
    rule_id = node.get("id") if isinstance(node, dict) else None
    try:
        if not isinstance(node, dict):
            raise ConditionError("a rule must be a mapping", line)
        unknown = set(node) - set(RULE_KEYS)
        if unknown:
            raise ConditionError(f"unknown key {sorted(unknown)[0]!r} (rule keys: {', '.join(RULE_KEYS)})", line)
        for key in ("id", "title", "severity", "attack", "when"):
            if key not in node:
                raise ConditionError(f"missing {key!r}", line)
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            raise ConditionError(f"bad rule id {rule_id!r}", line)
        severity = _severity(node["severity"], line)
        attack = _attack(node["attack"], line)
        if "T1197" not in attack:
            raise ConditionError("every BITS rule maps to T1197 (add it to 'attack')", line)
        explain = node.get("explain")
        if explain is not None:
            for name in TEMPLATE_FIELD.findall(str(explain)):
                if name not in FIELDS:
                    raise ConditionError(f"explain names unknown field {{{name}}}", line)
        allowlisted = node.get("allowlisted", "lower")
        if allowlisted not in ("lower", "keep"):
            raise ConditionError(f"allowlisted must be 'lower' or 'keep', not {allowlisted!r}", line)
        when = compile_condition(node["when"], lists, line=line)
        escalate = []
        for step in node.get("escalate") or []:
            step_line = line_of(step, line)
            if not isinstance(step, dict) or set(step) - set(ESCALATE_KEYS) \
                    or any(k not in step for k in ESCALATE_REQUIRED):
                raise ConditionError(f"an escalate step has {', '.join(ESCALATE_REQUIRED)} (and optional attack)",
                                     step_line)
            escalate.append(Escalation(_severity(step["severity"], step_line),
                                       compile_condition(step["when"], lists, line=step_line), str(step["reason"]),
                                       _attack(step.get("attack", []), step_line)))
    except ConditionError as exc:
        at = f"{path}: rule {rule_id or '?'} (line {exc.line or line})"
        raise RuleError(f"{at}: {exc}") from None
    return Rule(id=rule_id, title=str(node["title"]), severity=severity, attack=list(attack), when=when,
                description=str(node.get("description", "")).strip(), explain=explain, escalate=escalate,
                allowlisted=allowlisted, source=str(path), line=line)


def _attack(value: Any, line: int | None) -> list[str]:
    attack = value if isinstance(value, list) else [value]
    bad = [a for a in attack if not isinstance(a, str) or not ATTACK_ID.match(a)]
    if bad:
        raise ConditionError(f"bad ATT&CK technique id {bad[0]!r} (expected T1234 or T1234.001)", line)
    return list(attack)


def _severity(value: Any, line: int | None) -> str:
    if value not in SEVERITY_RANK:
        raise ConditionError(f"severity must be one of {', '.join(SEVERITIES)}, not {value!r}", line)
    return value


def load_rules(paths: Iterable[str | Path] = (), *, builtin: bool = True) -> RuleSet:
    """Built-in rules (unless builtin=False) plus every file/folder in `paths`, checked strictly."""
    files = [BUILTIN_DIR / name for name in BUILTIN_FILES] if builtin else []
    for item in paths:
        for path in _rule_files(Path(item)):
            if path.resolve() not in {f.resolve() for f in files}:
                files.append(path)
    documents = [(path, _read_document(path)) for path in files]
    ruleset = RuleSet(sources=[str(p) for p in files])
    for path, document in documents:
        lists = document.get("lists") or {}
        if not isinstance(lists, dict):
            raise RuleError(f"{path}: 'lists' must map names to lists of values")
        for name, values in lists.items():
            if not isinstance(values, list) or not all(isinstance(v, (str, int, float)) for v in values):
                raise RuleError(f"{path}: list {name!r} (line {line_of(values, line_of(lists))}): "
                                "must be a list of strings or numbers")
            if name in ruleset.lists:
                raise RuleError(f"{path}: list {name!r} (line {line_of(values)}): already defined")
            ruleset.lists[name] = list(values)
        entries = document.get("allowlist") or []
        if not isinstance(entries, list):
            raise RuleError(f"{path}: 'allowlist' must be a list of entries")
        for entry in entries:
            try:
                ruleset.allowlist.append(compile_entry(entry, str(path)))
            except ConditionError as exc:
                name = entry.get("name", "?") if isinstance(entry, dict) else "?"
                raise RuleError(f"{path}: allow-list entry {name} (line {exc.line}): {exc}") from None
    seen: dict[str, str] = {}
    for path, document in documents:
        nodes = document.get("rules") or []
        if not isinstance(nodes, list):
            raise RuleError(f"{path}: 'rules' must be a list of rules")
        for node in nodes:
            rule = _compile_rule(node, path, ruleset.lists)
            if rule.id in seen:
                raise RuleError(f"{path}: rule {rule.id} (line {rule.line}): id already defined in {seen[rule.id]}")
            seen[rule.id] = f"{path}:{rule.line}"
            ruleset.rules.append(rule)
    return ruleset


def check_rule_file(path: str | Path) -> RuleSet:
    """Load a user file or folder together with the built-ins (it may use their lists); its own part."""
    full = load_rules([path])
    own = {str(p) for p in _rule_files(Path(path))} | {
        str(b) for b in (BUILTIN_DIR / n for n in BUILTIN_FILES) if any(b.resolve() == p.resolve()
                                                                         for p in _rule_files(Path(path)))}
    return RuleSet(rules=[r for r in full.rules if r.source in own], lists=full.lists,
                   allowlist=[e for e in full.allowlist if e.source in own], sources=sorted(own))


@lru_cache(maxsize=1)
def builtin_rules() -> RuleSet:
    return load_rules()


def evaluate(job: Job, rules: RuleSet | None = None) -> list[Finding]:
    """Findings for one job (built-in rules unless a RuleSet is given)."""
    return (rules or builtin_rules()).evaluate(job)
