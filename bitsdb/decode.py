"""Blob <-> model: the procedural glue between the construct sections and the dataclasses.

Decoding walks the sections in order and stops at the first one that does not
validate; everything before it is kept, the rest is kept as raw bytes and the
record is marked partial with the reason. Encoding is the exact inverse, so that
`decode_job_blob(encode_job(job)) == job` (tests rely on it).
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from construct import Container, ConstructError, Struct, Tell

from .formats import file as file_fmt
from .formats import job as job_fmt
from .formats.markers import (
    ALL_JOB_MARKERS,
    DEFAULT_JOB_MARKER,
    DPAPI_PROVIDER,
    FILE_LIST_MARKER,
    FILE_MARKER,
    PROGRESS_TERMINATOR,
    marker_label,
)
from .formats.primitives import Acl, BinarySid, SecurityDescriptorHeader, guid_text
from .model import (
    INTEGRITY_LEVELS,
    WELL_KNOWN_SIDS,
    Ace,
    CustomHeaders,
    ErrorContext,
    FileRange,
    Job,
    JobError,
    JobFile,
    JobPriority,
    JobState,
    JobType,
    ProxyUsage,
    SecurityInfo,
    Timer,
    enum_or_int,
)

TIMER_SLOTS = ("no_progress", "error", "retry")
ACE_TYPE_NAMES = {0x00: "ACCESS_ALLOWED", 0x01: "ACCESS_DENIED", 0x02: "SYSTEM_AUDIT",
                  0x11: "SYSTEM_MANDATORY_LABEL"}
FILETIME_1990 = 125911584000000000
FILETIME_2100 = 159029568000000000
BYTES_UNKNOWN = 0xFFFFFFFFFFFFFFFF

# Values every real record carries where the meaning is unknown (FORMAT.md §5); the
# encoder uses them for synthetic jobs so that built blobs look like Windows' own.
JOB_UNKNOWN_DEFAULTS: dict[str, Any] = {
    "unk_10": 0, "tok_unk0": 0, "tok_unk2": 1, "tok_unk3": 1, "tok_unk4": 0,
    "unk_a1": 0, "unk_a3": "000000",
    "unk_b24": "000000000100000000000000000001000000000000000000", "unk_b4": 0,
    "unk_c0": 0, "unk_c1": 0, "zeros42": "00" * 42, "net_a_flag": 1, "net_b_flag": 1,
    "net_b_guid": None, "zeros21": "00" * 21, "unk_d16": "03000000120000000300000013000000",
    "unk_e3": "000000", "unk_e1": 0,
}


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


def parse_prefix(schema: Any, data: bytes, offset: int) -> tuple[Container | None, int, str | None]:
    """Parse `schema` at `offset`; on failure keep the longest prefix of its fields that parses."""
    probe = _probe(schema)
    chunk = data[offset:] if offset else data
    fast = probe.parse_fast(chunk)
    if fast is not None:
        return fast.value, offset + fast.end, None
    try:
        parsed = probe.parse(chunk)
        return parsed.value, offset + parsed.end, None
    except (ConstructError, UnicodeDecodeError, OverflowError, ValueError) as exc:
        error = _describe(exc)
    if not isinstance(schema, Struct):
        return None, offset, error
    best: tuple[Container | None, int] = (None, offset)
    for count in range(1, len(schema.subcons)):
        try:
            parsed = _Probe(Struct(*schema.subcons[:count])).parse(data[offset:])   # one-off: not cached
        except (ConstructError, UnicodeDecodeError, OverflowError, ValueError):
            break
        best = (parsed.value, offset + parsed.end)
    return best[0], best[1], error


#: Parses of one schema before its compiled twin is made. Compiling the whole job record
#: (~12 ms) costs about what compiled parsing saves on 40 records, so small inputs never pay.
COMPILE_AFTER = 40


class _Probe:
    """`schema` followed by its end offset, so one parse gives both value and size.

    `parse` is the interpreted reference: its errors are the ones reported. Once a schema
    has been used COMPILE_AFTER times, `parse_fast` answers with construct's compiled
    parser (3-4x faster) whenever that is certain to give the same result.
    """

    __slots__ = ("value_schema", "interpreted", "compiled", "uses")

    def __init__(self, schema: Any) -> None:
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
            compiled = self.compiled = _compile(self.interpreted)
        if compiled is False:
            return None
        try:
            parsed = compiled.parse(data + _SHORT_READ_PAD)
        except Exception:                  # any failure: the reference parse decides and explains
            return None
        return parsed if parsed.end <= len(data) else None


_SHORT_READ_PAD = b"\x00" * 16


def _compile(schema: Any) -> Any:
    try:
        return schema.compile()
    except Exception:                      # a construct without a compiled form: stay interpreted
        return False


_PROBES: dict[int, _Probe] = {}


def _probe(schema: Any) -> _Probe:
    probe = _PROBES.get(id(schema))
    if probe is None or probe.value_schema is not schema:
        if len(_PROBES) >= 256:        # schemas made per record (unknown legacy tails): start afresh
            _PROBES.clear()
        probe = _PROBES[id(schema)] = _Probe(schema)
    return probe


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:200]


_WHOLE: dict[tuple, Struct] = {}


def _whole_record(sections: Sequence[tuple[str, Any]]) -> Struct:
    key = tuple(id(schema) for _, schema in sections)
    whole = _WHOLE.get(key)
    if whole is None:
        if len(_WHOLE) >= 256:
            _WHOLE.clear()
        whole = _WHOLE[key] = Struct(*(name / schema for name, schema in sections))
    return whole


def walk_sections(data: bytes, offset: int, sections: Sequence[tuple[str, Any]]) -> SectionWalk:
    """Parse named sections one after the other; stop at the first that fails.

    Well-formed records take one parse of all sections (the common case, twice as fast);
    anything else is walked section by section to keep what validates.
    """
    whole = _probe(_whole_record(sections))
    chunk = data[offset:] if offset else data
    try:
        probe = whole.parse_fast(chunk) or whole.parse(chunk)
        errors = probe.value.get("errors")
        if errors is None or errors.count == 0 or _plausible_times(probe.value.get("counters")):
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


def _choose_error_form(data: bytes, offset: int, following: Sequence[tuple[str, Any]]) -> Any:
    """21-byte records (verified) unless only the 25-byte form leaves plausible times after it."""
    counters = dict(following).get("counters", job_fmt.JobCounters)
    for form in (job_fmt.ErrorSection21, job_fmt.ErrorSection25):
        try:
            probe = _probe(form).parse(data[offset:])
            if probe.value.count == 0:
                return job_fmt.ErrorSection21
            times = counters.parse(data[offset + probe.end:])
        except (ConstructError, ValueError):
            continue
        if _plausible_times(times):
            return form
    return job_fmt.ErrorSection21


def _plausible_times(counters: Container | None) -> bool:
    return counters is not None and plausible_filetime(counters.creation_time, allow_zero=False) \
        and plausible_filetime(counters.modification_time)


# --------------------------------------------------------------------------- jobs


def split_markers(data: bytes) -> tuple[bytes | None, int]:
    """Detect the double-marker case (§5.2): returns (outer marker or None, header offset)."""
    if len(data) < 0x30:
        return None, 0
    second = data[0x10:0x20]
    (type_at_1c,) = struct.unpack_from("<I", data, 0x1C)
    if second in ALL_JOB_MARKERS or type_at_1c not in (0, 1, 2):
        return data[:0x10], 0x10
    return None, 0


def job_head_problems(job: Job) -> list[str]:
    """Checks of FORMAT.md §9.2 that tell a job record from bytes that only contain a marker."""
    problems = []
    for name, value, limit in (("priority", job.priority, 3), ("state", job.state, 8), ("type", job.type, 2)):
        if value is None or int(value) > limit:
            problems.append(f"{name} {value} out of range")
    if job.job_id in (None, "00000000-0000-0000-0000-000000000000"):
        problems.append("job id missing or zero")
    if job.owner_sid is not None and not job.owner_sid.startswith("S-1-"):
        problems.append(f"owner {job.owner_sid[:40]!r} is not a SID")
    if job.owner_sid is None:
        problems.append("strings do not decode")
    return problems


def decode_job_blob(data: bytes, sections: Sequence[tuple[str, Any]] = job_fmt.ESE_JOB_SECTIONS,
                    *, require_known_marker: bool = False) -> Job:
    """Decode a job record (ESE blob by default; legacy readers pass their own sections)."""
    data = bytes(data)
    outer, start = split_markers(data)
    marker = data[start:start + 16]
    if len(marker) < 16:
        raise BlobError(f"{len(data)} bytes is too short for a job record")
    walk = walk_sections(data, start, sections)
    job = job_from_sections(walk.parsed)
    job.blob_size = len(data)
    if outer is not None:
        job.outer_marker = guid_text(outer)
    if "strings" not in walk.parsed or ("owner" not in walk.parsed):
        problems = job_head_problems(job) or [walk.failure or "header does not validate"]
        raise BlobError("not a job record: " + "; ".join(problems))
    if marker not in ALL_JOB_MARKERS:
        problems = job_head_problems(job)
        if require_known_marker or problems or "file_list" not in walk.parsed:
            raise BlobError("unknown marker and the record does not validate: "
                            + "; ".join(problems or [walk.failure or "no file list"]))
    _finish_tail(job, data, walk, {marker, outer} - {None})
    return job


def _finish_tail(job: Job, data: bytes, walk: SectionWalk, footers: set[bytes]) -> None:
    """Footer, double-marker extra, and anything undecoded: kept, and the record marked partial."""
    end = walk.end
    if walk.failure is not None:
        job.partial = True
        job.partial_reason = f"stopped at {walk.failure} (offset 0x{end:x})"
        job.undecoded = data[end:]
        return
    if data[end:end + 16] in footers:
        rest = data[end + 16:]
        if rest:
            if job.outer_marker and rest[-16:] in footers:
                job.extra = rest[:-16]
            else:
                job.partial = True
                job.partial_reason = f"{len(rest)} bytes after the footer"
                job.undecoded = rest
        return
    tail = data[end:]
    job.partial = True
    job.undecoded = tail[:-16] if tail[-16:] in footers else tail
    if tail[-16:] in footers:
        job.partial_reason = f"{len(job.undecoded)} bytes of unknown fields before the footer"
    elif not tail:
        job.partial_reason = "record ends without its footer (truncated)"
    else:
        job.partial_reason = f"{len(tail)} bytes after the last known field and no footer"


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def job_from_sections(parsed: dict[str, Container]) -> Job:
    """Map parsed sections (any subset, in order) onto a Job; absent fields stay None."""
    header = parsed.get("header")
    job = Job(job_id=header.get("job_id") if header else None)
    unknown: dict[str, Any] = {}
    if header:
        job.marker = guid_text(header.marker)
        job.marker_label = marker_label(header.marker)
        unknown["unk_10"] = header.get("unk_10")
        if "priority" in header:
            job.priority = enum_or_int(JobPriority, header.priority)
        if "state" in header:
            job.state = enum_or_int(JobState, header.state)
        if "type" in header:
            job.type = enum_or_int(JobType, header.type)
    strings = parsed.get("strings")
    if strings:
        for name in ("display_name", "description", "notify_program", "notify_parameters", "owner_sid",
                     "notify_flags"):
            if name in strings:
                setattr(job, name, strings[name])
        if job.owner_sid is not None:
            job.owner_name = WELL_KNOWN_SIDS.get(job.owner_sid)
    owner = parsed.get("owner")
    if owner and "owner_integrity_rid" in owner:
        job.security = decode_security(owner)
        for key in ("tok_unk0", "tok_unk2", "tok_unk3", "tok_unk4"):
            unknown[key] = owner.get(key)
    file_list = parsed.get("file_list")
    if file_list and "file_ids" in file_list:
        job.file_ids = list(file_list.file_ids)
        if "files" in file_list:      # legacy inline records: decoded by the legacy reader
            job.files = list(file_list.files)
    errors = parsed.get("errors")
    if errors and "records" in errors:
        job.errors = [decode_error(record) for record in errors.records]
    counters = parsed.get("counters")
    if counters:
        for name in ("transient_error_count", "min_retry_delay", "no_progress_timeout", "creation_time",
                     "modification_time", "modification_time_2", "completion_time", "inactivity_base_time",
                     "expiration_time"):
            if name in counters:
                setattr(job, name, counters[name])
        if "unk6" in counters:
            unknown["unk6"] = _hex(counters.unk6)
    timers = parsed.get("timers")
    if timers is not None and not isinstance(timers, Container):
        job.timers = [Timer(slot=slot, start=t.window.start, end=t.window.end)
                      for slot, t in zip(TIMER_SLOTS, timers) if t.present]
    network = parsed.get("network")
    if network:
        _apply_network(job, network, unknown)
    trailer = parsed.get("trailer")
    if trailer:
        _apply_trailer(job, trailer, unknown)
    job.unknown = {k: v for k, v in unknown.items() if v is not None or k == "net_b_guid"}
    if "net_b_guid" in job.unknown and job.unknown["net_b_guid"] is None:
        del job.unknown["net_b_guid"]
    return job


def _apply_network(job: Job, network: Container, unknown: dict[str, Any]) -> None:
    if "proxy_usage" in network:
        job.proxy_usage = enum_or_int(ProxyUsage, network.proxy_usage)
    for name in ("proxy_list", "proxy_bypass"):
        if name in network and network[name].get("present"):
            setattr(job, name, network[name].value)
    for name in ("file_acl_flags", "security_flags", "max_download_time"):
        if name in network:
            setattr(job, name, network[name])
    headers = network.get("custom_headers")
    if headers and headers.get("present") and headers.get("data") is not None:
        job.custom_headers = decode_custom_headers(headers.data)
    for name in ("unk_a1", "unk_b4"):
        unknown[name] = network.get(name)
    for name in ("unk_a3", "unk_b24"):
        unknown[name] = _hex(network.get(name))


def _apply_trailer(job: Job, trailer: Container, unknown: dict[str, Any]) -> None:
    job.cost_flags = trailer.get("cost_flags")
    job.network_guid = trailer.get("net_a_guid")
    job.creator_image = trailer.get("creator_image")
    job.http_method = trailer.get("http_method")
    job.aux_string = trailer.get("aux_string")
    for name in ("unk_c0", "unk_c1", "net_a_flag", "net_b_flag", "unk_e1"):
        unknown[name] = trailer.get(name)
    for name in ("zeros42", "zeros21", "unk_d16", "unk_e3"):
        unknown[name] = _hex(trailer.get(name))
    if trailer.get("net_b_guid") is not None and trailer.net_b_guid != trailer.get("net_a_guid"):
        unknown["net_b_guid"] = trailer.net_b_guid


def decode_error(record: Container) -> JobError:
    if "code" in record:                                  # 25-byte form
        hresult = record.code & 0xFFFFFFFF
        rest = {k: record[k] for k in ("code", "err_unk_a", "err_unk_b", "err_unk_c", "err_unk_d",
                                       "err_unk_e")}
        return JobError(hresult=hresult, hresult_hex=f"0x{hresult:08X}", context=None, form=25, unknown=rest)
    return JobError(
        hresult=record.hresult,
        hresult_hex=f"0x{record.hresult:08X}",
        context=enum_or_int(ErrorContext, record.context),
        form=21,
        extra=record.extra if record.has_extra else None,
        unknown={"err_unk0": record.err_unk0, "err_unk2": record.err_unk2, "err_unk4": record.err_unk4,
                 "has_extra": record.has_extra},
    )


def decode_custom_headers(data: Container) -> CustomHeaders:
    """Presence, sizes and the DPAPI envelope; the plaintext needs the owner's master key."""
    blob = bytes(data.dpapi_blob)
    headers = CustomHeaders(plain_length=data.plain_len, blob_length=data.blob_len, dpapi_blob=blob,
                            unknown=data.unk)
    # DPAPI_BLOB: u32 version, provider GUID, u32 mk version, master key GUID, u32 flags,
    # u32 description length (bytes), UTF-16 description.
    if len(blob) >= 48 and blob[4:20] == DPAPI_PROVIDER:
        headers.dpapi_provider = str(uuid.UUID(bytes_le=blob[4:20]))
        headers.dpapi_master_key = str(uuid.UUID(bytes_le=blob[24:40]))
        (desc_len,) = struct.unpack_from("<I", blob, 44)
        if 48 + desc_len <= len(blob):
            headers.dpapi_description = blob[48:48 + desc_len].decode("utf-16-le", "replace").rstrip("\x00")
    return headers


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
        decoded = _decode_descriptor(raw)
        if len(_DESCRIPTORS) >= _MAX_DESCRIPTORS:
            _DESCRIPTORS.clear()
        _DESCRIPTORS[raw] = decoded
    fields, dacl, sacl = decoded
    for name, value in fields.items():
        setattr(info, name, value)
    # Fresh Ace objects for every job: readers set `sid_name` on them (evidence name resolution).
    info.dacl = [Ace(*values) for values in dacl]
    info.sacl = [Ace(*values) for values in sacl]
    return info


#: Decoded descriptors by their bytes: jobs of one owner carry the same descriptor.
_DESCRIPTORS: dict[bytes, tuple[dict[str, Any], tuple[tuple, ...], tuple[tuple, ...]]] = {}
_MAX_DESCRIPTORS = 1024


def _decode_descriptor(raw: bytes) -> tuple[dict[str, Any], tuple[tuple, ...], tuple[tuple, ...]]:
    """SecurityInfo fields of a descriptor, and its ACEs as Ace field tuples (immutable, cacheable)."""
    fields: dict[str, Any] = {}
    dacl: list[Ace] = []
    sacl: list[Ace] = []
    try:
        sd = SecurityDescriptorHeader.parse(raw)
        fields["control"] = sd.control
        fields["owner"] = BinarySid.parse(raw[sd.owner_offset:]) if sd.owner_offset else None
        fields["group"] = BinarySid.parse(raw[sd.group_offset:]) if sd.group_offset else None
        dacl = _aces(Acl.parse(raw[sd.dacl_offset:])) if sd.dacl_offset else []
        sacl = _aces(Acl.parse(raw[sd.sacl_offset:])) if sd.sacl_offset else []
    except (ConstructError, ValueError, OverflowError) as exc:
        fields["decode_error"] = _describe(exc)
    else:
        for ace in sacl:
            if ace.ace_type == 0x11:
                fields["integrity_label"] = ace.sid
    return fields, tuple(dataclasses.astuple(a) for a in dacl), tuple(dataclasses.astuple(a) for a in sacl)


def _aces(acl: Container) -> list[Ace]:
    out = []
    for ace in acl.aces:
        body = ace.body
        sid = body.sid if isinstance(body, Container) else None
        out.append(Ace(ace_type=ace.ace_type, ace_type_name=ACE_TYPE_NAMES.get(ace.ace_type, str(ace.ace_type)),
                       flags=ace.ace_flags, mask=body.mask if isinstance(body, Container) else None,
                       sid=sid, sid_name=WELL_KNOWN_SIDS.get(sid) if sid else None))
    return out


def encode_security_descriptor(info: SecurityInfo) -> bytes:
    """The inverse of decode_security: a self-relative descriptor laid out like BITS' own (§5.4):
    SACL (padded to 1008 bytes, as Windows writes it), DACL, owner, group; nothing after."""

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


def _unhex(value: Any, size: int) -> bytes:
    if value is None:
        return b"\x00" * size
    return bytes.fromhex(value) if isinstance(value, str) else bytes(value)


def job_to_sections(job: Job) -> dict[str, Any]:
    """The inverse of job_from_sections: values for EseJobBlob.build (header..trailer)."""
    unknown = {**JOB_UNKNOWN_DEFAULTS, **job.unknown}
    marker = uuid.UUID(job.marker).bytes_le if job.marker else DEFAULT_JOB_MARKER
    state = int(job.state or 0)
    default_unk6 = bytes([0, {6: 1, 4: 2}.get(state, 0), 0, 0, 0, 1]).hex()
    security = job.security
    rid = security.owner_integrity_rid if security else 0x2000
    sd = security.raw if security and security.raw else build_security_descriptor(job.owner_sid or "S-1-5-18", rid)
    timers = []
    by_slot = {t.slot: t for t in job.timers}
    for slot in TIMER_SLOTS:
        timer = by_slot.get(slot)
        timers.append(dict(present=1, window=dict(start=timer.start, end=timer.end)) if timer
                      else dict(present=0, window=None))
    headers = job.custom_headers
    return dict(
        header=dict(marker=marker, unk_10=unknown["unk_10"], priority=int(job.priority or 0),
                    state=state, type=int(job.type or 0), job_id=job.job_id),
        strings=dict(display_name=job.display_name or "", description=job.description or "",
                     notify_program=job.notify_program or "", notify_parameters=job.notify_parameters or "",
                     owner_sid=job.owner_sid or "", notify_flags=3 if job.notify_flags is None else job.notify_flags),
        owner=dict(tok_unk0=unknown["tok_unk0"], owner_integrity_rid=rid, tok_unk2=unknown["tok_unk2"],
                   tok_unk3=unknown["tok_unk3"], tok_unk4=unknown["tok_unk4"], security_descriptor=sd),
        file_list=dict(file_ids=list(job.file_ids)),
        errors=dict(records=[_error_to_record(e) for e in job.errors]),
        counters=dict(
            transient_error_count=job.transient_error_count or 0,
            min_retry_delay=600 if job.min_retry_delay is None else job.min_retry_delay,
            no_progress_timeout=1209600 if job.no_progress_timeout is None else job.no_progress_timeout,
            creation_time=job.creation_time or 0, modification_time=job.modification_time or 0,
            modification_time_2=job.modification_time_2 or 0, completion_time=job.completion_time or 0,
            unk6=_unhex(unknown.get("unk6", default_unk6), 6),
            inactivity_base_time=job.inactivity_base_time or 0, expiration_time=job.expiration_time or 0),
        timers=timers,
        network=dict(
            proxy_usage=int(job.proxy_usage or 0),
            proxy_list=dict(present=int(job.proxy_list is not None), value=job.proxy_list),
            proxy_bypass=dict(present=int(job.proxy_bypass is not None), value=job.proxy_bypass),
            unk_a1=unknown["unk_a1"], file_acl_flags=job.file_acl_flags or 0,
            unk_a3=_unhex(unknown["unk_a3"], 3),
            custom_headers=dict(present=1, data=dict(plain_len=headers.plain_length, unk=headers.unknown,
                                                     dpapi_blob=headers.dpapi_blob))
            if headers else dict(present=0, data=None),
            unk_b24=_unhex(unknown["unk_b24"], 24), security_flags=job.security_flags or 0,
            unk_b4=unknown["unk_b4"],
            max_download_time=7776000 if job.max_download_time is None else job.max_download_time),
        trailer=dict(
            unk_c0=unknown["unk_c0"], unk_c1=unknown["unk_c1"],
            cost_flags=0x80000067 if job.cost_flags is None else job.cost_flags,
            zeros42=_unhex(unknown["zeros42"], 42), net_a_flag=unknown["net_a_flag"],
            net_a_guid=job.network_guid or "00000000-0000-0000-0000-000000000000",
            net_b_flag=unknown["net_b_flag"],
            net_b_guid=unknown["net_b_guid"] or job.network_guid or "00000000-0000-0000-0000-000000000000",
            zeros21=_unhex(unknown["zeros21"], 21), creator_image=job.creator_image or "",
            unk_d16=_unhex(unknown["unk_d16"], 16), http_method=job.http_method or "GET",
            unk_e3=_unhex(unknown["unk_e3"], 3), aux_string=job.aux_string or "", unk_e1=unknown["unk_e1"]),
    )


def _error_to_record(error: JobError) -> dict[str, Any]:
    u = error.unknown
    return dict(err_unk0=u.get("err_unk0", 0), hresult=error.hresult or 0, err_unk2=u.get("err_unk2", 1),
                context=int(error.context if error.context is not None else 5), err_unk4=u.get("err_unk4", 3),
                has_extra=u.get("has_extra", int(error.extra is not None)), extra=error.extra)


def encode_job(job: Job) -> bytes:
    """Build an ESE job blob from a Job (footer = header marker; outer marker and extra restored)."""
    sections = job_to_sections(job)
    body = job_fmt.EseJobBlob.build(dict(sections, footer=sections["header"]["marker"]))
    if job.outer_marker:
        outer = uuid.UUID(job.outer_marker).bytes_le
        return outer + body + job.extra + outer
    return body + job.undecoded


# --------------------------------------------------------------------------- files


def file_from_body(body: Container, file_id: str | None = None, layout: str = "download") -> JobFile:
    """Map a parsed FileBody (possibly a prefix of it) onto a JobFile."""
    f = JobFile(file_id=file_id, layout=layout)
    for name in ("local_name", "remote_name", "temp_name", "bytes_transferred", "drive", "volume",
                 "local_attributes", "remote_last_modified"):
        if name in body:
            setattr(f, name, body[name])
    if "bytes_total" in body:
        f.bytes_total = -1 if body.bytes_total == BYTES_UNKNOWN else body.bytes_total
    if "ranges" in body:
        f.ranges = [FileRange(offset=r.offset, length=-1 if r.length == BYTES_UNKNOWN else r.length)
                    for r in body.ranges]
    f.unknown = {k: body[k] for k in ("unk_f0", "unk_f1", "unk_f2", "size_2", "unk_flag") if k in body}
    if body.get("unk_bytes"):
        f.unknown["unk_bytes"] = bytes(body.unk_bytes).hex()
    return f


#: A well-formed download blob between its two markers, parsed in one go (the common case).
_FILE_SECTIONS = (("body", file_fmt.FileBody), ("progress_a", file_fmt.ProgressA),
                  ("progress_b", file_fmt.ProgressB))


def decode_file_blob(data: bytes, file_id: str | None = None, layout_hint: str | None = None) -> JobFile:
    """Decode a Files.Blob. Upload layout (S(dissect)) when the hint says so or download fails."""
    data = bytes(data)
    if len(data) < 20:
        raise BlobError(f"{len(data)} bytes is too short for a file record")
    if layout_hint != "upload" and data[:16] == FILE_MARKER:
        whole = _probe(_whole_record(_FILE_SECTIONS)).parse_fast(data[16:])
        if whole is not None and data[16 + whole.end:] == FILE_MARKER:
            body = whole.value.body
            if body.local_name or body.remote_name:
                f = file_from_body(body, file_id, "download")
                _apply_progress(f, whole.value.progress_a, whole.value.progress_b)
                return f
    layouts = ["upload", "download"] if layout_hint == "upload" else ["download", "upload"]
    first_error = None
    for layout in layouts:
        start = 16 if layout == "download" else 24
        if layout == "download" and data[:16] != FILE_MARKER:
            first_error = first_error or "does not start with the file marker"
            continue
        body, end, error = parse_prefix(file_fmt.FileBody, data, start)
        if body is None or "temp_name" not in body:
            first_error = first_error or f"file body: {error}"
            continue
        if not (body.local_name or body.remote_name):
            first_error = first_error or "no local or remote name"
            continue
        f = file_from_body(body, file_id, layout)
        if layout == "upload":
            (f.local_file_mtime,) = struct.unpack_from("<Q", data, 16)
            f.unknown["upload_marker"] = data[:16].hex()
        if error is not None:
            f.partial, f.partial_reason, f.undecoded = True, f"file body: {error} (offset 0x{end:x})", data[end:]
            return f
        _decode_progress(f, data, end)
        return f
    raise BlobError(f"not a file record: {first_error}")


def _decode_progress(f: JobFile, data: bytes, offset: int) -> None:
    a, end_a, error_a = parse_prefix(file_fmt.ProgressA, data, offset)
    b, end_b, error_b = (None, end_a, None)
    if error_a is None:
        b, end_b, error_b = parse_prefix(file_fmt.ProgressB, data, end_a)
    if error_a is None and error_b is None and data[end_b:] == FILE_MARKER:
        _apply_progress(f, a, b)
        return
    rest = data[offset:]
    f.partial = True
    f.undecoded = rest
    if not rest.endswith(FILE_MARKER):
        f.partial_reason = "record ends without its footer (truncated)"
    elif rest.count(PROGRESS_TERMINATOR) != 2:
        f.partial_reason = "progress blocks not understood"
    else:
        f.partial_reason = f"progress blocks not understood: {error_a or error_b or 'unexpected bytes'}"


def _apply_progress(f: JobFile, a: Container, b: Container) -> None:
    f.progress_complete = a["complete"]
    f.progress_bytes_done = a["bytes_done"]
    f.unknown.update(progress_a_unk16=bytes(a["unk_a16"]).hex(), progress_a_unk8=a["unk_a8"],
                     progress_b_unk0=b["unk_b0"], progress_b_unk6=bytes(b["unk_b6"]).hex(),
                     progress_b_unk12=bytes(b["unk_b12"]).hex(),
                     progress_b_entries=[[e["bytes_done"], e["unk"]] for e in b["entries"]])


def encode_file(f: JobFile) -> bytes:
    """Build a Files.Blob (download layout; upload layout per dissect's description)."""
    u = f.unknown
    total = BYTES_UNKNOWN if f.bytes_total in (None, -1) else f.bytes_total
    transferred = f.bytes_transferred or 0
    body = file_fmt.FileBody.build(dict(
        local_name=f.local_name or "", remote_name=f.remote_name or "", temp_name=f.temp_name or "",
        bytes_transferred=transferred, bytes_total=total, unk_f0=u.get("unk_f0", 0),
        drive=f.drive or "", volume=f.volume or "", unk_f1=u.get("unk_f1", 3), unk_f2=u.get("unk_f2", 0),
        size_2=u.get("size_2", total), local_attributes=0x80 if f.local_attributes is None else f.local_attributes,
        unk_count=len(bytes.fromhex(u.get("unk_bytes", ""))), unk_bytes=bytes.fromhex(u.get("unk_bytes", "")),
        unk_flag=u.get("unk_flag", 0),
        ranges=[dict(offset=r.offset, length=BYTES_UNKNOWN if r.length == -1 else r.length) for r in f.ranges],
        remote_last_modified=f.remote_last_modified or 0))
    if f.undecoded and f.partial:
        tail = f.undecoded
    else:
        complete = int(total != BYTES_UNKNOWN and transferred == total) if f.progress_complete is None \
            else f.progress_complete
        done = transferred if f.progress_bytes_done is None else f.progress_bytes_done
        tail = file_fmt.ProgressA.build(dict(unk_a16=_unhex(u.get("progress_a_unk16"), 16), complete=complete,
                                             bytes_done=done, unk_a8=u.get("progress_a_unk8", 0)))
        entries = u.get("progress_b_entries", [[transferred, 0]])
        tail += file_fmt.ProgressB.build(dict(
            unk_b0=u.get("progress_b_unk0", 1), unk_b6=_unhex(u.get("progress_b_unk6"), 6),
            unk_b12=_unhex(u.get("progress_b_unk12"), 12),
            entries=[dict(bytes_done=d, unk=x) for d, x in entries]))
        tail += FILE_MARKER
    if f.layout == "upload":
        head = _unhex(u.get("upload_marker"), 16) if u.get("upload_marker") else FILE_MARKER
        return head + struct.pack("<Q", f.local_file_mtime or 0) + body + tail
    return FILE_MARKER + body + tail


__all__ = ["BlobError", "decode_job_blob", "encode_job", "decode_file_blob", "encode_file",
           "job_from_sections", "file_from_body", "walk_sections", "parse_prefix", "build_security_descriptor",
           "FILE_LIST_MARKER"]
