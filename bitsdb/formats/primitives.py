"""Primitive on-disk types of the BITS job store (FORMAT.md §1).

Each type is declared once as a construct object that both parses and builds.
"""

from __future__ import annotations

from construct import (
    Adapter,
    Array,
    Bytes,
    BytesInteger,
    CheckError,
    GreedyBytes,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Prefixed,
    Struct,
    Switch,
    this,
)

from ..text import utf16_bytes
from .plain import MAX_WSTR_UNITS, guid_bytes, guid_text, sid_text, wstr_text

class CompilableAdapter(Adapter):
    """An Adapter that `Construct.compile()` turns into compiled code plus one call of `_decode`
    (`_encode` when building).

    Plain Adapters are compiled as a call of the interpreted parser (subcon included);
    here the subcon is compiled too and only the Python-level `_decode` stays a call.
    `_decode` / `_encode` must not need `path` (they receive None).
    """

    def _emitparse(self, code):
        code.linkedinstances[id(self)] = self
        return f"linkedinstances[{id(self)}]._decode({self.subcon._compileparse(code)}, this, None)"

    def _emitbuild(self, code):
        code.linkedinstances[id(self)] = self
        encoded = f"linkedinstances[{id(self)}]._encode(obj, this, None)"
        return f"(reuse({encoded}, lambda obj: ({self.subcon._compilebuild(code)})), obj)[1]"


class GuidAdapter(CompilableAdapter):
    """16 bytes in Windows in-memory order <-> lower-case canonical GUID text."""

    def _decode(self, obj, context, path):
        return guid_text(obj)

    def _encode(self, obj, context, path):
        return guid_bytes(str(obj))


Guid = GuidAdapter(Bytes(16))


class WStrAdapter(CompilableAdapter):
    """u32 code-unit count (including the terminating NUL) + UTF-16LE text.

    Exactly one trailing NUL is stripped; count 0 (no text at all) decodes to "".
    Text that is not valid UTF-16 (a lone surrogate) decodes to a RepairedText: U+FFFD per
    bad unit, the exact bytes in `.raw` (bitsdb.text). Building takes text, a RepairedText
    (its raw bytes are written) or bytes (written as they are), each followed by the NUL.
    """

    def _decode(self, obj, context, path):
        return wstr_text(obj)

    def _encode(self, obj, context, path):
        if isinstance(obj, (bytes, bytearray)):
            return bytes(obj) + b"\x00\x00"
        raw = getattr(obj, "raw", None)
        return (raw if raw is not None else utf16_bytes(obj)) + b"\x00\x00"


class WStrByteLength(CompilableAdapter):
    """The u32 count of UTF-16 code units <-> the text's length in bytes (count * 2).

    Counts over MAX_WSTR_UNITS fail (parse and build) like the Check they stand for:
    such counts mean misaligned bytes, not text.
    """

    def _decode(self, obj, context, path):
        if obj > MAX_WSTR_UNITS:
            raise CheckError("check failed during parsing", path=path)
        return obj * 2

    def _encode(self, obj, context, path):
        if obj // 2 > MAX_WSTR_UNITS:
            raise CheckError("check failed during building", path=path)
        return obj // 2


# A Prefixed field rather than a Struct(count, Check, raw): the same bytes, without a
# context container per string (strings are most of a record; 1.5-2x faster to parse).
WStr = WStrAdapter(Prefixed(WStrByteLength(Int32ul), GreedyBytes))

#: FILETIME: 100-ns ticks since 1601-01-01 UTC, 0 = not set. Kept as the raw integer;
#: conversion to text lives in bitsdb.timeutil so that the raw value is never lost.
FileTime = Int64ul


class BinarySidAdapter(CompilableAdapter):
    """Binary SID (revision, count, 48-bit big-endian authority, LE sub-authorities) <-> 'S-1-...'."""

    def _decode(self, obj, context, path):
        return sid_text(obj.revision, obj.authority, obj.sub_authorities)

    def _encode(self, obj, context, path):
        fields = obj.split("-")
        if len(fields) < 3 or fields[0] != "S":
            raise ValueError(f"not a SID string: {obj!r}")
        subs = [int(x) for x in fields[3:]]
        return dict(
            revision=int(fields[1]),
            sub_authority_count=len(subs),
            authority=int(fields[2]),
            sub_authorities=subs,
        )


BinarySid = BinarySidAdapter(
    Struct(
        "revision" / Int8ul,
        "sub_authority_count" / Int8ul,
        "authority" / BytesInteger(6, swapped=False),
        "sub_authorities" / Array(this.sub_authority_count, Int32ul),
    )
)

#: ACE types whose body is `u32 mask` + SID (allowed, denied, audit, mandatory label).
SID_ACE_TYPES = (0x00, 0x01, 0x02, 0x11)

SidAceBody = Struct("mask" / Int32ul, "sid" / BinarySid)

Ace = Struct(
    "ace_type" / Int8ul,
    "ace_flags" / Int8ul,
    "ace_size" / Int16ul,
    # Expressions, not lambdas, so that the generated parser (formats.fastparse) can follow them.
    "body"
    / Switch(
        this.ace_type,
        {ace_type: SidAceBody for ace_type in SID_ACE_TYPES},
        default=Bytes((this.ace_size > 4) * (this.ace_size - 4)),
    ),
)

Acl = Struct(
    "revision" / Int8ul,
    "sbz1" / Int8ul,
    "acl_size" / Int16ul,
    "ace_count" / Int16ul,
    "sbz2" / Int16ul,
    "aces" / Array(this.ace_count, Ace),
)


#: Header of a self-relative SECURITY_DESCRIPTOR (FORMAT.md §1.5): the owner and group
#: SIDs and the two ACLs (Acl, BinarySid above) sit at these offsets from its start.
SecurityDescriptorHeader = Struct(
    "revision" / Int8ul,
    "sbz1" / Int8ul,
    "control" / Int16ul,
    "owner_offset" / Int32ul,
    "group_offset" / Int32ul,
    "sacl_offset" / Int32ul,
    "dacl_offset" / Int32ul,
)
