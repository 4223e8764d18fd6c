"""Rules are data: YAML files loaded into a RuleSet that turns each job into one Verdict.

A rule file may hold these top-level keys: `rules` (detections, each in one facet),
`lists` (named value lists a condition refers to as `$name`), `allowlist` (known benign
BITS users), `notify_commands` (documented Windows notify commands), `facets` and
`combine` (how hits combine into a verdict, verdict.yaml). The built-in files ship in this
package; users add rules with `--rules FILE|DIR` and site allow-list entries with
`--allowlist FILE`. Any problem while loading is a RuleError naming the file, the rule
and the line.

Evaluation: the job is reduced to the fields rules may believe (trust.py), viewed as
fields (fields.py), checked against the allow-list, run through every rule (hits), the
allow-list lowers what it may, and verdict.py combines the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from ..model import Job
from ..sources.detect import read_regular_text
from ..timeutil import datetime_to_filetime, filetime_to_iso
from .allowlist import (MATCH, MISMATCH, USER_CONTENT_LISTS, AllowEntry, Check, NotifyCommand, compile_entry,
                        compile_notify_command)
from .conditions import Condition, ConditionError, Context, Evidence, compile_condition, line_of
from . import logfields  # noqa: F401 - registers the subjects of event logs and hives
from .fields import SUBJECT_FIELDS, View, job_view
from .paths import host_is_ip as paths_is_ip
from .paths import lookalike_of
from .trust import Trust, trusted_view_of
from .verdict import (SEVERITY_RANK, Combination, Verdict, checked_severity, combine, compile_combination,
                      confidence, lower)

ALLOWLIST_LOWERING = 2          # levels an allow-listed job's lowerable hits drop
RULE_KEYS = ("id", "title", "severity", "attack", "facet", "subject", "description", "when", "explain", "escalate",
             "allowlisted")
ESCALATE_KEYS = ("severity", "when", "reason", "attack")
ESCALATE_REQUIRED = ("severity", "when", "reason")
ALLOWLISTED = ("lower", "keep", "documented-notify")
TOP_KEYS = ("rules", "lists", "allowlist", "notify_commands", "facets", "combine")
SITE_ALLOWLIST_KEYS = ("allowlist",)
ATTACK_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
TEMPLATE_FIELD = re.compile(r"\{([a-z_.]+)\}")
BUILTIN_DIR = Path(__file__).resolve().parent
BUILTIN_FILES = ("builtin.yaml", "eventlogs.yaml", "allowlist.yaml", "verdict.yaml")
DEFAULT_FACET = "other"


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
    facet: str = DEFAULT_FACET
    subject: str = "job"
    description: str = ""
    explain: str | None = None
    escalate: list[Escalation] = field(default_factory=list)
    allowlisted: str = "lower"          # lower | keep | documented-notify
    source: str = ""
    line: int | None = None

    @property
    def max_severity(self) -> str:
        return max([self.severity] + [e.severity for e in self.escalate], key=SEVERITY_RANK.__getitem__)


@dataclass
class Finding:
    """One rule that fired on one job (a hit), with the evidence that made it fire."""

    rule_id: str
    title: str
    severity: str
    attack: list[str]
    explanation: str
    job_id: str | None
    job_name: str | None
    facet: str = DEFAULT_FACET
    headline: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    base_severity: str | None = None
    allowlisted: str | None = None
    provenance: dict[str, Any] | None = None
    partial: bool = False           # the job record did not decode completely: fields may be missing

    @property
    def summary(self) -> str:
        """One line for a verdict's reasons: the headline and the last (strongest) reason that raised it."""
        text = self.headline or self.title
        return f"{text} ({self.reasons[-1]})" if self.reasons else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_type": "finding", "rule_id": self.rule_id, "title": self.title, "severity": self.severity,
            "facet": self.facet, "attack": list(self.attack), "explanation": self.explanation,
            "job_id": self.job_id, "job_name": self.job_name, "evidence": [dict(e) for e in self.evidence],
            "reasons": list(self.reasons), "base_severity": self.base_severity, "allowlisted": self.allowlisted,
            "provenance": dict(self.provenance) if self.provenance else None, "partial": self.partial,
        }


@dataclass
class Subject:
    """What rules evaluate: a view of one thing (a job today), its items (files), who it is,
    what of it could not be believed, and how the allow-list judged it."""

    kind: str
    view: View
    items: list[View]
    identity: dict[str, Any]
    trust: Trust
    record: Any = None
    checks: list[Check] = field(default_factory=list)
    allow: Check | None = None
    as_of_source: str = ""


def _one_line(value: Any, limit: int = 160) -> str:
    # Quoted but not escaped: Windows paths read as written (C:\Users, not C:\\Users).
    text = f"'{value}'" if isinstance(value, str) else str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def parse_time(text: str) -> int:
    """An ISO 8601 date or time (UTC unless it carries an offset) as a FILETIME; ValueError if not."""
    from datetime import datetime, timezone

    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    if not 1601 <= moment.year <= 9999:
        raise ValueError(f"{text!r} is out of range")
    return datetime_to_filetime(moment)


def _shown(subject: Subject, path: str) -> Any:
    """The value a rule's explain template names: job fields from the job, file fields from the
    first file that has one."""
    if not path.startswith("files."):
        return subject.view.shown(path)[1]
    return next((v.shown(path)[1] for v in subject.items if v.get(path) not in (None, "", False)), None)


def job_latest_time(job: Job) -> int | None:
    """The newest time a job record holds (its own 'now')."""
    times = [t for t in (job.creation_time, job.modification_time, job.modification_time_2, job.completion_time)
             if t]
    return max(times) if times else None


def evidence_time(jobs: Iterable[Job]) -> int | None:
    """The newest time any record of one store holds: the default as-of time of its jobs."""
    times = [t for t in (job_latest_time(j) for j in jobs) if t]
    return max(times) if times else None


def job_identity(job: Job) -> dict[str, Any]:
    prov = job.provenance
    return {"kind": "job", "job_id": job.job_id, "job_name": job.display_name,
            "host": prov.host if prov else None, "owner_sid": job.owner_sid, "creator_image": job.creator_image,
            "type": job.type.name if hasattr(job.type, "name") else job.type,
            "state": job.state.name if hasattr(job.state, "name") else job.state,
            "partial": job.partial, "partial_reason": job.partial_reason,
            "recovered": bool(prov and prov.recovered),
            "provenance": prov.to_dict() if prov else None}


def _installed_updater(check: Check) -> bool:
    """The job's creator is a machine-wide entry's creator (admin-only: it cannot be planted)."""
    return check.entry.scope == "machine" and check.facts.get("creator") == MATCH


def _vendor_placed(check: Check) -> bool:
    """The creator lies where the entry's vendor installs it, and nothing shows other hosts."""
    return check.facts.get("creator") == MATCH and check.facts.get("hosts") != MISMATCH


def _copies_creator(check: Check, view: View) -> bool:
    """The creator has an entry's creator file name but not its location, or is a per-user
    updater (a user-writable file anyone can plant) fetching from hosts that are not its vendor's."""
    if view.get("creator_name") not in check.entry.creator_names:
        return False
    facts = check.facts
    return facts.get("creator") == MISMATCH or (check.entry.scope == "user" and facts.get("hosts") == MISMATCH)


def _copies_name(check: Check, view: View) -> bool:
    """The job has an entry's specific name while its creator or owner differ, or it fetches from
    other hosts into other folders (unknown facts alone prove nothing)."""
    name = view.get("display_name")
    if not name or not AllowEntry._name_in(name, check.entry.specific_names):
        return False
    facts = check.facts
    return MISMATCH in (facts.get("creator"), facts.get("owner")) \
        or (facts.get("hosts") == MISMATCH and facts.get("destinations") == MISMATCH)


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    lists: dict[str, list[Any]] = field(default_factory=dict)
    allowlist: list[AllowEntry] = field(default_factory=list)
    notify_commands: list[NotifyCommand] = field(default_factory=list)
    facets: dict[str, str] = field(default_factory=dict)
    combinations: list[Combination] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- subjects

    def subject(self, job: Job, as_of: int | None = None) -> Subject:
        """The job as rules see it: trusted fields only, time fields counted to `as_of` (default:
        the job's own latest time), allow-list facts filled in."""
        trusted, trust = trusted_view_of(job)
        source = "given" if as_of is not None else "the job's own latest time"
        when = as_of if as_of is not None else job_latest_time(trusted)
        view, files = job_view(trusted, when, trust.ignored_fields)
        view.raw["as_of"] = filetime_to_iso(when) if when else None
        subject = Subject("job", view, files, job_identity(job), trust, job, as_of_source=source)
        self._judge(subject)
        return subject

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        """Derived data computed once per rule set (rule sets are not changed after loading)."""
        cache = self.__dict__.setdefault("_derived", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def _list(self, name: str) -> set[str]:
        return self._cached(f"list:{name}", lambda: {str(v).lower() for v in self.lists.get(name, [])})

    def _vendor_domains(self) -> set[str]:
        """Domains whose look-alikes are suspicious: those of allow-listed hosts and $impersonated_domains."""
        domains = set(self._list("impersonated_domains"))
        for entry in self.allowlist:
            for pattern in entry.hosts:
                labels = pattern.removeprefix("*.").split(".")
                if len(labels) >= 2 and not paths_is_ip(pattern):
                    domains.add(".".join(labels[-2:]))
        return domains

    def _host_facts(self, files: list[View]) -> None:
        """Per-file host facts that depend on the lists and the allow-list (user content, look-alikes)."""
        content = self._cached("user content", lambda: {d for n in USER_CONTENT_LISTS for d in self._list(n)})
        vendors = self._cached("vendor domains", self._vendor_domains)
        cdn = self._list("cdn_suffixes")
        known = self._cached("allow-listed hosts", lambda: [p for entry in self.allowlist for p in entry.hosts])
        for view in files:
            host = view.get("files.remote_host")
            labels = (host or "").split(".")
            view.set("files.remote_user_content",
                     bool(host) and any(".".join(labels[i:]) in content for i in range(len(labels))))
            view.set("files.remote_host_lookalike", lookalike_of(host, vendors, cdn, known))

    def _judge(self, subject: Subject) -> None:
        view, files = subject.view, subject.items
        self._host_facts(files)
        subject.checks = [entry.check(view, files) for entry in self.allowlist]
        subject.allow = next((c for c in subject.checks if c.matched), None)
        view.set("allowlisted", subject.allow is not None)
        view.set("allowlist_entry", subject.allow.entry.name if subject.allow else None)
        copied = name_copied = off_vendor = None
        off_destination = False
        if subject.allow is None and view.get("creator_name") not in self._list("service_host_processes"):
            installed = [c for c in subject.checks if _installed_updater(c)]
            if installed:
                # another host, or a site server nobody listed, and then a file outside the vendor's folders
                off_vendor = next((c for c in installed if c.facts.get("hosts") == MISMATCH or c.site_hosts), None)
                off_destination = bool(off_vendor and off_vendor.facts.get("destinations") == MISMATCH)
            elif not any(_vendor_placed(c) for c in subject.checks):
                copied = next((c.entry.name for c in subject.checks if _copies_creator(c, view)), None)
                if copied is None:       # one disguise counts once: a copied name beside a copied creator adds nothing
                    name_copied = next((c.entry.name for c in subject.checks if _copies_name(c, view)), None)
        view.set("creator_impersonates", copied)
        view.set("name_impersonates", name_copied)
        view.set("updater_off_vendor", off_vendor.entry.name if off_vendor else None)
        view.set("updater_off_vendor_destination", off_destination)
        vendor = next((c for c in subject.checks if c.entry.scope == "machine" and files
                       and c.facts.get("hosts") == MATCH and c.facts.get("destinations") == MATCH
                       and c.facts.get("owner") == MATCH), None)
        view.set("files_vendor", vendor.entry.name if vendor else None)
        untrusted = self._list("bits_tools") | self._list("never_bits_creators")
        view.set("creator_installed", view.get("creator_location") in ("admin", "system")
                 and view.get("creator_writable") is False and view.get("creator_name") not in untrusted)
        documented = next((n.name for n in self.notify_commands if n.matches(view)), None)
        view.set("notify_documented", documented)

    # ---------------------------------------------------------------- hits and verdicts

    def hits(self, subject: Subject) -> list[Finding]:
        """Every rule that fires on the subject, allow-list lowering applied, most severe first."""
        ctx = Context(subject.view, subject.items)
        findings = []
        for rule in self.rules:
            if rule.subject != subject.kind:
                continue
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
            finding = self._finding(rule, subject, evidence, reasons, severity)
            finding.attack = attack
            findings.append(finding)
        findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.rule_id))
        return findings

    def _lowering(self, rule: Rule, subject: Subject) -> tuple[int, str | None]:
        """How many levels the allow-list lowers this rule's hit on the subject, and by what."""
        if rule.allowlisted == "documented-notify":
            documented = subject.view.get("notify_documented")
            return (ALLOWLIST_LOWERING, f"documented Windows notify command {documented}") if documented else (0, None)
        if rule.allowlisted == "lower" and subject.allow is not None:
            return ALLOWLIST_LOWERING, subject.allow.entry.name
        return 0, None

    def _finding(self, rule: Rule, subject: Subject, evidence: list[Evidence], reasons: list[str],
                 base: str) -> Finding:
        unique: list[Evidence] = []
        for item in evidence:
            if item not in unique and item[1] is not None:
                unique.append(item)
        headline = rule.title
        if rule.explain:
            headline = TEMPLATE_FIELD.sub(lambda m: _one_line(_shown(subject, m.group(1)), 120), rule.explain)
        levels, allow = self._lowering(rule, subject)
        severity = lower(base, levels)
        parts = [headline]
        if unique:
            parts.append("evidence: " + ", ".join(f"{name} = {_one_line(value)}" for name, value in unique))
        if reasons:
            lead = f"raised to {base}: " if base != rule.severity else "also: "
            parts.append(lead + "; ".join(reasons))
        if allow and severity != base:
            parts.append(f"allow-listed ({allow}): lowered from {base}")
        elif subject.allow is not None and rule.allowlisted != "lower":
            parts.append(f"allow-listed ({subject.allow.entry.name}) but kept at {base}: nothing lowers this rule")
        record = subject.record
        partial = bool(getattr(record, "partial", False))
        if partial:
            parts.append(f"partial record ({getattr(record, 'partial_reason', None) or 'incomplete'})")
        identity = subject.identity
        return Finding(rule_id=rule.id, title=rule.title, severity=severity, attack=list(rule.attack),
                       explanation="; ".join(parts), job_id=identity.get("job_id"), job_name=identity.get("job_name"),
                       facet=rule.facet, headline=headline, evidence=[{"field": n, "value": v} for n, v in unique],
                       reasons=reasons, base_severity=base, allowlisted=allow, provenance=identity.get("provenance"),
                       partial=partial)

    def verdict(self, subject: Subject) -> Verdict:
        hits = self.hits(subject)
        severity, reasons, applied = combine(hits, self.combinations)
        level, why = confidence(subject.trust, subject.view, subject.allow)
        allow = None
        if subject.allow is not None:
            allow = subject.allow.to_dict()
            allow["lowered"] = [h.rule_id for h in hits if h.allowlisted and h.severity != h.base_severity]
            allow["kept"] = [h.rule_id for h in hits if not h.allowlisted and h.base_severity
                             and SEVERITY_RANK[h.base_severity] > 0]
        return Verdict(subject=subject.identity, severity=severity, confidence=level, reasons=reasons, hits=hits,
                       combinations=applied, allowlist=allow, confidence_reasons=why,
                       as_of=subject.view.raw.get("as_of"))

    def assess(self, job: Job, as_of: int | None = None) -> Verdict:
        """The verdict on one job (as_of: FILETIME the time-based rules count to)."""
        return self.verdict(self.subject(job, as_of))

    def record_subject(self, kind: str, record: Any) -> Subject:
        """A record that is not a job (docs/EVENTLOGS.md) as rules of its `subject:` kind see it."""
        from .logfields import VIEWS, record_identity

        return Subject(kind, VIEWS[kind](record), [], record_identity(kind, record), Trust(), record)

    def assess_record(self, kind: str, record: Any, as_of: int | None = None) -> Verdict | None:
        """The verdict on a process, service configuration, log event or log coverage record (None for
        kinds no rule is written for)."""
        if kind not in SUBJECT_FIELDS or not any(rule.subject == kind for rule in self.rules):
            return None
        return self.verdict(self.record_subject(kind, record))

    def evaluate_record(self, kind: str, record: Any, as_of: int | None = None) -> list[Finding]:
        """The rule hits on such a record, most severe first."""
        if kind not in SUBJECT_FIELDS:
            return []
        return self.hits(self.record_subject(kind, record))

    def evaluate(self, job: Job, as_of: int | None = None) -> list[Finding]:
        """The rule hits on one job, most severe first (the evidence of its verdict)."""
        return self.hits(self.subject(job, as_of))

    # ---------------------------------------------------------------- explanations

    def explain(self, job: Job, as_of: int | None = None, as_of_source: str | None = None) -> list[str]:
        """Why each rule did or did not fire on `job`, the allow-list decision and the combination."""
        subject = self.subject(job, as_of)
        view, ctx = subject.view, Context(subject.view, subject.items)
        verdict = self.verdict(subject)
        ident = subject.identity
        lines = [f"job {ident['job_id']} {ident['job_name']!r}",
                 f"  source: {(ident.get('provenance') or {}).get('source_path')}",
                 f"  as-of: {view.raw.get('as_of')} ({as_of_source or subject.as_of_source})"]
        trust = subject.trust
        if trust.ignored_sections or trust.ignored_files:
            lines.append(f"  damaged record ({trust.reason}): rules do not see {', '.join(trust.ignored_fields) or '-'}"
                         + (f"; {trust.ignored_files} damaged file record(s)" if trust.ignored_files else ""))
        lines.append("allow-list:")
        for check in subject.checks:
            facts = ", ".join(f"{k} {v}" for k, v in check.facts.items())
            lines.append(f"  {'MATCH' if check.matched else 'no   '} {check.entry.name} [{check.entry.scope}]: "
                         f"{check.why} ({facts})")
        for name in ("creator_impersonates", "name_impersonates", "notify_documented"):
            if view.get(name):
                lines.append(f"  {name}: {view.get(name)}")
        lines.append("rules:")
        fired = {h.rule_id: h for h in verdict.hits}
        for rule in self.rules:
            if rule.subject != subject.kind:
                continue
            hit = fired.get(rule.id)
            state = f"FIRED {hit.severity}" + (f" (from {hit.base_severity}: {hit.allowlisted})"
                                              if hit.base_severity != hit.severity else "") if hit else "not fired"
            lines.append(f"  {rule.id} [{rule.facet}]: {state}")
            lines.extend("    " + line for line in rule.when.explain(ctx)[1])
            for step in rule.escalate:
                holds, sub = step.when.explain(ctx)
                lines.append(f"    escalate to {step.severity} ({step.reason}): {'yes' if holds else 'no'}")
                if holds:
                    lines.extend("      " + line for line in sub)
        lines.append("combination:")
        hits = verdict.hits
        top = max((h.severity for h in hits), key=SEVERITY_RANK.__getitem__, default="info")
        lines.append(f"  most severe hit: {top}")
        for rule in self.combinations:
            lines.append(f"  {'APPLIED' if rule.when.holds(hits) else 'no     '} {rule.id} -> {rule.severity}: "
                         f"{rule.when.describe()}")
        lines.append(f"verdict: {verdict.severity} (confidence {verdict.confidence})")
        lines.extend(f"  - {reason}" for reason in verdict.confidence_reasons)
        lines.extend(f"  {index}. [{r.severity}] {r.text}" for index, r in enumerate(verdict.reasons, start=1))
        return lines


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
        text = read_regular_text(path)
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


def _compile_rule(node: Any, path: Path, lists: dict[str, list[Any]], facets: dict[str, str]) -> Rule:
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
        severity = checked_severity(node["severity"], line)
        attack = _attack(node["attack"], line)
        if "T1197" not in attack:
            raise ConditionError("every BITS rule maps to T1197 (add it to 'attack')", line)
        facet = str(node.get("facet", DEFAULT_FACET))
        if facet not in facets:
            raise ConditionError(f"unknown facet {facet!r} (facets: {', '.join(facets)})", line)
        subject = str(node.get("subject", "job"))
        if subject not in SUBJECT_FIELDS:
            raise ConditionError(f"unknown subject {subject!r} (subjects: {', '.join(SUBJECT_FIELDS)})", line)
        fields = SUBJECT_FIELDS[subject]
        explain = node.get("explain")
        if explain is not None:
            for name in TEMPLATE_FIELD.findall(str(explain)):
                if name not in fields:
                    raise ConditionError(f"explain names unknown field {{{name}}}", line)
        allowlisted = node.get("allowlisted", "lower")
        if allowlisted not in ALLOWLISTED:
            raise ConditionError(f"allowlisted must be one of {', '.join(ALLOWLISTED)}, not {allowlisted!r}", line)
        when = compile_condition(node["when"], lists, line=line, fields=fields)
        escalate = []
        for step in node.get("escalate") or []:
            step_line = line_of(step, line)
            if not isinstance(step, dict) or set(step) - set(ESCALATE_KEYS) \
                    or any(k not in step for k in ESCALATE_REQUIRED):
                raise ConditionError(f"an escalate step has {', '.join(ESCALATE_REQUIRED)} (and optional attack)",
                                     step_line)
            escalate.append(Escalation(checked_severity(step["severity"], step_line),
                                       compile_condition(step["when"], lists, line=step_line, fields=fields),
                                       str(step["reason"]), _attack(step.get("attack", []), step_line)))
    except ConditionError as exc:
        at = f"{path}: rule {rule_id or '?'} (line {exc.line or line})"
        raise RuleError(f"{at}: {exc}") from None
    return Rule(id=rule_id, title=str(node["title"]), severity=severity, attack=list(attack), when=when,
                facet=facet, subject=subject, description=str(node.get("description", "")).strip(), explain=explain,
                escalate=escalate, allowlisted=allowlisted, source=str(path), line=line)


def _attack(value: Any, line: int | None) -> list[str]:
    attack = value if isinstance(value, list) else [value]
    bad = [a for a in attack if not isinstance(a, str) or not ATTACK_ID.match(a)]
    if bad:
        raise ConditionError(f"bad ATT&CK technique id {bad[0]!r} (expected T1234 or T1234.001)", line)
    return list(attack)


def _section(document: dict[str, Any], key: str, path: Path, kind: type) -> Any:
    value = document.get(key) or kind()
    if not isinstance(value, kind):
        shape = "a list" if kind is list else "a mapping"
        raise RuleError(f"{path}: {key!r} must be {shape}")
    return value


def _add_lists(ruleset: RuleSet, document: dict[str, Any], path: Path) -> None:
    lists = _section(document, "lists", path, dict)
    for name, values in lists.items():
        if not isinstance(values, list) or not all(isinstance(v, (str, int, float)) for v in values):
            raise RuleError(f"{path}: list {name!r} (line {line_of(values, line_of(lists))}): "
                            "must be a list of strings or numbers")
        if name in ruleset.lists:
            raise RuleError(f"{path}: list {name!r} (line {line_of(values)}): already defined")
        ruleset.lists[name] = list(values)


def _add_facets(ruleset: RuleSet, document: dict[str, Any], path: Path) -> None:
    for name, text in _section(document, "facets", path, dict).items():
        if not isinstance(name, str) or not RULE_ID.match(name) or not isinstance(text, str):
            raise RuleError(f"{path}: facet {name!r}: a facet maps a name to its description")
        if name in ruleset.facets:
            raise RuleError(f"{path}: facet {name!r}: already defined")
        ruleset.facets[name] = text.strip()


def _add_allowlist(ruleset: RuleSet, document: dict[str, Any], path: Path) -> None:
    for entry in _section(document, "allowlist", path, list):
        name = entry.get("name", "?") if isinstance(entry, dict) else "?"
        try:
            compiled = compile_entry(entry, str(path), ruleset.lists)
        except ConditionError as exc:
            raise RuleError(f"{path}: allow-list entry {name} (line {exc.line}): {exc}") from None
        if any(e.name == compiled.name for e in ruleset.allowlist):
            raise RuleError(f"{path}: allow-list entry {name} (line {compiled.line}): name already used")
        ruleset.allowlist.append(compiled)
    for entry in _section(document, "notify_commands", path, list):
        name = entry.get("name", "?") if isinstance(entry, dict) else "?"
        try:
            ruleset.notify_commands.append(compile_notify_command(entry, str(path), ruleset.lists))
        except ConditionError as exc:
            raise RuleError(f"{path}: notify command {name} (line {exc.line}): {exc}") from None


def _add_rules(ruleset: RuleSet, document: dict[str, Any], path: Path, seen: dict[str, str]) -> None:
    for node in _section(document, "rules", path, list):
        rule = _compile_rule(node, path, ruleset.lists, ruleset.facets)
        if rule.id in seen:
            raise RuleError(f"{path}: rule {rule.id} (line {rule.line}): id already defined in {seen[rule.id]}")
        seen[rule.id] = f"{path}:{rule.line}"
        ruleset.rules.append(rule)


def _add_combinations(ruleset: RuleSet, document: dict[str, Any], path: Path) -> None:
    ids = {r.id for r in ruleset.rules}
    for node in _section(document, "combine", path, list):
        try:
            combination = compile_combination(node, ruleset.facets, str(path), ids)
        except ConditionError as exc:
            name = node.get("id", "?") if isinstance(node, dict) else "?"
            raise RuleError(f"{path}: combination {name} (line {exc.line}): {exc}") from None
        if any(c.id == combination.id for c in ruleset.combinations):
            raise RuleError(f"{path}: combination {combination.id} (line {combination.line}): id already defined")
        ruleset.combinations.append(combination)


def _site_allowlist(path: Path) -> tuple[Path, dict[str, Any]]:
    document = _read_document(path)
    other = sorted(set(document) - set(SITE_ALLOWLIST_KEYS))
    if other:
        raise RuleError(f"{path}: an --allowlist file holds only 'allowlist:' entries, not {other[0]!r} "
                        "(rules go in --rules files)")
    if not document.get("allowlist"):
        raise RuleError(f"{path}: no 'allowlist:' entries")
    return path, document


def load_rules(paths: Iterable[str | Path] = (), *, builtin: bool = True,
               allowlists: Iterable[str | Path] = ()) -> RuleSet:
    """Built-in files (unless builtin=False), every rule file/folder in `paths` and every site
    allow-list file in `allowlists`, checked strictly (RuleError names file, item and line)."""
    files = [BUILTIN_DIR / name for name in BUILTIN_FILES] if builtin else []
    for item in paths:
        for path in _rule_files(Path(item)):
            if path.resolve() not in {f.resolve() for f in files}:
                files.append(path)
    documents = [(path, _read_document(path)) for path in files]
    for item in allowlists:
        path = Path(item)
        if not path.is_file():
            raise RuleError(f"{path}: no such file")
        documents.append(_site_allowlist(path))
    ruleset = RuleSet(sources=[str(p) for p, _ in documents], facets={} if builtin else {DEFAULT_FACET: "other"})
    for path, document in documents:
        _add_lists(ruleset, document, path)
        _add_facets(ruleset, document, path)
    ruleset.facets.setdefault(DEFAULT_FACET, "rules that name no facet")
    for path, document in documents:
        _add_allowlist(ruleset, document, path)
    seen: dict[str, str] = {}
    for path, document in documents:
        _add_rules(ruleset, document, path, seen)
    for path, document in documents:
        _add_combinations(ruleset, document, path)
    return ruleset


def check_rule_file(path: str | Path) -> RuleSet:
    """Load a user file or folder together with the built-ins (it may use their lists); its own part."""
    full = load_rules([path])
    files = _rule_files(Path(path))
    resolved = {p.resolve() for p in files}
    # a built-in file named here keeps its built-in path as its source (load_rules reads it once)
    own = {str(p) for p in files} | {str(BUILTIN_DIR / n) for n in BUILTIN_FILES
                                     if (BUILTIN_DIR / n).resolve() in resolved}
    return RuleSet(rules=[r for r in full.rules if r.source in own], lists=full.lists,
                   allowlist=[e for e in full.allowlist if e.file in own],
                   notify_commands=[n for n in full.notify_commands if n.file in own], facets=full.facets,
                   combinations=[c for c in full.combinations if c.source in own], sources=sorted(own))


@lru_cache(maxsize=1)
def builtin_rules() -> RuleSet:
    return load_rules()


def evaluate(job: Job, rules: RuleSet | None = None, as_of: int | None = None) -> list[Finding]:
    """Rule hits for one job (built-in rules unless a RuleSet is given)."""
    return (rules or builtin_rules()).evaluate(job, as_of)


def assess(job: Job, rules: RuleSet | None = None, as_of: int | None = None) -> Verdict:
    """The verdict on one job (built-in rules unless a RuleSet is given)."""
    return (rules or builtin_rules()).assess(job, as_of)
