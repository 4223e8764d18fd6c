"""The record model every stage shares: typed dataclasses, enums and flag sets.

Decoders fill these; writers and rules read them through `to_dict()`, the one
place that decides how a field looks outside Python (FILETIMEs become ISO text
plus the raw integer; unknown enum values stay numbers; flag sets keep unknown bits).
"""

from __future__ import annotations

import dataclasses
import operator
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum, IntFlag
from typing import Any, TypeVar

from .text import RepairedText, is_valid, matches, repaired, repaired_path
from .timeutil import datetime_to_filetime, filetime_to_iso


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
R = TypeVar("R", bound="Record")


def enum_or_int(enum_type: type[E], value: int) -> E | int:
    """Known values become members; unknown ones stay plain numbers (never dropped)."""
    try:
        return enum_type(value)
    except ValueError:
        return int(value)


def flag_names(flag_type: type[IntFlag], value: int) -> list[str]:
    """Names of the set bits, lowest first, plus `0x..` for bits the enum does not know."""
    names = _FLAG_NAMES.get((flag_type, value))
    if names is None:
        names = [member.name for member in flag_type if member.value & value]
        unknown = value & ~sum(m.value for m in flag_type)
        if unknown:
            names.append(f"0x{unknown:x}")
        names = tuple(names)
        if len(_FLAG_NAMES) < 4096:
            _FLAG_NAMES[(flag_type, value)] = names
    return list(names)


#: Flag values repeat across records; the names are computed once per (type, value).
_FLAG_NAMES: dict[tuple[type, int], tuple[str, ...]] = {}


def flags_to_dict(flag_type: type[IntFlag], value: int | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {"value": value, "hex": f"0x{value:x}", "names": flag_names(flag_type, value)}
    if flag_type is CostFlags and value in COST_FLAG_PRESETS:
        out["preset"] = COST_FLAG_PRESETS[value]
    return out


# Field metadata tags: how to_dict shows a field. (Every record class has a docstring: without
# one, @dataclass builds it from inspect.signature, which costs start-up time.)
FILETIME = {"kind": "filetime"}
OMIT_NONE = {"omit_none": True}          # left out of to_dict while None
OMIT_EMPTY = {"omit_empty": True}        # left out of to_dict while empty (raw_strings of clean evidence)


def _flags(flag_type: type[IntFlag]) -> dict[str, Any]:
    return {"kind": "flags", "flag_type": flag_type}


#: Types `_plain` returns unchanged (exact types: an IntEnum is an int but shows its name).
_AS_IS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    kind = value.__class__
    if kind in _AS_IS:
        return value
    if kind is list:
        return [v if v.__class__ in _AS_IS else _plain(v) for v in value]
    if kind is dict:
        return {k: v if v.__class__ in _AS_IS else _plain(v) for k, v in value.items()}
    if kind is bytes:
        return value.hex()
    to_dict = _PLANS.get(kind)
    if to_dict is not None:
        return to_dict(value)
    # Anything else (subclasses, tuples, other dataclasses): the general rules, in this order.
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


# to_dict of each dataclass is generated once per class from its field metadata (the way
# `dataclasses` generates __init__): one dict display instead of a loop over fields() with
# metadata look-ups per call. Fields: plain -> _plain (as-is types inline), "filetime" ->
# ISO text + the raw `_filetime` twin, "flags" -> flags_to_dict, "internal" -> left out.
_PLANS: dict[type, Any] = {}


def _make_to_dict(cls: type) -> Any:
    env: dict[str, Any] = {"AS_IS": _AS_IS, "plain": _plain, "iso": _filetime_text, "flags": flags_to_dict}
    items, optional = [], []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        if f.metadata.get("omit_none") or f.metadata.get("omit_empty"):
            optional.append((f.name, " is not None" if f.metadata.get("omit_none") else ""))
            continue
        name, kind = f.name, f.metadata.get("kind")
        if kind == "filetime":
            items.append(f"{name!r}: iso(v := obj.{name}), {name + '_filetime'!r}: v")
        elif kind == "flags":
            env[f"type_{name}"] = f.metadata["flag_type"]
            items.append(f"{name!r}: flags(type_{name}, obj.{name})")
        else:
            items.append(f"{name!r}: v if (v := obj.{name}).__class__ in AS_IS else plain(v)")
    body = ",\n        ".join(items)
    source = f"def to_dict(obj):\n    out = {{\n        {body}\n    }}\n"
    for name, test in optional:   # present only when set: records without it look as they always did
        source += f"    if (v := obj.{name}){test}:\n        out[{name!r}] = plain(v)\n"
    source += "    return out\n"
    exec(compile(source, f"<to_dict of {cls.__name__}>", "exec"), env)
    _PLANS[cls] = to_dict = env["to_dict"]
    return to_dict


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.compare)
    return names


_ISO_TEXT: dict[int, str | None] = {}
_NOT_SEEN = object()


def _filetime_text(value: Any) -> str | None:
    """filetime_to_iso, remembered: a job repeats its times (modified = completed = inactivity
    base) and files of one server share Last-Modified; formatting one costs microseconds."""
    if value.__class__ is not int:
        return filetime_to_iso(value)
    text = _ISO_TEXT.get(value, _NOT_SEEN)
    if text is _NOT_SEEN:
        if len(_ISO_TEXT) >= 8192:
            _ISO_TEXT.clear()
        text = _ISO_TEXT[value] = filetime_to_iso(value)
    return text


def _dataclass_to_dict(obj: Any) -> dict[str, Any]:
    to_dict = _PLANS.get(obj.__class__) or _make_to_dict(obj.__class__)
    return to_dict(obj)


class Record:
    """Mixin: a JSON-ready dict of all fields (deterministic, no Python objects left).

    Equality and repr are the ones @dataclass would generate, written once here: generating
    them per class (exec of generated source) was most of the model's import time.
    """

    __slots__ = ()          # lets records declared with slots=True (one per log event) skip the __dict__

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _field_names(self.__class__))

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        return f"{self.__class__.__qualname__}({shown})"

    def to_dict(self) -> dict[str, Any]:
        return _dataclass_to_dict(self)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The inverse of `to_dict` (also takes shorter forms: enum names, ints, ISO or raw times).

        Raises ValueError naming the offending field ("state: unknown JobState name 'RUNING'").
        """
        return record_from_dict(cls, data)


def _text_fields(cls: type) -> tuple[str, ...]:
    """Names of a record class's fields that hold text (str or str | None)."""
    names = _TEXT_FIELDS.get(cls)
    if names is None:
        hints = typing.get_type_hints(cls)
        names = _TEXT_FIELDS[cls] = tuple(
            f.name for f in dataclasses.fields(cls)
            if hints[f.name] is str or (typing.get_origin(hints[f.name]) in (typing.Union, types.UnionType)
                                        and str in typing.get_args(hints[f.name])))
    return names


_TEXT_FIELDS: dict[type, tuple[str, ...]] = {}
_TEXT_GETTERS: dict[type, Any] = {}


def _all_ascii(record: Any) -> bool:
    """The common case, decided at C speed: every text field is None or ASCII."""
    getter = _TEXT_GETTERS.get(record.__class__)
    if getter is None:
        names = _text_fields(record.__class__)
        getter = _TEXT_GETTERS[record.__class__] = (operator.attrgetter(*names) if len(names) > 1
                                                   else (lambda r, g=operator.attrgetter(*names): (g(r),))
                                                   if names else (lambda r: ()))
    try:
        return "".join(filter(None, getter(record))).isascii()
    except TypeError:                      # a field holds something that is not text: look field by field
        return False


def keep_raw_strings(record: Any, repair=repaired) -> None:
    """Move text that is not valid Unicode out of `record`'s text fields: the field keeps the text
    with U+FFFD per bad unit, `record.raw_strings[field]` the hex of the exact source bytes.

    Called where strings enter the model (decoders, provenance); idempotent.
    """
    if _all_ascii(record):
        return
    raw_strings = record.raw_strings
    for name in _text_fields(record.__class__):
        value = getattr(record, name)
        if value is None or (value.__class__ is str and (value.isascii() or is_valid(value))):
            continue
        if not isinstance(value, RepairedText):
            value = repair(value)
            if not isinstance(value, RepairedText):
                continue
        raw_strings[name] = value.raw.hex()
        setattr(record, name, str(value))


def stored_text(record: Any, name: str, default: Any = "") -> Any:
    """What an encoder writes for a text field: the kept source bytes while the text still stands
    for them (`raw_strings`), else the text; `default` when the field is empty."""
    value = getattr(record, name)
    if not value:
        return default
    raw = record.raw_strings.get(name)
    if raw is not None:
        try:
            data = bytes.fromhex(raw)
        except ValueError:
            raise ValueError(f"raw_strings.{name}: {raw[:40]!r} is not hex text") from None
        if matches(value, data):
            return data
    return value


@dataclass(slots=True, eq=False, repr=False)
class Location(Record):
    """One place an identical copy of a record was found (see Provenance.locations)."""

    source_path: str
    offset: int | None = None
    recovered_from: str | None = None
    table: str | None = None
    record_index: int | None = None
    partition: str | None = None
    snapshot: str | None = None
    volume_offset: int | None = None
    allocation: str | None = None
    path_in_evidence: str | None = None
    raw_strings: dict[str, str] = field(default_factory=dict, metadata=OMIT_EMPTY)  # field -> hex of path bytes

    def __post_init__(self) -> None:
        keep_raw_strings(self, repaired_path)

    @classmethod
    def of(cls, provenance: "Provenance") -> "Location":
        return cls(**{name: getattr(provenance, name) for name in _LOCATION_FIELDS},
                   raw_strings={k: v for k, v in provenance.raw_strings.items() if k in _LOCATION_FIELDS})

    def same_place(self, other: "Location") -> bool:
        """The same bytes, however they were reached (a file in an image, or that image's volume)."""
        return (self.source_path, self.offset, self.table, self.record_index) == \
            (other.source_path, other.offset, other.table, other.record_index)


@dataclass(slots=True, eq=False, repr=False)
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
    container: str | None = None            # the evidence item: collection folder, zip, disk image
    host: str | None = None                 # SYSTEM hive ComputerName, else collection / zip / image name
    host_source: str | None = None          # "SYSTEM hive" | "folder name" | "archive name" | "image name"
    partition: str | None = None            # "p1" ... in a partitioned image
    snapshot: str | None = None             # "vss1" ... a Volume Shadow Copy store; None = current volume
    path_in_evidence: str | None = None     # the source file's path inside the image / zip / collection
    source_size: int | None = None          # bytes
    file_times: dict[str, str] | None = None  # the source file's file-system times (ISO 8601 UTC), if known
    volume_offset: int | None = None        # disk images: the bytes' offset from the start of their volume
    allocation: str | None = None           # disk images: where on the volume (ALLOCATION_KINDS)
    locations: list[Location] | None = None  # every place an identical copy was found (this one first), if several
    raw_strings: dict[str, str] = field(default_factory=dict, metadata=OMIT_EMPTY)  # field -> hex of path bytes

    def __post_init__(self) -> None:
        # Where evidence paths become provenance: names that are not UTF-8 are repaired here.
        keep_raw_strings(self, repaired_path)

    def add_locations(self, others: "list[Location]") -> None:
        """Record further places of the same record (this one stays first; a place is listed once)."""
        places = self.locations or [Location.of(self)]
        for other in others:
            if not any(other.same_place(place) for place in places):
                places.append(other)
        self.locations = places if len(places) > 1 else None


#: Provenance.allocation: where on a disk image's volume a carved record's bytes lie.
ALLOCATION_KINDS = ("unallocated", "allocated file", "file slack", "unpartitioned", "no file system")
_LOCATION_FIELDS = tuple(f.name for f in dataclasses.fields(Location) if f.name != "raw_strings")


@dataclass(slots=True, eq=False, repr=False)
class Ace(Record):
    """One access-control entry of the job's descriptor (§1.5)."""

    ace_type: int
    ace_type_name: str
    flags: int
    mask: int | None
    sid: str | None
    sid_name: str | None


@dataclass(slots=True, eq=False, repr=False)
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


@dataclass(slots=True, eq=False, repr=False)
class JobError(Record):
    """The last error BITS recorded for the job (§5.6)."""

    hresult: int | None
    hresult_hex: str | None
    context: ErrorContext | int | None
    form: int                               # 21 or 25 byte record
    extra: str | None = None
    unknown: dict[str, Any] = field(default_factory=dict)
    raw_strings: dict[str, str] = field(default_factory=dict, metadata=OMIT_EMPTY)

    def __post_init__(self) -> None:
        keep_raw_strings(self)        # text that is not valid Unicode never stays in a field


@dataclass(slots=True, eq=False, repr=False)
class Timer(Record):
    """One of the optional timer windows (§5.8)."""

    slot: str                               # no_progress | error | retry (meanings inferred, §5.8)
    start: int = field(default=0, metadata=FILETIME)
    end: int = field(default=0, metadata=FILETIME)


@dataclass(slots=True, eq=False, repr=False)
class CustomHeaders(Record):
    """Present when the job has custom HTTP headers; their text is DPAPI-encrypted (§5.9)."""

    plain_length: int
    blob_length: int
    dpapi_provider: str | None = None
    dpapi_master_key: str | None = None
    dpapi_description: str | None = None
    dpapi_blob: bytes = b""
    unknown: int = 0


@dataclass(slots=True, eq=False, repr=False)
class FileRange(Record):
    """A byte range of a file added with ranges (§6.1); length -1 = to the end."""

    offset: int
    length: int


@dataclass(slots=True, eq=False, repr=False)
class JobFile(Record):
    """A file of a job (ESE `Files` row or legacy inline record, §6, §7.4)."""

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
    raw_strings: dict[str, str] = field(default_factory=dict, metadata=OMIT_EMPTY)  # field -> hex (UTF-16LE)

    def __post_init__(self) -> None:
        keep_raw_strings(self)        # text that is not valid Unicode never stays in a field


@dataclass(slots=True, eq=False, repr=False)
class Job(Record):
    """A BITS job with every field its record holds (§5, §7.3)."""

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
    package_family_name: str | None = None  # packaged (AppX/MSIX) creator, Windows 11 24H2+ (§5.10.1)
    application_id: str | None = None       # the creator's application id within its package, as stored
    http_method: str | None = None
    aux_string: str | None = None
    extra: bytes = b""                      # bytes between inner and outer footer (double marker)
    unknown: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    partial_reason: str | None = None
    undecoded: bytes = b""                  # bytes after the last field that validated
    blob_size: int | None = None
    provenance: Provenance | None = None
    history: JobHistory | None = field(default=None, metadata=OMIT_NONE)   # event logs and processes
    raw_strings: dict[str, str] = field(default_factory=dict, metadata=OMIT_EMPTY)  # field -> hex (UTF-16LE)

    def __post_init__(self) -> None:
        keep_raw_strings(self)        # text that is not valid Unicode never stays in a field

    @property
    def is_upload(self) -> bool:
        return self.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY)


# --------------------------------------------------------------------------- event logs and hives
# What the other places Windows keeps about BITS say (docs/EVENTLOGS.md): normalised event-log
# records, the BITS operations a command line performs, the service's configuration, and the
# history that joins them to one job.


@dataclass(slots=True)
class LogEvent(Record):
    """One event-log record that concerns BITS, with its EventData kept as the log wrote it.

    Provenance: source_path = the .evtx file, source_kind = "evtx", table = the channel,
    record_index = the EventRecordID.
    """

    time: int | None = field(default=None, metadata=FILETIME)   # System/TimeCreated
    source: str = ""                        # bits-client | sysmon | security | powershell | system
    event_id: int = 0
    version: int | None = None
    action: str = ""                        # "job created", "transfer stopped" ... (docs/EVENTLOGS.md)
    computer: str | None = None
    user_sid: str | None = None             # System/Security UserID
    job_id: str | None = None
    file_id: str | None = None              # Bits-Client transferId
    title: str | None = None
    owner: str | None = None                # DOMAIN\user as the log names it
    process_path: str | None = None         # the process that created the job (event 3)
    process_id: int | None = None
    url: str | None = None
    local_name: str | None = None
    file_count: int | None = None
    bytes_total: int | None = None
    bytes_transferred: int | None = None
    hresult: int | None = None
    hresult_hex: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None


@dataclass(slots=True)
class BitsOperation(Record):
    """What one bitsadmin switch or BITS cmdlet does to a job (docs/EVENTLOGS.md, "Command lines")."""

    operation: str                          # create, addfile, transfer, setnotifycmdline, resume, ...
    tool: str                               # bitsadmin | powershell
    job: str | None = None                  # the job as named on the command line (title or {GUID})
    remote_name: str | None = None
    local_name: str | None = None
    program: str | None = None              # SetNotifyCmdLine program
    arguments: str | None = None            # SetNotifyCmdLine parameters
    value: str | None = None                # other settings (retry delay, headers, priority ...)
    options: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ProcessEvent(Record):
    """A process start (Sysmon 1, Security 4688) or PowerShell script/pipeline record that touches BITS."""

    time: int | None = field(default=None, metadata=FILETIME)
    source: str = ""
    event_id: int = 0
    computer: str | None = None
    image: str | None = None
    command_line: str | None = None
    process_id: int | None = None
    parent_image: str | None = None
    parent_command_line: str | None = None
    parent_process_id: int | None = None
    user: str | None = None
    operations: list[BitsOperation] = field(default_factory=list)
    notify_execution: bool = False          # started by the BITS service host: a notify command ran
    job_ids: list[str] = field(default_factory=list)   # jobs it was linked to
    linked_by: str | None = None            # how: "job id", "title", "time"
    provenance: Provenance | None = None


@dataclass
class ServiceConfig(Record):
    """The BITS service as `sc qc bits` would show it, read offline from the SYSTEM hive, with the
    BITS policies of the SOFTWARE hive."""

    control_set: str | None = None
    start: int | None = None
    start_name: str | None = None           # BOOT SYSTEM AUTO MANUAL DISABLED
    delayed_autostart: bool | None = None
    image_path: str | None = None
    service_dll: str | None = None
    object_name: str | None = None          # the account the service runs as
    service_type: int | None = None
    key_last_written: str | None = None     # Services\BITS last write (ISO 8601 UTC)
    other_control_sets: dict[str, Any] = field(default_factory=dict)  # name -> {start, image_path, service_dll}
    policies: dict[str, Any] = field(default_factory=dict)           # Policies\Microsoft\Windows\BITS values
    job_inactivity_timeout_days: int | None = None                   # from the policy, else None (90)
    warnings: list[str] = field(default_factory=list)
    provenance: Provenance | None = None


@dataclass
class LogCoverage(Record):
    """What the event logs read for one host cover, beside what its databases show: the evidence for
    "cleared or missing Bits-Client log next to a database with activity"."""

    host: str | None = None
    logs: list[str] = field(default_factory=list)          # the event log files read for this host
    bits_client_log: str | None = None                     # the Bits-Client/Operational file, if read
    bits_client_records: int = 0
    bits_client_first: int | None = field(default=None, metadata=FILETIME)
    bits_client_last: int | None = field(default=None, metadata=FILETIME)
    cleared: list[LogEvent] = field(default_factory=list)  # System 104 / Security 1102 of the BITS channels
    database_jobs: int = 0
    database_last_activity: int | None = field(default=None, metadata=FILETIME)
    provenance: Provenance | None = None


@dataclass
class JobHistory(Record):
    """Everything the logs and process evidence say about one job, joined by job GUID (and by title
    and time for command lines)."""

    log_only: bool = False                  # the job is not in any database read: the logs alone know it
    owner_account: str | None = None        # DOMAIN\user from the logs (the database keeps the SID)
    creator_image: str | None = None        # Bits-Client event 3 processPath
    creator_process_id: int | None = None
    computer: str | None = None
    events: list[LogEvent] = field(default_factory=list)
    processes: list[ProcessEvent] = field(default_factory=list)       # command lines that made or changed it
    notify_executions: list[ProcessEvent] = field(default_factory=list)
    inactivity_timeout_days: int | None = None  # the JobInactivityTimeout policy of the job's host (else 90)


# --------------------------------------------------------------------------- from_dict
# Added for the forge (specs are written in the to_dict shape): one generic inverse of
# `_dataclass_to_dict`, driven by the same field metadata and the type hints.

_HINTS: dict[type, dict[str, Any]] = {}
_ISO_TIME = re.compile(r"(?P<main>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d{1,7}))?(?P<tz>Z|[+-]\d\d:\d\d)?\Z")


def record_from_dict(cls: type[R], data: Any, path: str = "") -> R:
    """Build a record of type `cls` from its `to_dict()` form; errors name the field path."""
    if not isinstance(data, dict):
        raise ValueError(f"{path.rstrip('.') or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    twins = {f"{name}_filetime": name for name, f in fields.items() if f.metadata.get("kind") == "filetime"}
    for key in data:
        if key not in fields and key not in twins:
            raise ValueError(f"{path}{key}: unknown field of {cls.__name__}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        where = f"{path}{name}"
        if f.metadata.get("kind") == "filetime":
            if name in data or f"{name}_filetime" in data:
                values[name] = _filetime_from(data.get(name), data.get(f"{name}_filetime"), where)
            continue
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                values[name] = None          # required positional fields are all Optional
            continue
        value = data[name]
        if f.metadata.get("kind") == "flags":
            values[name] = _flags_from(f.metadata["flag_type"], value, where)
        else:
            values[name] = _value_from(hints[name], value, where)
    return cls(**values)


def _filetime_from(text: Any, raw: Any, where: str) -> int | None:
    if raw is not None:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 1 << 64:
            raise ValueError(f"{where}_filetime: expected a FILETIME integer, got {raw!r}")
        if text is not None and _filetime_from(text, None, where) != raw:
            raise ValueError(f"{where}: {text!r} disagrees with {where}_filetime {raw}")
        return raw
    if text is None or (isinstance(text, int) and not isinstance(text, bool)):
        if text is not None and not 0 <= text < 1 << 64:
            raise ValueError(f"{where}: FILETIME {text} out of range")
        return text
    if isinstance(text, datetime):          # YAML timestamps arrive as datetime objects
        when = text if text.tzinfo else text.replace(tzinfo=timezone.utc)
        return datetime_to_filetime(when.astimezone(timezone.utc))
    match = _ISO_TIME.match(str(text))
    if not match:
        raise ValueError(f"{where}: {text!r} is not an ISO 8601 time (2025-03-14T09:26:53.5897932+00:00)")
    try:
        base = datetime.fromisoformat(match["main"] + ("+00:00" if match["tz"] in (None, "Z") else match["tz"]))
    except ValueError as exc:
        raise ValueError(f"{where}: {text!r}: {exc}") from None
    ticks = datetime_to_filetime(base.astimezone(timezone.utc).replace(microsecond=0))
    return ticks + int((match["frac"] or "0").ljust(7, "0"))


def _flags_from(flag_type: type[IntFlag], value: Any, where: str) -> int | None:
    """Flags: an int, "0x..", a name, "A|B", a list of names, or the to_dict mapping."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        if value is not None and not 0 <= value < 1 << 32:
            raise ValueError(f"{where}: {value} does not fit in 32 bits")
        return value
    if isinstance(value, dict):
        if "value" not in value:
            raise ValueError(f"{where}: a flags mapping needs 'value'")
        return _flags_from(flag_type, value["value"], where)
    if isinstance(value, str):
        text = value.strip()
        if text.lower().startswith("0x"):
            try:
                return _flags_from(flag_type, int(text, 16), where)
            except ValueError:
                raise ValueError(f"{where}: {value!r} is not a hex number") from None
        value = [part.strip() for part in text.split("|") if part.strip()]
    if isinstance(value, list):
        total = 0
        presets = {name: number for number, name in COST_FLAG_PRESETS.items()} if flag_type is CostFlags else {}
        for name in value:
            if isinstance(name, int) and not isinstance(name, bool):
                total |= name
            elif isinstance(name, str) and name.lower().startswith("0x"):
                total |= _flags_from(flag_type, name, where)
            elif isinstance(name, str) and name.upper() in flag_type.__members__:
                total |= flag_type[name.upper()].value
            elif isinstance(name, str) and name.upper() in presets:
                total |= presets[name.upper()]
            else:
                known = ", ".join(flag_type.__members__)
                raise ValueError(f"{where}: unknown {flag_type.__name__} name {name!r} (known: {known})")
        return total
    raise ValueError(f"{where}: expected flags (int, names or mapping), got {type(value).__name__}")


def _value_from(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ValueError(f"{where}: must not be null")
        enums = [o for o in options if isinstance(o, type) and issubclass(o, IntEnum)]
        if enums:
            return _enum_from(enums[0], value, where, allow_int=int in options)
        rest = [o for o in options if o is not type(None)]
        if len(rest) == 1:
            return _value_from(rest[0], value, where)
        raise ValueError(f"{where}: unsupported field type {hint}")   # pragma: no cover - model has none
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_value_from(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, Record):
        return record_from_dict(hint, value, f"{where}.")
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return _enum_from(hint, value, where, allow_int=False)
    if hint is bytes:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected hex text, got {type(value).__name__}")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{where}: {value[:40]!r} is not hex text") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected text, got {type(value).__name__} {value!r}")
        return value
    raise ValueError(f"{where}: unsupported field type {hint}")       # pragma: no cover


def _enum_from(enum_type: type[E], value: Any, where: str, *, allow_int: bool) -> E | int:
    if isinstance(value, str):
        member = enum_type.__members__.get(value.strip().upper())
        if member is None:
            known = ", ".join(enum_type.__members__)
            raise ValueError(f"{where}: unknown {enum_type.__name__} name {value!r} (known: {known})")
        return member
    if isinstance(value, int) and not isinstance(value, bool):
        if allow_int:
            return enum_or_int(enum_type, value)
        return enum_type(value)
    raise ValueError(f"{where}: expected a {enum_type.__name__} name or number, got {value!r}")
