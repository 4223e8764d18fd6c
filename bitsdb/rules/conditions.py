"""The condition language rules are written in, compiled once and evaluated per job.

    COND := {all: [COND, ...]} | {any: [COND, ...]} | {not: COND}
          | {any_file: COND} | {all_files: COND}          # COND holds for one / every file of the job
          | {field: PATH, OP: VALUE [, case: sensitive] [, match: any|all]}

OP is one of equals, contains, startswith, endswith, regex, in, domain, gt, ge, lt, le,
exists, empty. String operators are case-insensitive unless `case: sensitive`; a list
VALUE means "any of"; `$name` stands for a named list. A `files.*` field outside
any_file/all_files is tested over the job's files (any by default, `match: all` for every
file; all over no files is false). List-valued fields match when any element does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import paths
from .fields import FIELDS, FieldSpec, View

STRING_OPS = ("equals", "contains", "startswith", "endswith", "regex", "in", "domain")
NUMBER_OPS = ("gt", "ge", "lt", "le")
PRESENCE_OPS = ("exists", "empty")
OPS = STRING_OPS + NUMBER_OPS + PRESENCE_OPS
LEAF_OPTIONS = ("field", "case", "match")
COMPOSITES = ("all", "any", "not", "any_file", "all_files")

Evidence = tuple[str, Any]


class ConditionError(ValueError):
    """A condition that does not compile; `line` is the YAML line it starts on."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def line_of(node: Any, default: int | None = None) -> int | None:
    return getattr(node, "line", default)


def check_mapping(node: Any, what: str, keys: Iterable[str], required: Iterable[str] = ()) -> int | None:
    """The YAML line of `node` after checking it is a mapping with only `keys` and all of `required`."""
    line = line_of(node)
    keys = tuple(keys)
    if not isinstance(node, dict):
        raise ConditionError(f"{what} must be a mapping", line)
    unknown = set(node) - set(keys)
    if unknown:
        raise ConditionError(f"unknown key {sorted(unknown)[0]!r} (keys: {', '.join(keys)})", line)
    for key in required:
        if key not in node:
            raise ConditionError(f"missing {key!r}", line)
    return line


@dataclass
class Context:
    job: View
    files: list[View]
    file: View | None = None


class Condition:
    line: int | None = None

    def test(self, ctx: Context) -> list[Evidence] | None:
        """None when the condition does not hold; else the evidence (field, value) that made it hold."""
        raise NotImplementedError

    def fields(self) -> Iterable[str]:
        return ()

    def explain(self, ctx: Context, depth: int = 0) -> tuple[bool, list[str]]:
        """Whether the condition holds, and one line per test saying why (for `rules explain`)."""
        raise NotImplementedError


def _mark(holds: bool) -> str:
    return "yes" if holds else "no "


def _explain_parts(label: str, parts: list[Condition], ctx: Context, depth: int, holds_if) -> tuple[bool, list[str]]:
    results = [part.explain(ctx, depth + 1) for part in parts]
    holds = holds_if(r[0] for r in results)
    lines = [f"{'  ' * depth}{_mark(holds)} {label}:"]
    for _, sub in results:
        lines.extend(sub)
    return holds, lines


@dataclass
class AllOf(Condition):
    parts: list[Condition]
    line: int | None = None

    def test(self, ctx: Context) -> list[Evidence] | None:
        evidence: list[Evidence] = []
        for part in self.parts:
            found = part.test(ctx)
            if found is None:
                return None
            evidence.extend(found)
        return evidence

    def fields(self) -> Iterable[str]:
        for part in self.parts:
            yield from part.fields()

    def explain(self, ctx: Context, depth: int = 0) -> tuple[bool, list[str]]:
        return _explain_parts("all of", self.parts, ctx, depth, all)


@dataclass
class AnyOf(Condition):
    parts: list[Condition]
    line: int | None = None

    def test(self, ctx: Context) -> list[Evidence] | None:
        for part in self.parts:
            found = part.test(ctx)
            if found is not None:
                return found
        return None

    def fields(self) -> Iterable[str]:
        for part in self.parts:
            yield from part.fields()

    def explain(self, ctx: Context, depth: int = 0) -> tuple[bool, list[str]]:
        return _explain_parts("any of", self.parts, ctx, depth, any)


@dataclass
class Not(Condition):
    part: Condition
    line: int | None = None

    def test(self, ctx: Context) -> list[Evidence] | None:
        return [] if self.part.test(ctx) is None else None

    def fields(self) -> Iterable[str]:
        return self.part.fields()

    def explain(self, ctx: Context, depth: int = 0) -> tuple[bool, list[str]]:
        inner, lines = self.part.explain(ctx, depth + 1)
        return not inner, [f"{'  ' * depth}{_mark(not inner)} not:"] + lines


@dataclass
class PerFile(Condition):
    part: Condition
    every: bool
    line: int | None = None

    def test(self, ctx: Context) -> list[Evidence] | None:
        if not ctx.files:
            return None
        evidence: list[Evidence] = []
        for view in ctx.files:
            found = self.part.test(Context(ctx.job, ctx.files, view))
            if found is None and self.every:
                return None
            if found is not None:
                evidence.extend(found)
                if not self.every:
                    return evidence
        return evidence if self.every else None

    def fields(self) -> Iterable[str]:
        return self.part.fields()

    def explain(self, ctx: Context, depth: int = 0) -> tuple[bool, list[str]]:
        holds = self.test(ctx) is not None
        label = "every file" if self.every else "some file"
        lines = [f"{'  ' * depth}{_mark(holds)} {label} ({len(ctx.files)} file(s)):"]
        for index, view in enumerate(ctx.files, start=1):
            sub_holds, sub = self.part.explain(Context(ctx.job, ctx.files, view), depth + 2)
            lines.append(f"{'  ' * (depth + 1)}{_mark(sub_holds)} file {index}:")
            lines.extend(sub)
        return holds, lines


@dataclass
class Leaf(Condition):
    path: str
    op: str
    needles: list[Any]
    case_sensitive: bool = False
    every: bool = False
    patterns: list[re.Pattern] = field(default_factory=list)
    line: int | None = None
    strings: frozenset = frozenset()     # the text needles, for set lookups (equals / in / domain)

    def fields(self) -> Iterable[str]:
        yield self.path

    def test(self, ctx: Context) -> list[Evidence] | None:
        if self.path.startswith("files."):
            views = [ctx.file] if ctx.file is not None else ctx.files
        else:
            views = [ctx.job]
        if not views:
            return None
        evidence: list[Evidence] = []
        for view in views:
            if self._holds(view.get(self.path)):
                evidence.append(view.shown(self.path))
                if not self.every:
                    return evidence
            elif self.every:
                return None
        return evidence or None

    def explain(self, ctx: Context, depth: int = 0) -> tuple[bool, list[str]]:
        holds = self.test(ctx) is not None
        views = ([ctx.file] if ctx.file is not None else ctx.files) if self.path.startswith("files.") else [ctx.job]
        values = [v.get(self.path) for v in views]
        shown = values[0] if len(values) == 1 else values
        needles = self.needles if self.op != "regex" else [p.pattern for p in self.patterns]
        wanted = needles[0] if len(needles) == 1 else f"[{', '.join(str(n) for n in needles[:6])}" \
            + (f", … {len(needles) - 6} more]" if len(needles) > 6 else "]")
        return holds, [f"{'  ' * depth}{_mark(holds)} {self.path} {self.op} {wanted}  (value: {shown!r})"]

    def _holds(self, value: Any) -> bool:
        if self.op == "exists":
            return (value is not None and value != "") == self.needles[0]
        if self.op == "empty":
            return (value is None or value == "" or value == []) == self.needles[0]
        values = value if isinstance(value, list) else [value]
        return any(self._holds_one(v) for v in values if v is not None)

    def _holds_one(self, value: Any) -> bool:
        op = self.op
        if op in NUMBER_OPS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            needle = self.needles[0]
            return {"gt": value > needle, "ge": value >= needle, "lt": value < needle, "le": value <= needle}[op]
        if isinstance(value, bool) or isinstance(value, (int, float)):
            if op in ("equals", "in"):
                return any(value == n for n in self.needles if isinstance(n, (bool, int, float))
                           and isinstance(n, bool) == isinstance(value, bool))
            value = str(value)
        text = str(value) if self.case_sensitive else str(value).casefold()
        if op == "regex":
            return any(p.search(str(value)) for p in self.patterns)
        if op in ("equals", "in"):
            return text in self.strings
        if op == "domain":
            return text in self.strings or any(".".join(labels) in self.strings
                                               for labels in _suffixes(text.split(".")))
        for needle in self.needles:
            if isinstance(needle, bool):
                continue
            n = str(needle)
            if op == "contains" and n in text:
                return True
            if op == "startswith" and text.startswith(n):
                return True
            if op == "endswith" and text.endswith(n):
                return True
        return False


def _suffixes(labels: list[str]) -> Iterable[list[str]]:
    """The parent domains of a host, from the longest: a.b.c -> [b, c], [c]."""
    for start in range(1, len(labels)):
        yield labels[start:]


def _values(raw: Any, lists: dict[str, list[Any]], line: int | None) -> list[Any]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str) and item.startswith("$"):
            name = item[1:]
            if name not in lists:
                raise ConditionError(f"unknown list {item!r} (known: {', '.join(sorted(lists)) or 'none'})", line)
            out.extend(lists[name])
        elif isinstance(item, (dict, list)):
            raise ConditionError(f"a value must be a string, number or boolean, not {type(item).__name__}", line)
        else:
            out.append(item)
    return out


def compile_condition(node: Any, lists: dict[str, list[Any]], *, in_file: bool = False,
                      line: int | None = None, fields: dict[str, FieldSpec] | None = None) -> Condition:
    """Turn the YAML form into a Condition; raises ConditionError naming the problem and line."""
    line = line_of(node, line)
    if not isinstance(node, dict) or not node:
        raise ConditionError(f"a condition must be a mapping, got {type(node).__name__}", line)
    keys = set(node)
    composite = keys & set(COMPOSITES)
    if composite:
        if len(keys) != 1:
            raise ConditionError(f"{sorted(composite)[0]!r} must be alone in its mapping (found {sorted(keys)})",
                                 line)
        key = composite.pop()
        body = node[key]
        if key in ("all", "any"):
            if not isinstance(body, list) or not body:
                raise ConditionError(f"{key!r} needs a non-empty list of conditions", line)
            parts = [compile_condition(item, lists, in_file=in_file, line=line, fields=fields) for item in body]
            return AllOf(parts, line) if key == "all" else AnyOf(parts, line)
        if key == "not":
            return Not(compile_condition(body, lists, in_file=in_file, line=line, fields=fields), line)
        if in_file:
            raise ConditionError(f"{key!r} cannot be nested inside another per-file condition", line)
        return PerFile(compile_condition(body, lists, in_file=True, line=line, fields=fields), key == "all_files",
                       line)
    return _compile_leaf(node, lists, in_file, line, fields if fields is not None else FIELDS)


def _compile_leaf(node: dict, lists: dict[str, list[Any]], in_file: bool, line: int | None,
                  fields: dict[str, FieldSpec]) -> Condition:
    unknown = set(node) - set(OPS) - set(LEAF_OPTIONS)
    if unknown:
        raise ConditionError(f"unknown key {sorted(unknown)[0]!r} (operators: {', '.join(OPS)}; "
                             f"combinators: {', '.join(COMPOSITES)})", line)
    path = node.get("field")
    if not isinstance(path, str):
        raise ConditionError("a test needs 'field: NAME'", line)
    if path not in fields:
        raise ConditionError(f"unknown field {path!r}", line)
    ops = [k for k in node if k in OPS]
    if len(ops) != 1:
        raise ConditionError(f"field {path!r}: exactly one operator expected, found {ops or 'none'}", line)
    op = ops[0]
    case = node.get("case", "insensitive")
    if case not in ("sensitive", "insensitive"):
        raise ConditionError(f"case must be 'sensitive' or 'insensitive', not {case!r}", line)
    match = node.get("match", "any")
    if match not in ("any", "all"):
        raise ConditionError(f"match must be 'any' or 'all', not {match!r}", line)
    needles = _values(node[op], lists, line)
    if not needles:
        raise ConditionError(f"field {path!r}: {op} needs a value", line)
    spec = fields[path]
    leaf = Leaf(path, op, needles, case_sensitive=case == "sensitive", every=match == "all", line=line)
    if op in PRESENCE_OPS:
        if len(needles) != 1 or not isinstance(needles[0], bool):
            raise ConditionError(f"field {path!r}: {op} takes true or false", line)
    elif op in NUMBER_OPS:
        if len(needles) != 1 or isinstance(needles[0], bool) or not isinstance(needles[0], (int, float)):
            raise ConditionError(f"field {path!r}: {op} takes one number", line)
        if spec.kind not in ("int", "float"):
            raise ConditionError(f"field {path!r} is {spec.kind}, not a number: {op} cannot apply", line)
    elif op == "regex":
        flags = 0 if leaf.case_sensitive else re.IGNORECASE
        for needle in needles:
            try:
                leaf.patterns.append(re.compile(str(needle), flags))
            except re.error as exc:
                raise ConditionError(f"field {path!r}: bad regex {needle!r}: {exc}", line) from None
    else:
        if spec.kind == "bool" and not all(isinstance(n, bool) for n in needles):
            raise ConditionError(f"field {path!r} is true/false: compare with true or false", line)
        if spec.kind == "path" and op != "domain":
            needles = [paths.normalise_path(str(n)) if isinstance(n, str) else n for n in needles]
        if not leaf.case_sensitive:
            needles = [n.casefold() if isinstance(n, str) else n for n in needles]
        leaf.needles = needles
        leaf.strings = frozenset(str(n) for n in needles if not isinstance(n, bool))
    return leaf
