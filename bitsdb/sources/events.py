"""Event-log records -> plain BITS records: LogEvent (Bits-Client, System service events, Sysmon 3 of the
BITS service) and ProcessEvent (Sysmon 1, Security 4688, PowerShell 4103/4104/800).

Field names are those observed in real logs (../shared/docs/EVENTLOGS.md C.2, C.3), looked up
without regard to case. Every EventData value not mapped to a named field stays in `data`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..bitscmd import image_name, operations
from ..model import LogEvent, ProcessEvent, Provenance
from .evtx import LogScan, RawRecord, as_int, iter_records

BITS_CLIENT = "Microsoft-Windows-Bits-Client/Operational"
BITS_PROVIDER = "Microsoft-Windows-Bits-Client"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY = "Security"
SYSTEM = "System"
POWERSHELL_OPERATIONAL = "Microsoft-Windows-PowerShell/Operational"
WINDOWS_POWERSHELL = "Windows PowerShell"

LOG_CLEARED = 104                   # System: "The <channel> log file was cleared"
LOG_CLEARED_SECURITY = 1102         # Security: "The audit log was cleared"

#: channel -> (source label, event ids read; None = all)
CHANNELS: dict[str, tuple[str, frozenset[int] | None]] = {
    BITS_CLIENT: ("bits-client", None),
    SYSMON: ("sysmon", frozenset({1, 3})),
    SECURITY: ("security", frozenset({4688, LOG_CLEARED_SECURITY})),
    SYSTEM: ("system", frozenset({7036, 7040, 7045, LOG_CLEARED})),
    POWERSHELL_OPERATIONAL: ("powershell", frozenset({4103, 4104})),
    WINDOWS_POWERSHELL: ("powershell", frozenset({800})),
}
_CHANNELS_LOWER = {name.lower(): value for name, value in CHANNELS.items()}

#: Bits-Client/Operational event id -> action (docs/EVENTLOGS.md).
BITS_ACTIONS = {
    1: "job resumed", 2: "job suspended", 3: "job created", 4: "job completed", 5: "job cancelled",
    6: "notify command line set", 59: "transfer started", 60: "transfer stopped", 61: "transfer failed",
    63: "notify program returned an error", 64: "notify program failed to start", 209: "job property set",
    310: "peer-caching helper failed", 16384: "job cancelled by an administrator",
    16385: "job modified by an administrator", 16387: "job property changed by an administrator",
    16388: "job ownership taken by an administrator", 16389: "job cancelled after inactivity",
    16403: "file added to job",
}
SERVICE_ACTIONS = {7036: "service state changed", 7040: "service start type changed", 7045: "service installed",
                   LOG_CLEARED: "event log cleared", LOG_CLEARED_SECURITY: "event log cleared"}
BITS_SERVICE_NAMES = {"bits", "background intelligent transfer service"}

_KEYS = {  # LogEvent attribute -> EventData names (lower case), first present wins
    "job_id": ("jobid", "id", "jobguid", "guid"),
    "file_id": ("transferid",),
    "title": ("jobtitle", "name", "title", "jobname"),
    "owner": ("jobowner", "owner"),
    "process_path": ("processpath",),
    "process_id": ("processid",),
    "url": ("url", "remotename"),
    "local_name": ("localname",),
    "file_count": ("filecount",),
    "bytes_total": ("bytestotal", "filelength"),
    "bytes_transferred": ("bytestransferred",),
    "hresult": ("hr", "errorcode", "hresult"),
}
_GUID = re.compile(r"^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$", re.I)
_BITS_SVCHOST = re.compile(r"svchost(\.exe)?\"?\s.*-s\s+bits\b", re.I)
_NETSVCS = re.compile(r"svchost(\.exe)?\"?\s.*-k\s+netsvcs\b", re.I)
_POWERSHELL_CONTEXT = re.compile(r"^\s*(Host Application|HostApplication|User|UserId)\s*=\s*(.*?)\s*$", re.I | re.M)


def wanted(channel: str, event_id: int) -> bool:
    entry = _CHANNELS_LOWER.get(channel.lower())
    if entry is None:
        return False
    ids = entry[1]
    return ids is None or event_id in ids


_GUIDS: dict[str, str | None] = {}


def guid(value: Any) -> str | None:
    """Lower-case canonical GUID text, or None when `value` is not a GUID (remembered: a job's GUID
    recurs in every event of its lifecycle)."""
    if not isinstance(value, str):
        return None
    found = _GUIDS.get(value, "")
    if found == "":
        match = _GUID.match(value.strip())
        found = match.group(1).lower() if match else None
        if len(_GUIDS) >= 65536:
            _GUIDS.clear()
        _GUIDS[value] = found
    return found


_PLANS: dict[tuple, tuple] = {}


def _plan(data: dict[str, Any], event_id: int) -> tuple:
    """Which EventData key fills which LogEvent attribute, worked out once per shape of EventData."""
    shape = (event_id, *data)
    plan = _PLANS.get(shape)
    if plan is None:
        keys = {key.lower(): key for key in data}
        pairs = []
        for attribute, names in _KEYS.items():
            key = next((keys[name] for name in names if name in keys), None)
            if key is not None:
                pairs.append((attribute, key))
        if event_id == 3 and "string" in keys:             # Windows 7 form: string, string2, string3
            pairs += [("title", keys["string"])] if "title" not in dict(pairs) else []
            pairs += [("owner", keys["string2"])] if "owner" not in dict(pairs) and "string2" in keys else []
        plan = _PLANS[shape] = tuple(pairs)
        if len(_PLANS) > 4096:
            _PLANS.clear()
    return plan


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def hresult_hex(value: int | None) -> str | None:
    if value is None:
        return None
    return f"0x{value & 0xFFFFFFFF:08X}"


@dataclass
class LogReadResult:
    """What one .evtx file gave: normalised records, counts and problems (one line each)."""

    path: str
    sha256: str | None = None
    host: str | None = None                 # the evidence's host (hive ComputerName or folder name), if any
    container: str | None = None            # the evidence item the log came from
    events: list[LogEvent] = field(default_factory=list)
    processes: list[ProcessEvent] = field(default_factory=list)
    scan: LogScan | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def channels(self) -> dict[str, int]:
        return dict(self.scan.channels) if self.scan else {}


class Normaliser:
    """Turns RawRecords of one file into LogEvent / ProcessEvent; keeps the little state one log needs
    (process GUIDs of the BITS service host seen in Sysmon 1, to keep its Sysmon 3 connections)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.bits_hosts: set[str] = set()

    def provenance(self, record: RawRecord) -> Provenance:
        return Provenance(source_path=self.path, source_kind="evtx", table=record.channel,
                          record_index=record.record_id)

    def __call__(self, record: RawRecord) -> LogEvent | ProcessEvent | None:
        if record.provider == BITS_PROVIDER or record.channel.lower() == BITS_CLIENT.lower():
            return self.bits_event(record)
        source = _CHANNELS_LOWER.get(record.channel.lower(), ("", None))[0]
        if record.event_id in (LOG_CLEARED, LOG_CLEARED_SECURITY) and source in ("system", "security"):
            return self.log_cleared(record, source)
        if source == "system":
            return self.service_event(record)
        if source == "sysmon" and record.event_id == 3:
            return self.network_event(record)
        if source in ("sysmon", "security"):
            return self.process_start(record, source)
        if source == "powershell":
            return self.powershell(record)
        return None

    def bits_event(self, record: RawRecord) -> LogEvent:
        data = record.data
        values: dict[str, Any] = {}
        for attribute, key in _plan(data, record.event_id):
            values[attribute] = data.pop(key)
        event = LogEvent(
            time=record.time, source="bits-client", event_id=record.event_id, version=record.version,
            action=BITS_ACTIONS.get(record.event_id, f"event {record.event_id}"), computer=record.computer,
            user_sid=record.user_sid, job_id=guid(values.get("job_id")), file_id=guid(values.get("file_id")),
            title=_as_text(values.get("title")), owner=_as_text(values.get("owner")),
            process_path=_as_text(values.get("process_path")), process_id=as_int(values.get("process_id")),
            url=_as_text(values.get("url")), local_name=_as_text(values.get("local_name")),
            file_count=as_int(values.get("file_count")), bytes_total=as_int(values.get("bytes_total")),
            bytes_transferred=as_int(values.get("bytes_transferred")), hresult=as_int(values.get("hresult")),
            data=data, provenance=self.provenance(record))
        if event.job_id is None and values.get("job_id") is not None:
            event.data["jobId"] = values["job_id"]          # not a GUID: kept as written
        if event.event_id == 60 and event.hresult:
            event.action = "transfer stopped with a status"
        event.hresult_hex = hresult_hex(event.hresult)
        event.data["service_process_id"] = record.process_id
        return event

    def service_event(self, record: RawRecord) -> LogEvent | None:
        data = record.data
        values = [str(v) for v in data.values() if isinstance(v, (str, int))]
        name = str(data.get("ServiceName") or data.get("param4") or data.get("param1") or "")
        binary = data.get("Binary")
        if isinstance(binary, str) and binary:
            try:
                decoded = bytes.fromhex(binary).decode("utf-16-le", errors="ignore").split("/")[0]
            except ValueError:
                decoded = ""
            if decoded.strip().lower() in BITS_SERVICE_NAMES:
                name = decoded.strip()
        if name.strip().lower() not in BITS_SERVICE_NAMES and not any(
                v.strip().lower() in BITS_SERVICE_NAMES for v in values):
            return None
        return LogEvent(time=record.time, source="system", event_id=record.event_id, version=record.version,
                        action=SERVICE_ACTIONS.get(record.event_id, f"event {record.event_id}"),
                        computer=record.computer, user_sid=record.user_sid, title=name or None,
                        data=dict(data), provenance=self.provenance(record))

    def log_cleared(self, record: RawRecord, source: str) -> LogEvent:
        """Who cleared which log (System 104 names the channel; Security 1102 is the Security log)."""
        data = record.data
        channel = data.get("Channel") or (SECURITY if source == "security" else None)
        user = "\\".join(str(data[k]) for k in ("SubjectDomainName", "SubjectUserName") if data.get(k))
        return LogEvent(time=record.time, source=source, event_id=record.event_id, version=record.version,
                        action=SERVICE_ACTIONS[record.event_id], computer=record.computer, user_sid=record.user_sid,
                        title=_as_text(channel), owner=user or None, data=dict(data),
                        provenance=self.provenance(record))

    def network_event(self, record: RawRecord) -> LogEvent | None:
        data = record.data
        if str(data.get("ProcessGuid", "")).lower() not in self.bits_hosts:
            return None
        host = data.get("DestinationHostname") or data.get("DestinationIp")
        port = data.get("DestinationPort")
        url = f"{host}:{port}" if host and port else _as_text(host)
        return LogEvent(time=record.time, source="sysmon", event_id=3, version=record.version,
                        action="network connection by the BITS service", computer=record.computer,
                        user_sid=record.user_sid, process_path=_as_text(data.get("Image")),
                        process_id=as_int(data.get("ProcessId")), url=url, data=dict(data),
                        provenance=self.provenance(record))

    def process_start(self, record: RawRecord, source: str) -> ProcessEvent | None:
        data = record.data
        if source == "sysmon":
            image, command = data.get("Image"), data.get("CommandLine")
            pid, parent_pid = as_int(data.get("ProcessId")), as_int(data.get("ParentProcessId"))
            parent_image, parent_command = data.get("ParentImage"), data.get("ParentCommandLine")
            user = data.get("User")
            original = str(data.get("OriginalFileName") or "").lower()
            if _BITS_SVCHOST.search(str(command or "")):
                self.bits_hosts.add(str(data.get("ProcessGuid", "")).lower())
        else:
            image, command = data.get("NewProcessName"), data.get("CommandLine")
            pid, parent_pid = as_int(data.get("NewProcessId")), as_int(data.get("ProcessId"))
            parent_image, parent_command = data.get("ParentProcessName"), None
            user = "\\".join(x for x in (data.get("SubjectDomainName"), data.get("SubjectUserName")) if x) or None
            original = ""
        ops = operations(_as_text(command))
        is_bitsadmin = image_name(image) == "bitsadmin.exe" or original == "bitsadmin.exe"
        from_service = is_bits_service_host(_as_text(parent_image), _as_text(parent_command))
        if not (ops or is_bitsadmin or from_service):
            return None
        event = ProcessEvent(time=record.time, source=source, event_id=record.event_id, computer=record.computer,
                             image=_as_text(image), command_line=_as_text(command), process_id=pid,
                             parent_image=_as_text(parent_image), parent_command_line=_as_text(parent_command),
                             parent_process_id=parent_pid, user=_as_text(user), operations=ops,
                             notify_execution=from_service == "bits", provenance=self.provenance(record))
        if from_service == "bits" and data.get("ParentProcessGuid"):
            self.bits_hosts.add(str(data["ParentProcessGuid"]).lower())
        if from_service == "maybe":
            event.linked_by = "parent is a service host"        # confirmed (or dropped) by the join
        return event

    def powershell(self, record: RawRecord) -> ProcessEvent | None:
        data = record.data
        if record.event_id == 4104:
            text = _as_text(data.get("ScriptBlockText"))
            context = ""
        elif record.event_id == 4103:
            text = _as_text(data.get("Payload"))
            context = str(data.get("ContextInfo") or "")
        else:                                               # 800: Data1 command, Data2 context, Data3 details
            text = "\n".join(str(data.get(k) or "") for k in ("Data3", "Data1")).strip() or None
            context = str(data.get("Data2") or "")
        ops = operations(text)
        if not ops:
            return None
        found = {key.lower().replace(" ", ""): value for key, value in _POWERSHELL_CONTEXT.findall(context)}
        return ProcessEvent(time=record.time, source="powershell", event_id=record.event_id,
                            computer=record.computer, image=found.get("hostapplication"), command_line=text,
                            user=found.get("user") or found.get("userid") or record.user_sid, operations=ops,
                            provenance=self.provenance(record))


def is_bits_service_host(parent_image: str | None, parent_command: str | None) -> str | None:
    """'bits' when the parent is the BITS service host (svchost -s BITS, or the shared netsvcs group
    on builds that do not split services); 'maybe' for an svchost whose command line is unknown."""
    if image_name(parent_image) != "svchost.exe":
        return None
    if parent_command is None:
        return "maybe"
    if _BITS_SVCHOST.search(parent_command):
        return "bits"
    if _NETSVCS.search(parent_command) and " -s " not in f" {parent_command.lower()} ":
        return "bits"
    return None


def read_log(path: str | Path, display: str | None = None) -> LogReadResult:
    """Every BITS-related record of one .evtx file, normalised; damage reported as one error line.

    Raises SourceError when the file is not an event log the reader can open.
    """
    shown = display or str(path)
    result = LogReadResult(path=shown)
    scan = LogScan(shown)
    result.scan = scan
    normalise = Normaliser(shown)
    for item in iter_normalised(path, normalise, scan):
        (result.events if isinstance(item, LogEvent) else result.processes).append(item)
    line = scan.damage_line()
    if line:
        result.errors.append(line)
    return result


def iter_normalised(path: str | Path, normalise: Normaliser | None = None,
                    scan: LogScan | None = None) -> Iterator[LogEvent | ProcessEvent]:
    """The streaming form of read_log: memory does not grow with the number of records."""
    normalise = normalise or Normaliser(str(path))
    for record in iter_records(path, wanted, scan):
        item = normalise(record)
        if item is not None:
            yield item
