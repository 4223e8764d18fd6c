"""The record model every stage shares: typed dataclasses, enums and flag sets.

Decoders fill these; writers and rules read them through `to_dict()`, the one
place that decides how a field looks outside Python (FILETIMEs become ISO text
plus the raw integer; unknown enum values stay numbers; flag sets keep unknown bits).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, TypeVar

from .timeutil import filetime_to_iso


class JobType(IntEnum):
    DOWNLOAD = 0
    UPLOAD = 1
    UPLOAD_REPLY = 2


class JobPriority(IntEnum):
    FOREGROUND = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class JobState(IntEnum):
    QUEUED = 0
    CONNECTING = 1
    TRANSFERRING = 2
    SUSPENDED = 3
    ERROR = 4
    TRANSIENT_ERROR = 5
    TRANSFERRED = 6
    ACKNOWLEDGED = 7
    CANCELLED = 8


class ProxyUsage(IntEnum):
    PRECONFIG = 0
    NO_PROXY = 1
    OVERRIDE = 2
    AUTODETECT = 3


class ErrorContext(IntEnum):
    NONE = 0
    UNKNOWN = 1
    GENERAL_QUEUE_MANAGER = 2
    QUEUE_MANAGER_NOTIFICATION = 3
    LOCAL_FILE = 4
    REMOTE_FILE = 5
    GENERAL_TRANSPORT = 6
    REMOTE_APPLICATION = 7
    SERVER_CERTIFICATE_CALLBACK = 8


class NotifyFlags(IntFlag):
    JOB_TRANSFERRED = 0x01
    JOB_ERROR = 0x02
    DISABLE = 0x04
    JOB_MODIFICATION = 0x08
    FILE_TRANSFERRED = 0x10
    FILE_RANGES_TRANSFERRED = 0x20


class SecurityFlags(IntFlag):
    ENABLE_CRL_CHECK = 0x0001
    IGNORE_CERT_CN_INVALID = 0x0002
    IGNORE_CERT_DATE_INVALID = 0x0004
    IGNORE_UNKNOWN_CA = 0x0008
    IGNORE_CERT_WRONG_USAGE = 0x0010
    REDIRECT_POLICY_ALLOW_REPORT = 0x0100
    REDIRECT_POLICY_DISALLOW = 0x0200
    ALLOW_HTTPS_TO_HTTP = 0x0800


class FileAclFlags(IntFlag):
    OWNER = 0x1
    GROUP = 0x2
    DACL = 0x4
    SACL = 0x8


class CostFlags(IntFlag):
    UNRESTRICTED = 0x01
    CAPPED_USAGE_UNKNOWN = 0x02
    BELOW_CAP = 0x04
    NEAR_CAP = 0x08
    OVERCAP_CHARGED = 0x10
    OVERCAP_THROTTLED = 0x20
    USAGE_BASED = 0x40
    ROAMING = 0x80
    RESERVED = 0x40000000
    IGNORE_CONGESTION = 0x80000000


#: Named cost-flag combinations from the BITS headers.
COST_FLAG_PRESETS = {
    0x8000007F: "TRANSFER_NOT_ROAMING",
    0x8000006F: "TRANSFER_NO_SURCHARGE",
    0x80000067: "TRANSFER_STANDARD",
    0x80000021: "TRANSFER_UNRESTRICTED",
    0x800000FF: "TRANSFER_ALWAYS",
}

INTEGRITY_LEVELS = {0x0000: "untrusted", 0x1000: "low", 0x2000: "medium", 0x2100: "medium_plus",
                    0x3000: "high", 0x4000: "system", 0x5000: "protected_process"}

WELL_KNOWN_SIDS = {
    "S-1-5-18": "SYSTEM",
    "S-1-5-19": "LOCAL SERVICE",
    "S-1-5-20": "NETWORK SERVICE",
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-580": "Remote Management Users",
    "S-1-15-2-1": "ALL APPLICATION PACKAGES",
    "S-1-5-7": "ANONYMOUS LOGON",
    "S-1-5-2": "NETWORK",
    "S-1-16-4096": "Low Mandatory Level",
    "S-1-16-8192": "Medium Mandatory Level",
    "S-1-16-12288": "High Mandatory Level",
    "S-1-16-16384": "System Mandatory Level",
}

E = TypeVar("E", bound=IntEnum)


def enum_or_int(enum_type: type[E], value: int) -> E | int:
    """Known values become members; unknown ones stay plain numbers (never dropped)."""
    try:
        return enum_type(value)
    except ValueError:
        return int(value)


def flag_names(flag_type: type[IntFlag], value: int) -> list[str]:
    """Names of the set bits, lowest first, plus `0x..` for bits the enum does not know."""
    names = [member.name for member in flag_type if member.value & value]
    unknown = value & ~sum(m.value for m in flag_type)
    if unknown:
        names.append(f"0x{unknown:x}")
    return names


def flags_to_dict(flag_type: type[IntFlag], value: int | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {"value": value, "hex": f"0x{value:x}", "names": flag_names(flag_type, value)}
    if flag_type is CostFlags and value in COST_FLAG_PRESETS:
        out["preset"] = COST_FLAG_PRESETS[value]
    return out


# Field metadata tags: how to_dict shows a field.
FILETIME = {"kind": "filetime"}


def _flags(flag_type: type[IntFlag]) -> dict[str, Any]:
    return {"kind": "flags", "flag_type": flag_type}


def _plain(value: Any) -> Any:
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value):
        return _dataclass_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dataclass_to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value = getattr(obj, f.name)
        kind = f.metadata.get("kind")
        if kind == "filetime":
            out[f.name] = filetime_to_iso(value)
            out[f.name + "_filetime"] = value
        elif kind == "flags":
            out[f.name] = flags_to_dict(f.metadata["flag_type"], value)
        else:
            out[f.name] = _plain(value)
    return out


class Record:
    """Mixin: a JSON-ready dict of all fields (deterministic, no Python objects left)."""

    def to_dict(self) -> dict[str, Any]:
        return _dataclass_to_dict(self)


@dataclass
class Provenance(Record):
    """Where a record came from, so every output line can be traced back to bytes."""

    source_path: str
    source_sha256: str | None = None
    source_kind: str | None = None          # InputKind value
    table: str | None = None                # "Jobs" / "Files" for ESE rows
    record_index: int | None = None         # row number within the table
    offset: int | None = None               # byte offset for raw/legacy/carved records
    recovered: bool = False
    recovered_from: str | None = None       # live table / db page / log / previous state / slack
    state_file: str | None = None           # legacy: current | previous
    container: str | None = None            # evidence item / image / snapshot, when known


@dataclass
class Ace(Record):
    ace_type: int
    ace_type_name: str
    flags: int
    mask: int | None
    sid: str | None
    sid_name: str | None


@dataclass
class SecurityInfo(Record):
    """The owner token block and the job's self-relative security descriptor (§5.4)."""

    owner_integrity_rid: int
    owner_integrity_level: str | None
    token_unknown: list[int]
    control: int | None = None
    owner: str | None = None
    group: str | None = None
    integrity_label: str | None = None
    dacl: list[Ace] = field(default_factory=list)
    sacl: list[Ace] = field(default_factory=list)
    raw: bytes = field(default=b"", metadata={"internal": True}, repr=False)
    decode_error: str | None = None


@dataclass
class JobError(Record):
    hresult: int | None
    hresult_hex: str | None
    context: ErrorContext | int | None
    form: int                               # 21 or 25 byte record
    extra: str | None = None
    unknown: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timer(Record):
    slot: str                               # no_progress | error | retry (meanings inferred, §5.8)
    start: int = field(default=0, metadata=FILETIME)
    end: int = field(default=0, metadata=FILETIME)


@dataclass
class CustomHeaders(Record):
    """Present when the job has custom HTTP headers; their text is DPAPI-encrypted (§5.9)."""

    plain_length: int
    blob_length: int
    dpapi_provider: str | None = None
    dpapi_master_key: str | None = None
    dpapi_description: str | None = None
    dpapi_blob: bytes = b""
    unknown: int = 0


@dataclass
class FileRange(Record):
    offset: int
    length: int


@dataclass
class JobFile(Record):
    file_id: str | None
    local_name: str | None = None
    remote_name: str | None = None
    temp_name: str | None = None
    bytes_transferred: int | None = None
    bytes_total: int | None = None          # -1: not yet known (BG_SIZE_UNKNOWN)
    drive: str | None = None
    volume: str | None = None
    local_attributes: int | None = None
    ranges: list[FileRange] = field(default_factory=list)
    remote_last_modified: int | None = field(default=None, metadata=FILETIME)
    local_file_mtime: int | None = field(default=None, metadata=FILETIME)   # upload layout only
    layout: str = "download"                # download | upload | legacy_inline
    progress_complete: int | None = None
    progress_bytes_done: int | None = None
    unknown: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    partial_reason: str | None = None
    undecoded: bytes = b""
    provenance: Provenance | None = None


@dataclass
class Job(Record):
    job_id: str | None
    marker: str | None = None
    marker_label: str | None = None
    outer_marker: str | None = None         # double-marker blobs (§5.2)
    type: JobType | int | None = None
    priority: JobPriority | int | None = None
    state: JobState | int | None = None
    display_name: str | None = None
    description: str | None = None
    notify_program: str | None = None
    notify_parameters: str | None = None
    notify_flags: int | None = field(default=None, metadata=_flags(NotifyFlags))
    owner_sid: str | None = None
    owner_name: str | None = None           # well-known SIDs only; never resolved from the analyst's machine
    security: SecurityInfo | None = None
    file_ids: list[str] = field(default_factory=list)
    files: list[JobFile] = field(default_factory=list)
    missing_file_ids: list[str] = field(default_factory=list)
    errors: list[JobError] = field(default_factory=list)
    transient_error_count: int | None = None
    min_retry_delay: int | None = None
    no_progress_timeout: int | None = None
    creation_time: int | None = field(default=None, metadata=FILETIME)
    modification_time: int | None = field(default=None, metadata=FILETIME)
    modification_time_2: int | None = field(default=None, metadata=FILETIME)
    completion_time: int | None = field(default=None, metadata=FILETIME)
    inactivity_base_time: int | None = field(default=None, metadata=FILETIME)
    expiration_time: int | None = field(default=None, metadata=FILETIME)
    timers: list[Timer] = field(default_factory=list)
    proxy_usage: ProxyUsage | int | None = None
    proxy_list: str | None = None
    proxy_bypass: str | None = None
    file_acl_flags: int | None = field(default=None, metadata=_flags(FileAclFlags))
    custom_headers: CustomHeaders | None = None
    security_flags: int | None = field(default=None, metadata=_flags(SecurityFlags))
    max_download_time: int | None = None
    cost_flags: int | None = field(default=None, metadata=_flags(CostFlags))
    network_guid: str | None = None
    creator_image: str | None = None
    http_method: str | None = None
    aux_string: str | None = None
    extra: bytes = b""                      # bytes between inner and outer footer (double marker)
    unknown: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    partial_reason: str | None = None
    undecoded: bytes = b""                  # bytes after the last field that validated
    blob_size: int | None = None
    provenance: Provenance | None = None

    @property
    def is_upload(self) -> bool:
        return self.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY)
