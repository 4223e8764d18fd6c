"""Timeline events of event-log records: one per log event (Bits-Client lifecycle, service events),
one per process start or PowerShell record that performs a BITS operation or is a notify-command
execution, and one for the BITS service key's last write. `data_type` names the source log.
"""

from __future__ import annotations

from ..model import Job, LogEvent, ProcessEvent, ServiceConfig
from .jobs import EventKind, TimelineEvent

DATA_TYPES = {"bits-client": "windows:evtx:bits_client", "sysmon": "windows:evtx:sysmon",
              "security": "windows:evtx:security", "powershell": "windows:evtx:powershell",
              "system": "windows:evtx:system"}
SERVICE_DATA_TYPE = "windows:registry:bits_service"
_ECS_TYPES = {3: "creation", 4: "end", 5: "deletion", 59: "start", 60: "end", 61: "error", 63: "error", 64: "error",
              16384: "deletion", 16389: "deletion", 16403: "change", 7040: "change", 7045: "installation"}
_CHANNEL_NAMES = {"bits-client": "Bits-Client", "sysmon": "Sysmon", "security": "Security",
                  "powershell": "PowerShell", "system": "System"}

SERVICE_KEY_WRITTEN = EventKind("BITS service key last written", "bits-service-key-written", "change",
                                SERVICE_DATA_TYPE)


def log_kind(event: LogEvent) -> EventKind:
    """The event kind of a log record: its action, under the source log's data_type."""
    channel = _CHANNEL_NAMES.get(event.source, event.source)
    return EventKind(f"{channel} {event.event_id}: {event.action}", f"bits-log-{event.source}-{event.event_id}",
                     _ECS_TYPES.get(event.event_id, "info"), DATA_TYPES.get(event.source, "windows:evtx"))


def process_kind(process: ProcessEvent) -> EventKind:
    channel = _CHANNEL_NAMES.get(process.source, process.source)
    what = "BITS notify command ran" if process.notify_execution else (
        "PowerShell BITS cmdlet" if process.source == "powershell" else "BITS command line")
    return EventKind(f"{channel} {process.event_id}: {what}", f"bits-process-{process.source}-{process.event_id}",
                     "start" if process.source != "powershell" else "info",
                     DATA_TYPES.get(process.source, "windows:evtx"))


def _size(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def describe_log_event(event: LogEvent, action: bool = True) -> str:
    """One sentence: what happened (unless `action` is False: the event kind says it), to which job,
    with the values the event carries."""
    parts = [event.action if action else ""]
    if event.title or event.job_id:
        parts.append(f"job '{event.title or ''}' ({event.job_id or 'no job id in this event'})")
    if event.process_path:
        parts.append(f"by {event.process_path}" + (f" (pid {event.process_id})" if event.process_id else ""))
    if event.owner:
        parts.append(f"owner {event.owner}")
    if event.url:
        parts.append(f"{'remote' if event.source == 'bits-client' else 'to'} {event.url}")
    if event.local_name:
        parts.append(f"-> {event.local_name}")
    if event.bytes_total is not None:
        parts.append(f"{_size(event.bytes_transferred)} of {_size(event.bytes_total)} bytes")
    elif event.bytes_transferred is not None:
        parts.append(f"{_size(event.bytes_transferred)} bytes transferred")
    if event.file_count is not None:
        parts.append(f"{event.file_count} file(s)")
    if event.hresult_hex and event.event_id != 60 or (event.event_id == 60 and event.hresult):
        parts.append(f"status {event.hresult_hex}")
    if event.source == "system":
        values = ", ".join(f"{k}={v}" for k, v in sorted(event.data.items()) if k != "Binary" and v not in ("", None))
        parts.append(values)
    return "; ".join(p for p in parts if p)


def describe_process(process: ProcessEvent) -> str:
    parts = [process.image or "(image not logged)"]
    if process.user:
        parts.append(f"user {process.user}")
    if process.parent_image or process.parent_command_line:
        parts.append(f"parent {process.parent_command_line or process.parent_image}")
    if process.command_line:
        parts.append(f"command {' '.join(process.command_line.split())[:300]}")
    for op in process.operations:
        detail = " ".join(x for x in (
            f"'{op.job}'" if op.job else "", op.remote_name or "", f"-> {op.local_name}" if op.local_name else "",
            " ".join(x for x in (op.program, op.arguments) if x), op.value or "") if x)
        parts.append(f"{op.tool} {op.operation} {detail}".strip())
    if process.job_ids:
        parts.append(f"job {', '.join(process.job_ids)} (linked by {process.linked_by})")
    return "; ".join(parts)


def holder(record, name: str) -> Job:
    """The Job an event of no job hangs on (the writers show job fields; these stay empty)."""
    return Job(job_id=None, display_name=name, provenance=record.provenance)


def expand_history(job: Job, tags: list[str]) -> list[TimelineEvent]:
    """One event per log record and process of a job's history."""
    events: list[TimelineEvent] = []
    if job.history is None:
        return events
    for event in job.history.events:
        if event.time:
            kind = log_kind(event)
            events.append(TimelineEvent(event.time, kind, f"{kind.timestamp_desc}: {describe_log_event(event, False)}",
                                        job, tags=list(tags), record=event))
    for process in [*job.history.processes, *job.history.notify_executions]:
        if process.time and (not process.job_ids or process.job_ids[0] == job.job_id):
            kind = process_kind(process)
            events.append(TimelineEvent(process.time, kind, f"{kind.timestamp_desc}: {describe_process(process)}",
                                        job, tags=list(tags), record=process))
    return events


def expand_record(record_type: str, record) -> list[TimelineEvent]:
    """Events of a record that belongs to no job: a process, a log event, the service configuration."""
    if isinstance(record, LogEvent) and record.time:
        kind = log_kind(record)
        return [TimelineEvent(record.time, kind, f"{kind.timestamp_desc}: {describe_log_event(record, False)}",
                              holder(record, f"({record.action})"), record=record)]
    if isinstance(record, ProcessEvent) and record.time:
        kind = process_kind(record)
        return [TimelineEvent(record.time, kind, f"{kind.timestamp_desc}: {describe_process(record)}",
                              holder(record, "(BITS process evidence, no job linked)"), record=record)]
    if isinstance(record, ServiceConfig) and record.key_last_written:
        from ..timeutil import iso_to_filetime

        when = iso_to_filetime(record.key_last_written.replace("+00:00", ""))
        text = describe_service(record)
        return [TimelineEvent(when, SERVICE_KEY_WRITTEN, f"{SERVICE_KEY_WRITTEN.timestamp_desc}: {text}",
                              holder(record, "(BITS service)"), record=record)]
    return []


def describe_service(config: ServiceConfig) -> str:
    parts = [f"start {config.start_name or config.start}" + (" (delayed)" if config.delayed_autostart else ""),
             f"image {config.image_path}", f"ServiceDll {config.service_dll}", f"account {config.object_name}"]
    if config.job_inactivity_timeout_days:
        parts.append(f"policy JobInactivityTimeout {config.job_inactivity_timeout_days} days")
    return "; ".join(parts)


def describe_coverage(entry) -> str:
    """Which logs were read for a host, what the Bits-Client log spans, clearings, database activity."""
    from ..timeutil import filetime_to_iso

    parts = [f"{len(entry.logs)} event log(s) read"]
    if entry.bits_client_log:
        span = (f", {filetime_to_iso(entry.bits_client_first)} to {filetime_to_iso(entry.bits_client_last)}"
                if entry.bits_client_first else "")
        parts.append(f"Bits-Client log: {entry.bits_client_records} record(s){span}")
    else:
        parts.append("no Bits-Client/Operational log")
    for event in entry.cleared:
        parts.append(f"{event.title} cleared {filetime_to_iso(event.time)} by {event.owner or '?'}")
    if entry.database_jobs:
        parts.append(f"{entry.database_jobs} database job(s), last activity {filetime_to_iso(entry.database_last_activity)}")
    return "; ".join(parts)

