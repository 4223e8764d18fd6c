"""Construct-free pieces of the on-disk format: what both the construct schemas and the
generated fast parsers (`fastparse`, written by tools/gen_fastparse.py) need at run time.

Importing this module never imports construct, so the parse path can start fast.
"""

from __future__ import annotations

from typing import Any

from ..text import decode_utf16

#: Sanity limit for counted strings (FORMAT.md §1.2): longer counts mean misalignment.
MAX_WSTR_UNITS = 32768


class Fields(dict):
    """A parsed structure: a dict whose fields are also attributes (like construct's Container)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class SectionList(tuple):
    """The (name, schema) sections of a record in order; `name` picks its generated parser
    (`fastparse.parse_sections_<name>`). Slices are plain tuples (no generated parser)."""

    def __new__(cls, name: str, sections: Any) -> "SectionList":
        self = super().__new__(cls, sections)
        self.name = name
        return self


class FastParseMiss(Exception):
    """A generated parser (fastparse) cannot vouch for these bytes: construct decides."""


def read_wstr(data: bytes, pos: int) -> tuple[str, int]:
    """The counted string (§1.2) at `pos` -> (text, end); FastParseMiss where construct's WStr fails."""
    start = pos + 4
    if start > len(data):
        raise FastParseMiss
    count = int.from_bytes(data[pos:start], "little")
    end = start + 2 * count
    if count > MAX_WSTR_UNITS or end > len(data):
        raise FastParseMiss
    if data[end - 2:end] == b"\x00\x00" and count:
        end_text = end - 2
    else:
        end_text = end
    try:                                                             # wstr_text, inlined (hot)
        return data[start:end_text].decode("utf-16-le"), end
    except UnicodeDecodeError:
        return decode_utf16(data[start:end_text]), end


def guid_text(raw: bytes) -> str:
    """str(uuid.UUID(bytes_le=raw)) without building a UUID (3x faster; GUIDs are everywhere)."""
    raw = bytes(raw)
    if len(raw) != 16:
        raise ValueError("bytes_le is not a 16-char string")
    h = (raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def guid_bytes(text: str) -> bytes:
    """The inverse of guid_text (16 bytes in Windows in-memory order)."""
    h = text.replace("-", "")
    if len(h) != 32:
        raise ValueError(f"not a GUID: {text!r}")
    raw = bytes.fromhex(h)
    return raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]


def wstr_text(raw: bytes) -> str:
    """Counted UTF-16LE text: exactly one trailing NUL stripped (§1.2). Text that is not valid UTF-16
    (a lone surrogate) is a RepairedText: U+FFFD per bad unit, the exact bytes kept (bitsdb.text)."""
    data = bytes(raw)
    return decode_utf16(data[:-2] if data[-2:] == b"\x00\x00" and len(data) % 2 == 0 else data)


def sid_text(revision: int, authority: int, sub_authorities: list[int]) -> str:
    """Binary SID fields -> 'S-1-5-21-...'."""
    parts = [f"S-{revision}-{authority}"]
    parts.extend(str(s) for s in sub_authorities)
    return "-".join(parts)


#: Sizes in the tail before the creator image: net_b_guid + zeros21.
_CREATOR_AT = 16 + 21
#: Longest HTTP verb taken for one when looking for the tail (BITS verbs are short tokens).
MAX_HTTP_METHOD_UNITS = 64
#: Farthest the tail is looked for past optional fields that do not parse.
MAX_OPTIONAL_BYTES = 8192


def _counted_string_end(data: bytes, at: int, max_units: int = MAX_WSTR_UNITS) -> int | None:
    """End offset of the counted string at `at` when its count fits and it ends with its NUL."""
    if at + 4 > len(data):
        return None
    count = int.from_bytes(data[at:at + 4], "little")
    end = at + 4 + 2 * count
    if count > max_units or end > len(data) or (count and data[end - 2:end] != b"\x00\x00"):
        return None
    return end


def tail_state(data: bytes, at: int, strict: bool = False) -> str | None:
    """Whether the creator tail (EseTrailerTail) can start at `at`: "fits" when its three
    counted strings sit where the layout puts them, within `data` and NUL-terminated; "cut"
    when `data` ends inside it with everything before the end consistent; else None.
    `strict`: each string also has its NUL (count >= 1, as Windows writes them) and a cut tail
    shows at least the creator's count, so that zero bytes do not pass for a tail where the
    decoder is looking for one."""
    pos = at + _CREATOR_AT
    for skip, max_units in ((0, MAX_WSTR_UNITS), (16, MAX_HTTP_METHOD_UNITS), (3, MAX_WSTR_UNITS)):
        pos += skip
        if pos + 4 > len(data):
            return None if strict and skip == 0 else "cut"
        count = int.from_bytes(data[pos:pos + 4], "little")
        if count > max_units or (strict and count == 0):
            return None
        end = pos + 4 + 2 * count
        if end > len(data):
            return "cut"
        if count and data[end - 2:end] != b"\x00\x00":
            return None
        pos = end
    return "fits" if pos + 1 <= len(data) else "cut"


def optional_text(data: bytes, at: int) -> tuple[str, int] | None:
    """(text, end) of a counted string at `at` that is text: count >= 1, NUL-terminated, valid
    UTF-16 without control characters; None otherwise."""
    end = _counted_string_end(data, at)
    if end is None or end - at < 6:
        return None
    try:
        text = data[at + 4:end - 2].decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        return None
    return text, end


def scan_optional_fields(data: bytes, network_guid: bytes) -> tuple[list[tuple[str, Any]], int, str | None]:
    """The flag-prefixed optional fields between `net_b_flag` and the creator tail (§5.10.1).

    `data` starts right after `net_b_flag`; returns (fields, offset of the tail, problem).
    The older layout has no optional field: the tail starts at 0. Otherwise the tail is the
    first place after them where it fits, with NUL-terminated strings, and starts with the
    record's first network GUID (both layouts repeat it there, which keeps misaligned bytes
    from passing for a tail; a tail cut by the end of `data` after the creator's count counts). The bytes before it are read as fields, left to
    right: `00` ("absent", None), `01` + counted string ("text", str), `01` + u32 ("u32",
    int) when another field or the tail follows; what none of these explains is kept as
    one ("raw", bytes) field, so an unknown field costs its own bytes, never the creator.
    `problem` is None when the tail was found; else it says why not, and the fields and
    offset are what was read before that (a record cut inside the fields).
    """
    same_guid = data[:16] == network_guid and any(network_guid)
    state = tail_state(data, 0, strict=not same_guid)       # the older layout, as lenient as before
    if state == "fits" or (state == "cut" and same_guid):
        return [], 0, None
    if len(data) < 16 and network_guid.startswith(data):
        return [], 0, "the record ends inside the second network GUID"
    tail = None
    # A zero GUID anchors too (jobs with no network id are common), but only a whole tail: zero runs
    # cannot pass for one (the strict check wants three counted, NUL-terminated strings after it),
    # while a "cut" tail after 16 zero bytes is no evidence at all in a record cut short.
    search = 1
    cut = None
    while (found := data.find(network_guid, search, MAX_OPTIONAL_BYTES)) >= 0:
        state = tail_state(data, found, strict=True)
        if state == "fits":
            tail = found
            break
        if state == "cut" and cut is None and any(network_guid):
            cut = found          # a tail the record's end cuts: only if no whole tail fits later
        search = found + 1
    if tail is None:
        tail = cut
    limit = len(data) if tail is None else tail
    fields: list[tuple[str, Any]] = []
    pos = 0
    while pos < limit:
        flag = data[pos]
        if flag == 0:
            fields.append(("absent", None))
            pos += 1
        elif flag == 1 and (text := optional_text(data, pos + 1)) is not None and text[1] <= limit:
            fields.append(("text", text[0]))
            pos = text[1]
        elif flag == 1 and pos + 5 <= limit and (pos + 5 == limit or data[pos + 5] in (0, 1)):
            fields.append(("u32", int.from_bytes(data[pos + 1:pos + 5], "little")))
            pos += 5
        else:
            break
    if tail is not None:
        if pos < tail:
            fields.append(("raw", data[pos:tail]))
        return fields, tail, None
    # No tail: only text fields vouch for themselves; flags and numbers read before the cut may be
    # anything (zero bytes read as "absent" fields), so the fields end with the last text one.
    texts = [i for i, (kind, _) in enumerate(fields) if kind == "text"]
    fields = fields[:texts[-1] + 1] if texts else []
    if pos >= len(data) or _runs_past_end(data, pos):
        return fields, pos, "the record ends inside the optional fields before the creator image"
    return fields, pos, f"optional field flag 0x{data[pos]:02x} not understood and no creator image after it"


def _runs_past_end(data: bytes, pos: int) -> bool:
    """A `01` flag whose counted string would run past the end of `data` (a cut record)."""
    if data[pos] != 1:
        return False
    if pos + 5 > len(data):
        return True
    count = int.from_bytes(data[pos + 1:pos + 5], "little")
    return count <= MAX_WSTR_UNITS and pos + 5 + 2 * count > len(data)
