"""Owner token block and self-relative security descriptor (FORMAT.md §1.4, §1.5, §5.4) <-> SecurityInfo."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Sequence

from ..formats import fastparse
from ..model import INTEGRITY_LEVELS, WELL_KNOWN_SIDS, Ace, SecurityInfo
from . import sections
from .sections import describe_error

if TYPE_CHECKING:
    from construct import Container

ACE_TYPE_NAMES = {0x00: "ACCESS_ALLOWED", 0x01: "ACCESS_DENIED", 0x02: "SYSTEM_AUDIT",
                  0x11: "SYSTEM_MANDATORY_LABEL"}


def decode_security(owner: Container) -> SecurityInfo:
    raw = bytes(owner.get("security_descriptor") or b"")
    rid = owner.owner_integrity_rid
    info = SecurityInfo(
        owner_integrity_rid=rid,
        owner_integrity_level=INTEGRITY_LEVELS.get(rid),
        token_unknown=[owner.get(k) for k in ("tok_unk0", "tok_unk2", "tok_unk3", "tok_unk4")],
        raw=raw,
    )
    if not raw:
        return info
    decoded = _DESCRIPTORS.get(raw)
    if decoded is None:
        decoded = (raw, *_decode_descriptor(raw))
        if len(_DESCRIPTORS) >= _MAX_DESCRIPTORS:
            _DESCRIPTORS.clear()
        _DESCRIPTORS[raw] = decoded
    info.raw, fields, dacl, sacl = decoded       # one bytes object for the jobs that share a descriptor
    for name, value in fields.items():
        setattr(info, name, value)
    # Fresh Ace objects for every job: readers set `sid_name` on them (evidence name resolution).
    info.dacl = [Ace(*values) for values in dacl]
    info.sacl = [Ace(*values) for values in sacl]
    return info


#: Decoded descriptors by their bytes: jobs of one owner carry the same descriptor.
_DESCRIPTORS: dict[bytes, tuple[bytes, dict[str, Any], tuple[tuple, ...], tuple[tuple, ...]]] = {}
_MAX_DESCRIPTORS = 1024


def _decode_descriptor(raw: bytes) -> tuple[dict[str, Any], tuple[tuple, ...], tuple[tuple, ...]]:
    """SecurityInfo fields of a descriptor, and its ACEs as Ace field tuples (immutable, cacheable).

    The generated parsers (formats.fastparse) read well-formed descriptors; anything they do
    not vouch for is read again with construct, whose error text is reported."""
    if sections.USE_GENERATED:
        def generated_part(kind: str, offset: int) -> Any:
            return getattr(fastparse, _GENERATED[kind])(raw, offset)[0]

        try:
            return _fill_descriptor({}, generated_part)
        except Exception:           # FastParseMiss, a short read: construct decides, and explains
            pass
    from construct import ConstructError

    from ..formats import primitives

    def construct_part(kind: str, offset: int) -> Any:
        return getattr(primitives, _SCHEMAS[kind]).parse(raw[offset:])

    fields: dict[str, Any] = {}
    try:
        return _fill_descriptor(fields, construct_part)
    except (ConstructError, ValueError, OverflowError) as exc:
        fields["decode_error"] = describe_error(exc)
        return fields, (), ()


#: The schema (formats.primitives) and the generated parser (formats.fastparse) of each part.
_SCHEMAS = {"header": "SecurityDescriptorHeader", "sid": "BinarySid", "acl": "Acl"}
_GENERATED = {"header": "parse_security_descriptor_header", "sid": "parse_binary_sid", "acl": "parse_acl"}


def _fill_descriptor(fields: dict[str, Any], part: Any) -> tuple[dict[str, Any], tuple, tuple]:
    """Parse the parts with `part(kind, offset)`, filling `fields` as it goes (kept on an error)."""
    sd = part("header", 0)
    fields["control"] = sd["control"]
    fields["owner"] = part("sid", sd["owner_offset"]) if sd["owner_offset"] else None
    fields["group"] = part("sid", sd["group_offset"]) if sd["group_offset"] else None
    dacl = _aces(part("acl", sd["dacl_offset"])) if sd["dacl_offset"] else []
    sacl = _aces(part("acl", sd["sacl_offset"])) if sd["sacl_offset"] else []
    for ace in sacl:
        if ace.ace_type == 0x11:
            fields["integrity_label"] = ace.sid
    return fields, tuple(dataclasses.astuple(a) for a in dacl), tuple(dataclasses.astuple(a) for a in sacl)


def _aces(acl: Container) -> list[Ace]:
    out = []
    for ace in acl.aces:
        body = ace.body
        sid = body["sid"] if isinstance(body, dict) else None
        out.append(Ace(ace_type=ace.ace_type, ace_type_name=ACE_TYPE_NAMES.get(ace.ace_type, str(ace.ace_type)),
                       flags=ace.ace_flags, mask=body["mask"] if isinstance(body, dict) else None,
                       sid=sid, sid_name=WELL_KNOWN_SIDS.get(sid) if sid else None))
    return out


def encode_security_descriptor(info: SecurityInfo) -> bytes:
    """The inverse of decode_security: a self-relative descriptor laid out like BITS' own (§5.4):
    SACL (padded to 1008 bytes, as Windows writes it), DACL, owner, group; nothing after."""
    from ..formats.primitives import Acl, BinarySid, SecurityDescriptorHeader


    def acl(revision: int, aces: Sequence[Ace], pad_to: int = 0) -> bytes:
        built = []
        for ace in aces:
            sid = BinarySid.build(ace.sid)
            built.append(dict(ace_type=ace.ace_type, ace_flags=ace.flags, ace_size=8 + len(sid),
                              body=dict(mask=ace.mask or 0, sid=ace.sid)))
        size = 8 + sum(a["ace_size"] for a in built)
        total = max(size, pad_to)
        return Acl.build(dict(revision=revision, sbz1=0, acl_size=total, ace_count=len(built), sbz2=0,
                              aces=built)) + b"\x00" * (total - size)

    sacl = acl(4, info.sacl, 1008) if info.sacl else b""
    dacl = acl(2, info.dacl) if info.dacl else b""
    owner = BinarySid.build(info.owner) if info.owner else b""
    group = BinarySid.build(info.group) if info.group else b""
    offsets, position = [], 20
    for part in (sacl, dacl, owner, group):
        offsets.append(position if part else 0)
        position += len(part)
    control = 0x801F if info.control is None else info.control
    head = SecurityDescriptorHeader.build(dict(revision=1, sbz1=0, control=control, owner_offset=offsets[2],
                                               group_offset=offsets[3], sacl_offset=offsets[0],
                                               dacl_offset=offsets[1]))
    return head + sacl + dacl + owner + group


BITS_DACL = ((0x01, "S-1-5-7"), (0x00, None), (0x00, "S-1-5-32-544"), (0x00, "S-1-5-32-580"),
             (0x00, "S-1-15-2-1"))       # None: the owner; every ACE grants/denies 0x000F003F


def default_security(owner_sid: str, integrity_rid: int) -> SecurityInfo:
    """The descriptor BITS gives a new job (§5.4): owner = group, integrity label, fixed DACL."""
    def ace(ace_type: int, sid: str, mask: int) -> Ace:
        return Ace(ace_type=ace_type, ace_type_name=ACE_TYPE_NAMES[ace_type], flags=0, mask=mask, sid=sid,
                   sid_name=WELL_KNOWN_SIDS.get(sid))

    label = f"S-1-16-{integrity_rid}"
    return SecurityInfo(owner_integrity_rid=integrity_rid, owner_integrity_level=INTEGRITY_LEVELS.get(integrity_rid),
                        token_unknown=[0, 1, 1, 0], control=0x801F, owner=owner_sid, group=owner_sid,
                        integrity_label=label, sacl=[ace(0x11, label, 1)],
                        dacl=[ace(kind, sid or owner_sid, 0x000F003F) for kind, sid in BITS_DACL])


def build_security_descriptor(owner_sid: str, integrity_rid: int) -> bytes:
    """Descriptor bytes for a synthetic job, shaped like the ones BITS writes."""
    return encode_security_descriptor(default_security(owner_sid, integrity_rid))
