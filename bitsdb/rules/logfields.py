"""Fields of the subjects event logs and hives add (docs/EVENTLOGS.md): a process start or PowerShell
record that performs BITS operations or is a notify execution (`process`), the BITS service's
configuration (`service`), a System event about the BITS service (`log_event`) and what a host's
logs cover (`log_coverage`). Rules name their subject with `subject:`; each kind has its own
field registry, from which docs/RULES.md is generated.
"""

from __future__ import annotations

import re
from typing import Any

from ..bitscmd import image_name
from ..model import LogCoverage, LogEvent, ProcessEvent, ServiceConfig
from . import paths
from .fields import FILETIME_PER_DAY, SUBJECT_FIELDS, FieldSpec, View

PROCESS_FIELDS = [
    FieldSpec("source", "str", "sysmon | security | powershell"),
    FieldSpec("event_id", "int", "1 (Sysmon), 4688 (Security), 4103 / 4104 / 800 (PowerShell)"),
    FieldSpec("image", "path", "process image, normalised", "image"),
    FieldSpec("image_name", "str", "file name of the process image", "image"),
    FieldSpec("command_line", "str", "command line or script text, as logged"),
    FieldSpec("parent_image_name", "str", "file name of the parent process image", "parent_image"),
    FieldSpec("user", "str", "the account the process ran as, as logged"),
    FieldSpec("tools", "list", "bitsadmin | powershell: what performed the BITS operations"),
    FieldSpec("operations", "list", "BITS operations the text performs (bitscmd: create, addfile, transfer, "
              "setnotifycmdline, resume …)"),
    FieldSpec("bitsadmin_operations", "list", "the operations performed with bitsadmin"),
    FieldSpec("upload", "bool", "a transfer goes up (bitsadmin /upload, -TransferType Upload/UploadReply)"),
    FieldSpec("notify_programs", "list", "file names of SetNotifyCmdLine programs set", "command_line"),
    FieldSpec("remote_hosts", "list", "hosts of the URLs the operations name", "command_line"),
    FieldSpec("remote_host_is_ip", "bool", "some URL names a literal IP address", "command_line"),
    FieldSpec("remote_is_local", "bool", "some remote name is a path on this machine (the /addfile c:\\x c:\\y "
              "trick)", "command_line"),
    FieldSpec("local_locations", "list", "kinds of folder the local files land in (see Locations)", "command_line"),
    FieldSpec("local_exts", "list", "extensions of the local files (no dot)", "command_line"),
    FieldSpec("notify_execution", "bool", "started by the BITS service host: a notify command that ran"),
    FieldSpec("linked", "bool", "linked to a job (then judged with the job, not on its own)"),
]

SERVICE_FIELDS = [
    FieldSpec("key_missing", "bool", "the SYSTEM hive has no Services\\BITS key in its current control set"),
    FieldSpec("start_name", "str", "BOOT | SYSTEM | AUTO | MANUAL | DISABLED"),
    FieldSpec("start", "int", "the Start value"),
    FieldSpec("image_path", "str", "ImagePath, normalised (lower case, environment variables expanded)",
              "image_path"),
    FieldSpec("image_path_default", "bool", "ImagePath is svchost.exe -k netsvcs [-p] in System32 (any "
              "spelling of the Windows folder)", "image_path"),
    FieldSpec("service_dll", "path", "Parameters\\ServiceDll, normalised", "service_dll"),
    FieldSpec("service_dll_default", "bool", "ServiceDll is System32\\qmgr.dll", "service_dll"),
    FieldSpec("object_name", "str", "the account the service runs as (ObjectName), lower case", "object_name"),
    FieldSpec("object_name_default", "bool", "ObjectName is LocalSystem", "object_name"),
    FieldSpec("was_automatic", "bool", "another control set (last known good, previous) starts BITS "
              "automatically"),
    FieldSpec("other_differs", "list", "values that differ in another control set (image_path, service_dll, "
              "start)"),
    FieldSpec("policy_inactivity_days", "int", "JobInactivityTimeout policy (days)"),
]

LOG_EVENT_FIELDS = [
    FieldSpec("source", "str", "the log: bits-client | system | sysmon | security"),
    FieldSpec("event_id", "int", "event id"),
    FieldSpec("action", "str", "what the event says happened"),
    FieldSpec("service", "str", "the service a System event names (BITS)"),
    FieldSpec("start_from", "str", "7040: the start type before the change, lower case"),
    FieldSpec("start_to", "str", "7040: the start type after the change / 7045: the start type, lower case"),
    FieldSpec("image_path", "str", "7045: the installed service's image path, normalised"),
    FieldSpec("cleared_channel", "str", "104 / 1102: the log that was cleared"),
]

COVERAGE_FIELDS = [
    FieldSpec("logs_read", "int", "event log files read for the host"),
    FieldSpec("bits_client_present", "bool", "the Bits-Client/Operational log was among them"),
    FieldSpec("bits_client_records", "int", "records in it"),
    FieldSpec("bits_client_cleared", "bool", "a System 104 says the Bits-Client log was cleared"),
    FieldSpec("cleared_channels", "list", "logs a System 104 / Security 1102 says were cleared"),
    FieldSpec("database_jobs", "int", "jobs in the host's BITS databases"),
    FieldSpec("database_after_log_days", "float", "days the databases' newest activity lies after the Bits-Client "
              "log's newest record (negative or absent: covered)"),
]

SUBJECT_FIELDS["process"] = {spec.path: spec for spec in PROCESS_FIELDS}
SUBJECT_FIELDS["service"] = {spec.path: spec for spec in SERVICE_FIELDS}
SUBJECT_FIELDS["log_event"] = {spec.path: spec for spec in LOG_EVENT_FIELDS}
SUBJECT_FIELDS["log_coverage"] = {spec.path: spec for spec in COVERAGE_FIELDS}

_DEFAULT_IMAGE = re.compile(r"^c:\\windows\\system32\\svchost\.exe -k netsvcs( -p)?$")
_DEFAULT_DLL = "c:\\windows\\system32\\qmgr.dll"


def _command(text: str | None) -> str | None:
    """A service image path (program + arguments) in the normalised form rules compare."""
    if not text:
        return None
    program, _, rest = text.strip().partition(" -")
    normalised = paths.normalise_path(program)
    return f"{normalised} -{rest.strip().lower()}" if rest else normalised


def process_view(process: ProcessEvent) -> View:
    view = View()
    view.set("source", process.source)
    view.set("event_id", process.event_id)
    image = paths.normalise_path(process.image) if process.image else None
    view.set("image", image, process.image)
    view.set("image_name", image_name(process.image) or None, process.image)
    view.set("command_line", process.command_line, process.command_line)
    view.set("parent_image_name", image_name(process.parent_image) or None, process.parent_image)
    view.set("user", process.user)
    ops = process.operations
    view.set("tools", sorted({op.tool for op in ops}))
    view.set("operations", sorted({op.operation for op in ops}))
    view.set("bitsadmin_operations", sorted({op.operation for op in ops if op.tool == "bitsadmin"}))
    view.set("upload", any(o.lower() in ("/upload", "/upload-reply")
                           or (o.lower().startswith("-transfertype") and "upload" in o.lower())
                           for op in ops for o in op.options))
    view.set("notify_programs", sorted({paths.basename(paths.normalise_path(op.program)) or "" for op in ops
                                        if op.program}))
    remotes = [paths.parse_remote(op.remote_name) for op in ops if op.remote_name]
    hosts = sorted({r["host"] for r in remotes if r.get("host")})
    view.set("remote_hosts", hosts)
    view.set("remote_host_is_ip", any(paths.host_is_ip(h) for h in hosts))
    view.set("remote_is_local", any(r["scheme"] == "file" and not r.get("host") for r in remotes))
    locals_ = [paths.normalise_path(op.local_name) for op in ops if op.local_name]
    view.set("local_locations", sorted({loc.kind for loc in map(paths.locate, locals_) if loc}))
    view.set("local_exts", sorted({paths.extension(p) for p in locals_ if paths.extension(p)}))
    view.set("notify_execution", process.notify_execution)
    view.set("linked", bool(process.job_ids))
    return view


def service_view(config: ServiceConfig) -> View:
    view = View()
    view.set("key_missing", config.start is None and config.image_path is None and config.service_dll is None)
    view.set("start_name", config.start_name)
    view.set("start", config.start)
    image = _command(config.image_path)
    view.set("image_path", image, config.image_path)
    view.set("image_path_default", bool(image and _DEFAULT_IMAGE.match(image)))
    dll = paths.normalise_path(config.service_dll) if config.service_dll else None
    view.set("service_dll", dll, config.service_dll)
    view.set("service_dll_default", dll == _DEFAULT_DLL if dll else None)
    account = (config.object_name or "").strip().lower() or None
    view.set("object_name", account, config.object_name)
    view.set("object_name_default", account in (None, "localsystem"))
    others = list(config.other_control_sets.values())
    view.set("was_automatic", any(o.get("start") == 2 for o in others))
    differs = set()
    for other in others:
        if _command(other.get("image_path")) != image:
            differs.add("image_path")
        if (paths.normalise_path(other["service_dll"]) if other.get("service_dll") else None) != dll:
            differs.add("service_dll")
        if other.get("start") != config.start:
            differs.add("start")
    view.set("other_differs", sorted(differs))
    view.set("policy_inactivity_days", config.job_inactivity_timeout_days)
    return view


def log_event_view(event: LogEvent) -> View:
    view = View()
    data = {k.lower(): v for k, v in event.data.items()}
    view.set("source", event.source)
    view.set("event_id", event.event_id)
    view.set("action", event.action)
    view.set("service", event.title if event.event_id in (7036, 7040, 7045) else None)
    start_to = data.get("param3") if event.event_id == 7040 else data.get("starttype")
    view.set("start_from", str(data.get("param2")).lower() if event.event_id == 7040 and data.get("param2") else None)
    view.set("start_to", str(start_to).lower() if start_to not in (None, "") else None)
    view.set("image_path", _command(str(data["imagepath"])) if data.get("imagepath") else None,
             data.get("imagepath"))
    view.set("cleared_channel", event.title if event.action == "event log cleared" else None)
    return view


def coverage_view(entry: LogCoverage) -> View:
    view = View()
    view.set("logs_read", len(entry.logs))
    view.set("bits_client_present", entry.bits_client_log is not None)
    view.set("bits_client_records", entry.bits_client_records)
    channels = sorted({(e.title or "").lower() for e in entry.cleared if e.title})
    view.set("cleared_channels", channels)
    view.set("bits_client_cleared", "microsoft-windows-bits-client/operational" in channels)
    view.set("database_jobs", entry.database_jobs)
    after = None
    if entry.database_last_activity and entry.bits_client_last:
        after = round((entry.database_last_activity - entry.bits_client_last) / FILETIME_PER_DAY, 3)
    view.set("database_after_log_days", after)
    return view


VIEWS: dict[str, Any] = {"process": process_view, "service": service_view, "log_event": log_event_view,
                         "log_coverage": coverage_view}


def record_identity(kind: str, record: Any) -> dict[str, Any]:
    """Who a verdict on a record that is not a job is about."""
    provenance = record.provenance
    name = {"process": lambda r: r.image or r.command_line, "service": lambda r: "BITS service",
            "log_event": lambda r: f"{r.source} {r.event_id}: {r.action}",
            "log_coverage": lambda r: f"event logs of {r.host or 'the loose files'}"}[kind](record)
    return {"kind": kind, "job_id": None, "job_name": name,
            "host": provenance.host if provenance else None,
            "provenance": provenance.to_dict() if provenance else None}
