"""Elastic Common Schema (9.4.0) NDJSON: one document per timeline event.

ECS fields where ECS has them; everything BITS-specific under the custom `bits` object.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..model import JobState
from ..timeutil import filetime_to_iso
from .base import EventWriter
from .jsonout import dumps

ECS_VERSION = "9.4.0"
SUCCESS_STATES = (JobState.TRANSFERRED, JobState.ACKNOWLEDGED)
FAILURE_STATES = (JobState.ERROR, JobState.CANCELLED)


def _url_fields(remote: str | None) -> dict:
    if not remote:
        return {}
    url = {"full": remote, "original": remote}
    try:
        parts = urlsplit(remote)
        if parts.scheme:
            url["scheme"] = parts.scheme
        if parts.hostname:
            url["domain"] = parts.hostname
        if parts.port:
            url["port"] = parts.port
        if parts.path:
            url["path"] = parts.path
    except ValueError:
        pass
    return url


def _file_fields(jf) -> dict:
    if not jf.local_name:
        return {}
    path = jf.local_name
    name = path.replace("/", "\\").rsplit("\\", 1)[-1]
    out = {"path": path, "name": name}
    if "\\" in path:
        out["directory"] = path.rsplit("\\", 1)[0]
    if "." in name:
        out["extension"] = name.rsplit(".", 1)[-1]
    if jf.bytes_total is not None and jf.bytes_total >= 0:
        out["size"] = jf.bytes_total
    return out


def ecs_document(event) -> dict:
    job = event.job
    outcome = "unknown"
    if job.state in SUCCESS_STATES:
        outcome = "success"
    elif job.state in FAILURE_STATES or job.errors:
        outcome = "failure"
    doc: dict = {
        "@timestamp": filetime_to_iso(event.filetime),
        "message": event.message,
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "category": ["file", "network"], "type": [event.kind.ecs_type],
                  "action": event.kind.action, "module": "bitsdb",
                  "dataset": "bitsdb.file" if event.file is not None else "bitsdb.job",
                  "provider": "bits", "outcome": outcome},
        "tags": list(event.tags),
    }
    jf = event.shown_file
    if jf is not None:
        if url := _url_fields(jf.remote_name):
            doc["url"] = url
        if file := _file_fields(jf):
            doc["file"] = file
    if job.owner_sid:
        doc["user"] = {"id": job.owner_sid}
        if job.owner_name:
            doc["user"]["name"] = job.owner_name
    if job.notify_program or job.notify_parameters:
        command = " ".join(x for x in (job.notify_program, job.notify_parameters) if x)
        doc["process"] = {"command_line": command}
        if job.notify_program:
            doc["process"]["executable"] = job.notify_program
    related = {}
    if job.owner_sid:
        related["user"] = [job.owner_sid]
    hosts = sorted({_url_fields(f.remote_name).get("domain") for f in job.files} - {None})
    if hosts:
        related["hosts"] = hosts
    if related:
        doc["related"] = related
    bits = job.to_dict()
    bits.pop("history", None)
    if event.record is not None:
        _log_fields(doc, event.record)
        bits["log_record"] = event.record.to_dict()
    if event.file is not None:
        bits["event_file_id"] = event.file.file_id
    bits["timestamp_desc"] = event.kind.timestamp_desc
    bits["filetime"] = event.filetime
    doc["bits"] = bits
    if not doc["tags"]:
        del doc["tags"]
    return doc


def _log_fields(doc: dict, record) -> None:
    """ECS process / url fields of an event-log record (the full record stays under bits.log_record)."""
    from ..model import LogEvent, ProcessEvent

    if isinstance(record, ProcessEvent):
        process = {k: v for k, v in (("executable", record.image), ("command_line", record.command_line),
                                     ("pid", record.process_id)) if v is not None}
        parent = {k: v for k, v in (("executable", record.parent_image),
                                    ("command_line", record.parent_command_line),
                                    ("pid", record.parent_process_id)) if v is not None}
        if parent:
            process["parent"] = parent
        doc["process"] = process
        if record.user:
            doc["user"] = {"name": record.user}
    elif isinstance(record, LogEvent):
        if (url := _url_fields(record.url)).get("scheme"):
            doc["url"] = url
        if record.process_path:
            doc["process"] = {"executable": record.process_path,
                              **({"pid": record.process_id} if record.process_id is not None else {})}
    if getattr(record, "computer", None):
        doc["host"] = {"name": record.computer}
    if getattr(record, "provenance", None) is not None and record.provenance.table:
        doc["event"]["provider"] = record.provenance.table


class EcsWriter(EventWriter):
    def write_event(self, event):
        self.stream.write(dumps(ecs_document(event)) + "\n")
