"""Job records (FORMAT.md §5) <-> Job: the ESE blob, and the sections legacy records share with it.

Encoding is the exact inverse of decoding, so that `decode_job_blob(encode_job(job)) == job`.
"""

from __future__ import annotations

import struct
import uuid
from typing import TYPE_CHECKING, Any, Sequence

from ..formats.markers import ALL_JOB_MARKERS, DEFAULT_JOB_MARKER, DPAPI_PROVIDER, marker_label
from ..formats.plain import MAX_WSTR_UNITS, guid_text
from ..model import (
    WELL_KNOWN_SIDS,
    CustomHeaders,
    ErrorContext,
    Job,
    JobError,
    JobPriority,
    JobState,
    JobType,
    ProxyUsage,
    Timer,
    enum_or_int,
    keep_raw_strings,
    stored_text,
)
from .sections import BlobError, SectionWalk, hex_or_none, shared, unhex, walk_sections
from .security import build_security_descriptor, decode_security

if TYPE_CHECKING:
    from construct import Container

TIMER_SLOTS = ("no_progress", "error", "retry")


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



def split_markers(data: bytes) -> tuple[bytes | None, int]:
    """Detect the double-marker case (§5.2): returns (outer marker or None, header offset)."""
    if len(data) < 0x30:
        return None, 0
    second = data[0x10:0x20]
    (type_at_1c,) = struct.unpack_from("<I", data, 0x1C)
    if second in ALL_JOB_MARKERS or type_at_1c not in (0, 1, 2):
        return data[:0x10], 0x10
    return None, 0


_HEAD = struct.Struct("<16sIIII16s")      # JobHeader: marker, unk_10, priority, state, type, job id
#: The largest priority, state and type a job record holds (§9.2): the last value of each enum.
MAX_PRIORITY, MAX_STATE, MAX_TYPE = int(max(JobPriority)), int(max(JobState)), int(max(JobType))
_U32 = struct.Struct("<I")
_SID_START = "S-1-".encode("utf-16-le")
_ZERO_GUID = bytes(16)


def job_head_span(data: bytes, offset: int = 0, stop: int | None = None) -> int:
    """Bytes from `offset` to the end of the owner string when a job record whose head passes
    `job_head_problems` can start there, else 0. Struct only, no construct: resync and carving
    use it to skip, before decoding anything, the hits that cannot start a record.

    Header values in range, a non-zero job id, five strings whose declared lengths are plausible
    and fit in `data` (up to `stop`), and an owner string that starts with "S-1-".
    """
    stop = len(data) if stop is None else min(stop, len(data))
    end = offset + _HEAD.size
    if offset < 0 or end > stop:
        return 0
    _, _, priority, state, kind, job_id = _HEAD.unpack_from(data, offset)
    if priority > MAX_PRIORITY or state > MAX_STATE or kind > MAX_TYPE or job_id == _ZERO_GUID:
        return 0
    for index in range(5):
        if end + 4 > stop:
            return 0
        (units,) = _U32.unpack_from(data, end)
        end += 4
        if units > MAX_WSTR_UNITS or end + 2 * units > stop:
            return 0
        if index == 4 and data[end:end + 8] != _SID_START:
            return 0
        end += 2 * units
    return end - offset


def job_head_problems(job: Job) -> list[str]:
    """Checks of FORMAT.md §9.2 that tell a job record from bytes that only contain a marker."""
    problems = []
    for name, value, limit in (("priority", job.priority, MAX_PRIORITY), ("state", job.state, MAX_STATE),
                               ("type", job.type, MAX_TYPE)):
        if value is None or int(value) > limit:
            problems.append(f"{name} {value} out of range")
    if job.job_id in (None, "00000000-0000-0000-0000-000000000000"):
        problems.append("job id missing or zero")
    if job.owner_sid is not None and not job.owner_sid.startswith("S-1-"):
        problems.append(f"owner {job.owner_sid[:40]!r} is not a SID")
    if job.owner_sid is None:
        problems.append("strings do not decode")
    return problems


def decode_job_blob(data: bytes, sections: Sequence[tuple[str, Any]] | str = "ese_job",
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
                setattr(job, name, shared(strings[name]) if name == "owner_sid" else strings[name])
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
            unknown["unk6"] = hex_or_none(counters.unk6)
    timers = parsed.get("timers")
    if timers is not None and not isinstance(timers, dict):
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
    keep_raw_strings(job)
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
        unknown[name] = hex_or_none(network.get(name))


def _apply_trailer(job: Job, trailer: Container, unknown: dict[str, Any]) -> None:
    job.cost_flags = trailer.get("cost_flags")
    job.network_guid = trailer.get("net_a_guid")
    job.creator_image = shared(trailer.get("creator_image"))
    job.http_method = shared(trailer.get("http_method"))
    job.aux_string = shared(trailer.get("aux_string"))
    for name in ("unk_c0", "unk_c1", "net_a_flag", "net_b_flag", "unk_e1"):
        unknown[name] = trailer.get(name)
    optional = trailer.get("optional_fields")
    if optional:
        unknown["optional_fields"] = _apply_optional_fields(job, optional)
    for name in ("zeros42", "zeros21", "unk_d16", "unk_e3"):
        unknown[name] = hex_or_none(trailer.get(name))
    if trailer.get("net_b_guid") is not None and trailer.net_b_guid != trailer.get("net_a_guid"):
        unknown["net_b_guid"] = trailer.net_b_guid


#: The optional trailer fields (§5.10.1) whose meaning is known, by position: the model field
#: that holds a text value found there.
NAMED_OPTIONAL_FIELDS = ("package_family_name", "application_id")


def _apply_optional_fields(job: Job, fields: Sequence[Container]) -> list[Any]:
    """Known optional fields onto the job; returns the layout that rebuilds all of them: per
    field, the model field's name (text at a known position), None (absent, flag 0), a number
    (flag 1 + u32), {"text": ...} (text at another position) or {"hex": ...} (bytes not understood)."""
    layout: list[Any] = []
    for index, field in enumerate(fields):
        kind, value = field["kind"], field["value"]
        if kind == "text" and index < len(NAMED_OPTIONAL_FIELDS):
            setattr(job, NAMED_OPTIONAL_FIELDS[index], value)
            layout.append(NAMED_OPTIONAL_FIELDS[index])
        elif kind == "text":
            layout.append({"text": value})
        elif kind == "absent":
            layout.append(None)
        elif kind == "u32":
            layout.append(value)
        else:
            layout.append({"hex": bytes(value).hex()})
    return layout


#: Layout written for a job with package identity but no recorded layout: as the one real record.
DEFAULT_OPTIONAL_LAYOUT = ("package_family_name", "application_id", 0x25)


def optional_fields_to_sections(job: Job, layout: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The inverse of _apply_optional_fields (ValueError when the layout cannot hold the job's values)."""
    if layout is None:
        if job.package_family_name is None and job.application_id is None:
            return []
        layout = DEFAULT_OPTIONAL_LAYOUT
    fields = []
    for index, item in enumerate(layout):
        if item in NAMED_OPTIONAL_FIELDS:
            if NAMED_OPTIONAL_FIELDS.index(item) != index:
                raise ValueError(f"unknown.optional_fields[{index}]: {item} belongs at position "
                                 f"{NAMED_OPTIONAL_FIELDS.index(item)}")
            value = getattr(job, item)
            fields.append(dict(kind="absent", value=None) if value is None else dict(kind="text", value=value))
        elif item is None:
            fields.append(dict(kind="absent", value=None))
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 1 << 32:
            fields.append(dict(kind="u32", value=item))
        elif isinstance(item, dict) and set(item) == {"text"} and isinstance(item["text"], str):
            fields.append(dict(kind="text", value=item["text"]))
        elif isinstance(item, dict) and set(item) == {"hex"}:
            fields.append(dict(kind="raw", value=unhex(item["hex"], 0)))
        else:
            raise ValueError(f"unknown.optional_fields[{index}]: {item!r} is not a field name, null, a u32, "
                             "{text: ...} or {hex: ...}")
    for index, name in enumerate(NAMED_OPTIONAL_FIELDS):
        if getattr(job, name) is not None and (index >= len(layout) or layout[index] != name):
            raise ValueError(f"{name} is set but unknown.optional_fields has no place for it at position {index}")
    return fields


def decode_error(record: Container) -> JobError:
    if "code" in record:                                  # 25-byte form
        hresult = record.code & 0xFFFFFFFF
        rest = {k: record[k] for k in ("code", "err_unk_a", "err_unk_b", "err_unk_c", "err_unk_d",
                                       "err_unk_e")}
        return JobError(hresult=hresult, hresult_hex=f"0x{hresult:08X}", context=None, form=25, unknown=rest)
    error = JobError(
        hresult=record.hresult,
        hresult_hex=f"0x{record.hresult:08X}",
        context=enum_or_int(ErrorContext, record.context),
        form=21,
        extra=record.extra if record.has_extra else None,
        unknown={"err_unk0": record.err_unk0, "err_unk2": record.err_unk2, "err_unk4": record.err_unk4,
                 "has_extra": record.has_extra},
    )
    keep_raw_strings(error)
    return error


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
    optional = optional_fields_to_sections(job, job.unknown.get("optional_fields"))
    return dict(
        header=dict(marker=marker, unk_10=unknown["unk_10"], priority=int(job.priority or 0),
                    state=state, type=int(job.type or 0), job_id=job.job_id),
        strings=dict(display_name=stored_text(job, "display_name"), description=stored_text(job, "description"),
                     notify_program=stored_text(job, "notify_program"),
                     notify_parameters=stored_text(job, "notify_parameters"),
                     owner_sid=stored_text(job, "owner_sid"), notify_flags=3 if job.notify_flags is None else job.notify_flags),
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
            unk6=unhex(unknown.get("unk6", default_unk6), 6),
            inactivity_base_time=job.inactivity_base_time or 0, expiration_time=job.expiration_time or 0),
        timers=timers,
        network=dict(
            proxy_usage=int(job.proxy_usage or 0),
            proxy_list=dict(present=int(job.proxy_list is not None), value=stored_text(job, "proxy_list")),
            proxy_bypass=dict(present=int(job.proxy_bypass is not None), value=stored_text(job, "proxy_bypass")),
            unk_a1=unknown["unk_a1"], file_acl_flags=job.file_acl_flags or 0,
            unk_a3=unhex(unknown["unk_a3"], 3),
            custom_headers=dict(present=1, data=dict(plain_len=headers.plain_length, unk=headers.unknown,
                                                     dpapi_blob=headers.dpapi_blob))
            if headers else dict(present=0, data=None),
            unk_b24=unhex(unknown["unk_b24"], 24), security_flags=job.security_flags or 0,
            unk_b4=unknown["unk_b4"],
            max_download_time=7776000 if job.max_download_time is None else job.max_download_time),
        trailer=dict(
            unk_c0=unknown["unk_c0"], unk_c1=unknown["unk_c1"],
            cost_flags=0x80000067 if job.cost_flags is None else job.cost_flags,
            zeros42=unhex(unknown["zeros42"], 42), net_a_flag=unknown["net_a_flag"],
            net_a_guid=job.network_guid or "00000000-0000-0000-0000-000000000000",
            net_b_flag=unknown["net_b_flag"] if "net_b_flag" in job.unknown else int(not optional),
            optional_fields=optional,
            net_b_guid=unknown["net_b_guid"] or job.network_guid or "00000000-0000-0000-0000-000000000000",
            zeros21=unhex(unknown["zeros21"], 21), creator_image=stored_text(job, "creator_image"),
            unk_d16=unhex(unknown["unk_d16"], 16), http_method=stored_text(job, "http_method", "GET"),
            unk_e3=unhex(unknown["unk_e3"], 3), aux_string=stored_text(job, "aux_string"), unk_e1=unknown["unk_e1"]),
    )


def _error_to_record(error: JobError) -> dict[str, Any]:
    u = error.unknown
    return dict(err_unk0=u.get("err_unk0", 0), hresult=error.hresult or 0, err_unk2=u.get("err_unk2", 1),
                context=int(error.context if error.context is not None else 5), err_unk4=u.get("err_unk4", 3),
                has_extra=u.get("has_extra", int(error.extra is not None)),
                extra=None if error.extra is None else stored_text(error, "extra"))


def encode_job(job: Job) -> bytes:
    """Build an ESE job blob from a Job (footer = header marker; outer marker and extra restored)."""
    from ..formats import job as job_fmt

    sections = job_to_sections(job)
    body = job_fmt.EseJobBlob.build(dict(sections, footer=sections["header"]["marker"]))
    if job.outer_marker:
        outer = uuid.UUID(job.outer_marker).bytes_le
        return outer + body + job.extra + outer
    return body + job.undecoded
