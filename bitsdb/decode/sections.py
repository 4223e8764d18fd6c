"""Section-by-section parsing shared by every record decoder (FORMAT.md §9: keep what validates).

Decoding walks the sections in order and stops at the first one that does not
validate; everything before it is kept, the rest is kept as raw bytes and the
record is marked partial with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..formats import fastparse

if TYPE_CHECKING:
    from construct import Container, Struct

FILETIME_1990 = 125911584000000000
FILETIME_2100 = 159029568000000000


class BlobError(ValueError):
    """The bytes are not a record of the expected kind (not even its header validates)."""


def plausible_filetime(value: int, allow_zero: bool = True) -> bool:
    return (allow_zero and value == 0) or FILETIME_1990 <= value <= FILETIME_2100



@dataclass
class SectionWalk:
    """Result of parsing sections in order: what parsed, where it stopped, and why."""

    parsed: dict[str, Container]
    end: int
    failure: str | None = None


#: The generated parsers (formats.fastparse) answer first for the records they cover; tests
#: turn this off to compare them with construct.
USE_GENERATED = True


def section_list(sections: Any) -> Sequence[tuple[str, Any]]:
    """The (name, schema) sections a key names ("ese_job", "ese_file"), or `sections` itself."""
    if sections == "ese_job":
        from ..formats import job as job_fmt

        return job_fmt.ESE_JOB_SECTIONS
    if sections == "ese_file":
        from ..formats import file as file_fmt

        return file_fmt.ESE_FILE_SECTIONS
    return sections


def parse_generated(sections: Any, data: bytes, offset: int) -> tuple[dict[str, Any], int] | None:
    """All `sections` parsed by their generated parser, when they have one and it vouches for the
    bytes; else None (construct decides)."""
    name = sections if isinstance(sections, str) else getattr(sections, "name", None)
    parser = getattr(fastparse, f"parse_sections_{name}", None) if name and USE_GENERATED else None
    if parser is None:
        return None
    try:
        return parser(data, offset)
    except Exception:               # FastParseMiss, a short read, anything: the reference parse decides
        return None


def parse_whole(sections: Any, data: bytes, offset: int) -> tuple[dict[str, Any], int] | None:
    """All sections in one parse when the record is well formed: generated parser, else
    construct's compiled one once it exists; None when only the section walk can tell."""
    fast = parse_generated(sections, data, offset)
    if fast is not None:
        return fast
    sections = section_list(sections)
    probe = probe_for(whole_record(sections)).parse_fast(data[offset:] if offset else data)
    if probe is None:
        return None
    return {name: probe.value[name] for name, _ in sections}, offset + probe.end


def parse_prefix(schema: Any, data: bytes, offset: int) -> tuple[Container | None, int, str | None]:
    """Parse `schema` at `offset`; on failure keep the longest prefix of its fields that parses."""
    from construct import Container, ConstructError, Struct

    from ..formats import job as job_fmt

    probe = probe_for(schema)
    chunk = data[offset:] if offset else data
    fast = probe.parse_fast(chunk)
    if fast is not None:
        return fast.value, offset + fast.end, None
    try:
        parsed = probe.parse(chunk)
        return parsed.value, offset + parsed.end, None
    except (ConstructError, UnicodeDecodeError, OverflowError, ValueError) as exc:
        error = describe_error(exc)
    if not isinstance(schema, Struct):
        return None, offset, error
    best: tuple[Container | None, int] = (None, offset)
    for count in range(1, len(schema.subcons) + 1):
        try:
            parsed = _prefix_probe(schema, count).parse(chunk)
        except job_fmt.OptionalFieldsCut as cut:    # keeps the optional fields read before the cut
            value = Container(best[0] or {})
            value[schema.subcons[count - 1].name] = cut.fields
            best = (value, offset + cut.stream_end)
            break
        except (ConstructError, UnicodeDecodeError, OverflowError, ValueError):
            break
        best = (parsed.value, offset + parsed.end)
    return best[0], best[1], error


_PREFIXES: dict[tuple[int, int], tuple[Any, Probe]] = {}


def _prefix_probe(schema: Struct, count: int) -> Probe:
    """The first `count` fields of `schema`, built once: building a Struct per failed record made
    resync over hostile bytes cost milliseconds per hit."""
    from construct import Struct

    key = (id(schema), count)
    cached = _PREFIXES.get(key)
    if cached is None or cached[0] is not schema:
        if len(_PREFIXES) >= 1024:
            _PREFIXES.clear()
        cached = _PREFIXES[key] = (schema, Probe(Struct(*schema.subcons[:count])))
    return cached[1]


#: Work allowed for failed decoding attempts per input byte, so that no content costs more than
#: a bounded time per MiB: an attempt that yields nothing (or a partial record) costs the bytes
#: its head spans, at least ATTEMPT_COST; records that decode whole cost nothing (their cost is
#: linear in the bytes they cover).
BUDGET_PER_BYTE = 16
ATTEMPT_COST = 16 * 1024
MIN_BUDGET = 256 << 10


class DecodeBudget:
    """Work left for decoding candidate records of one input (resync, carving)."""

    def __init__(self, size: int = 0) -> None:
        self.left = MIN_BUDGET + BUDGET_PER_BYTE * size
        self.exhausted_at: int | None = None
        self.skipped = 0

    def grow(self, size: int) -> None:
        """More input was read (streaming): more work is allowed."""
        self.left += BUDGET_PER_BYTE * size

    def allows(self, where: int) -> bool:
        """Is there work left for an attempt at `where`? (False notes the place, and counts the skip.)"""
        if self.left > 0:
            return True
        if self.exhausted_at is None:
            self.exhausted_at = where
        self.skipped += 1
        return False

    def charge(self, nbytes: int = 0) -> None:
        """The cost of one failed attempt whose head spans `nbytes`."""
        self.left -= max(nbytes, ATTEMPT_COST)

    def message(self) -> str | None:
        if self.exhausted_at is None:
            return None
        return (f"decoding stopped at 0x{self.exhausted_at:x}: {self.skipped} candidate record(s) from there on "
                "not examined (the work allowed per byte of input was used up: crafted or badly damaged data)")


#: Parses of one schema before its compiled twin is made. Compiling the whole job record
#: (~12 ms) costs about what compiled parsing saves on 40 records, so small inputs never pay.
COMPILE_AFTER = 40


class Probe:
    """`schema` followed by its end offset, so one parse gives both value and size.

    `parse` is the interpreted reference: its errors are the ones reported. Once a schema
    has been used COMPILE_AFTER times, `parse_fast` answers with construct's compiled
    parser (3-4x faster) whenever that is certain to give the same result.
    """

    __slots__ = ("value_schema", "interpreted", "compiled", "uses")

    def __init__(self, schema: Any) -> None:
        from construct import Struct, Tell

        self.value_schema = schema
        self.interpreted = Struct("value" / schema, "end" / Tell)
        self.compiled: Any = None          # None: not yet; False: does not compile
        self.uses = 0

    def parse(self, data: bytes) -> Container:
        return self.interpreted.parse(data)

    def parse_fast(self, data: bytes) -> Container | None:
        """The compiled parse, or None when only `parse` can tell (not compiled yet, an error,
        or a read past the end of `data`). Compiled code does not check short reads, so it
        parses `data` plus a few padding bytes: a record that needed more than `data` ends
        inside the padding, and is left to the reference parse."""
        compiled = self.compiled
        if compiled is None:
            self.uses += 1
            if self.uses < COMPILE_AFTER:
                return None
            compiled = self.compiled = compile_schema(self.interpreted)
        if compiled is False:
            return None
        try:
            parsed = compiled.parse(data + SHORT_READ_PAD)
        except Exception:                  # any failure: the reference parse decides and explains
            return None
        return parsed if parsed.end <= len(data) else None


SHORT_READ_PAD = b"\x00" * 16


def compile_schema(schema: Any) -> Any:
    try:
        return schema.compile()
    except Exception:                      # a construct without a compiled form: stay interpreted
        return False


PROBES: dict[int, Probe] = {}


def probe_for(schema: Any) -> Probe:
    probe = PROBES.get(id(schema))
    if probe is None or probe.value_schema is not schema:
        if len(PROBES) >= 256:        # schemas made per record (unknown legacy tails): start afresh
            PROBES.clear()
        probe = PROBES[id(schema)] = Probe(schema)
    return probe


def describe_error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:200]


WHOLE_RECORDS: dict[tuple, Any] = {}


def whole_record(sections: Sequence[tuple[str, Any]]) -> Any:
    from construct import Struct

    key = tuple(id(schema) for _, schema in sections)
    whole = WHOLE_RECORDS.get(key)
    if whole is None:
        if len(WHOLE_RECORDS) >= 256:
            WHOLE_RECORDS.clear()
        whole = WHOLE_RECORDS[key] = Struct(*(name / schema for name, schema in sections))
    return whole


def walk_sections(data: bytes, offset: int, sections: Any) -> SectionWalk:
    """Parse named sections one after the other; stop at the first that fails.

    `sections` is a list of (name, schema) or a key of one ("ese_job"). Well-formed records
    take one parse of all sections (generated code when the list has it: the common case);
    anything else is walked section by section with construct to keep what validates.
    """
    fast = parse_generated(sections, data, offset)
    if fast is not None and _errors_fit(fast[0]):
        return SectionWalk(parsed=dict(fast[0]), end=fast[1])
    from construct import ConstructError

    sections = section_list(sections)
    whole = probe_for(whole_record(sections))
    chunk = data[offset:] if offset else data
    try:
        probe = whole.parse_fast(chunk) or whole.parse(chunk)
        if _errors_fit(probe.value):
            return SectionWalk(parsed={name: probe.value[name] for name, _ in sections}, end=offset + probe.end)
    except (ConstructError, UnicodeDecodeError, OverflowError, ValueError):
        pass
    walk = SectionWalk(parsed={}, end=offset)
    for index, (name, schema) in enumerate(sections):
        if name == "errors":
            schema = _choose_error_form(data, walk.end, sections[index + 1:])
        value, end, error = parse_prefix(schema, data, walk.end)
        if error is not None:
            if value is not None:
                walk.parsed[name] = value
                walk.parsed[name]["_partial"] = True
            walk.end = end
            walk.failure = f"{name}: {error}"
            return walk
        walk.parsed[name] = value
        walk.end = end
    return walk


def _errors_fit(parsed: Any) -> bool:
    """A whole-record parse holds when it read no error record, or the times after them are plausible
    (else the 25-byte error form may be the right one: the walk decides)."""
    errors = parsed.get("errors")
    return errors is None or errors.count == 0 or plausible_times(parsed.get("counters"))


def _choose_error_form(data: bytes, offset: int, following: Sequence[tuple[str, Any]]) -> Any:
    """21-byte records (verified) unless only the 25-byte form leaves plausible times after it."""
    from construct import ConstructError

    from ..formats import job as job_fmt

    counters = dict(following).get("counters", job_fmt.JobCounters)
    for form in (job_fmt.ErrorSection21, job_fmt.ErrorSection25):
        try:
            probe = probe_for(form).parse(data[offset:])
            if probe.value.count == 0:
                return job_fmt.ErrorSection21
            times = counters.parse(data[offset + probe.end:])
        except (ConstructError, ValueError):
            continue
        if plausible_times(times):
            return form
    return job_fmt.ErrorSection21


def plausible_times(counters: Container | None) -> bool:
    return counters is not None and plausible_filetime(counters.creation_time, allow_zero=False) \
        and plausible_filetime(counters.modification_time)



def hex_or_none(value: bytes | None) -> str | None:
    """Hex text of unknown bytes; the same value gives the same str object (records repeat their
    constant fields, e.g. 42 zero bytes, and a large store keeps every record in memory)."""
    if value is None:
        return None
    text = _HEX_TEXTS.get(value)
    if text is None:
        if len(_HEX_TEXTS) >= 4096:
            _HEX_TEXTS.clear()
        text = _HEX_TEXTS[value] = bytes(value).hex()
    return text


_HEX_TEXTS: dict[bytes, str] = {}


def shared(text: Any) -> Any:
    """One str object per value for fields that repeat across records (owner, creator, drive,
    volume): a large store keeps every record in memory."""
    if text.__class__ is not str:
        return text
    found = _SHARED_TEXTS.get(text)
    if found is None:
        if len(_SHARED_TEXTS) >= 4096:
            _SHARED_TEXTS.clear()
        found = _SHARED_TEXTS[text] = text
    return found


_SHARED_TEXTS: dict[str, str] = {}


def unhex(value: Any, size: int) -> bytes:
    """Bytes kept as hex in the model (unknown fields); zeros of `size` when absent."""
    if value is None:
        return b"\x00" * size
    return bytes.fromhex(value) if isinstance(value, str) else bytes(value)
