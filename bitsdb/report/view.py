"""The report's view-model: plain dicts built from records and their verdicts.

The renderer only sees what is built here (strings, lists, dicts, None), so it does not
care whether a fact came from a live table, a carved copy or an event log. One card per
job identity (host + job id): the live record is the card's main record, other records of
the same job (recovered versions) are listed in it and drawn as marks on its timeline row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..model import Job, JobFile, NotifyFlags, flag_names
from ..timeline import jobs as vocabulary
from ..timeline import logs as log_vocabulary
from ..timeutil import filetime_to_iso
from ..stores import collector_paused
from .verdicts import LEVEL_RANK, LEVELS, VerdictSource

#: Event kinds drawn on a job's timeline row. Deadlines in the future (expiry, retry, no-progress)
#: and the server's Last-Modified of a file are in the card, not on the row: they are not activity.
MARK_KINDS = (vocabulary.CREATED, vocabulary.MODIFIED, vocabulary.MODIFIED_2, vocabulary.VERSION_RECOVERED,
              vocabulary.COMPLETED, vocabulary.INACTIVITY, vocabulary.ERROR)
#: The same by action name (EventKind is a dataclass: comparing names is cheaper than comparing kinds).
_MARK_ACTIONS = frozenset(kind.action for kind in MARK_KINDS)

_JOB_TIMES = (("created", "creation_time"), ("modified", "modification_time"),
              ("files or progress changed", "modification_time_2"), ("completed", "completion_time"),
              ("inactivity timer started", "inactivity_base_time"), ("expires", "expiration_time"))


def _name(value: Any) -> str | None:
    return None if value is None else getattr(value, "name", str(value))


def _size(value: int | None) -> str:
    return "unknown" if value is None or value < 0 else f"{value:,}"


def record_origin(job: Job) -> str:
    """live | recovered (carved copy, older version) | log (a job only the event logs know)."""
    if job.history is not None and job.history.log_only:
        return "log"
    return "recovered" if job.provenance is not None and job.provenance.recovered else "live"


def host_label(record: Any) -> str:
    """The host a record belongs to: its evidence's host name, else the evidence item, else the file."""
    prov = record.provenance
    if prov is None:
        return "(unknown host)"
    return prov.host or prov.container or prov.source_path or "(unknown host)"


def _provenance_pairs(job: Job) -> list[list[str]]:
    if job.provenance is None:
        return []
    own = job.provenance.to_dict()
    pairs = []
    for key, value in own.items():
        if value is None or value is False or value == {} or value == []:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        elif isinstance(value, list):       # other places an identical copy was found: what differs
            value = "; ".join(_differences(item, own) for item in value if isinstance(item, dict))
            key = "also found at" if key == "locations" else key
        pairs.append([key.replace("_", " "), str(value)])
    return pairs


def _differences(place: dict[str, Any], own: dict[str, Any]) -> str:
    """A location as the fields in which it differs from the record's own provenance (the record's own
    place, listed first, reads "(this record)")."""
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in place.items() if v is not None and own.get(k) != v]
    return ", ".join(parts) or "(this record)"


def _file_view(jf: JobFile) -> dict[str, Any]:
    return {"url": jf.remote_name, "local": jf.local_name, "temp": jf.temp_name,
            "bytes": f"{_size(jf.bytes_transferred)} / {_size(jf.bytes_total)} bytes",
            "remote_modified": filetime_to_iso(jf.remote_last_modified)}


def _notify(job: Job) -> dict[str, Any] | None:
    if not job.notify_program and not job.notify_parameters:
        return None
    flags = flag_names(NotifyFlags, job.notify_flags) if job.notify_flags is not None else []
    return {"program": job.notify_program, "parameters": job.notify_parameters, "flags": " | ".join(flags)}


def _times(job: Job) -> list[list[str]]:
    times = [[label, filetime_to_iso(getattr(job, attr))] for label, attr in _JOB_TIMES]
    times += [[f"timer {t.slot} {edge}", filetime_to_iso(value)] for t in job.timers
              for edge, value in (("start", t.start), ("end", t.end))]
    return [pair for pair in times if pair[1]]


def _marks(job: Job) -> list[dict[str, Any]]:
    """Marks of one record on its job's row: the record's own events and, from its history, one per
    log event, command line and notify-command execution (the timeline's sentences)."""
    origin = record_origin(job)
    where = job.provenance.recovered_from if job.provenance is not None else None
    marks = []
    if origin != "log":             # a log-only job's own times are those of its log events
        for event in vocabulary.expand_job(job):
            if event.kind.action not in _MARK_ACTIONS:
                continue
            label = event.kind.timestamp_desc
            if origin == "recovered":
                label += f" (recovered version, from {where or 'unallocated data'})"
            marks.append({"time": filetime_to_iso(event.filetime), "kind": event.kind.action, "label": label,
                          "origin": origin, "notify": None})
    for event in log_vocabulary.expand_history(job, []):
        notify = getattr(event.record, "notify_execution", False)
        marks.append({"time": filetime_to_iso(event.filetime), "kind": event.kind.action, "label": event.message,
                      "origin": "log", "notify": _command_line(event.record) if notify else None})
    return marks


def _command_line(process: Any) -> str:
    return process.command_line or process.image or "(command line not logged)"


def _history_view(job: Job) -> dict[str, Any] | None:
    """What the event logs and process evidence say about the job, as lines of text with times."""
    history = job.history
    if history is None:
        return None

    def lines(records, describe) -> list[dict[str, Any]]:
        return [{"time": filetime_to_iso(r.time), "text": describe(r)}
                for r in sorted(records, key=lambda r: (r.time or 0))]

    return {
        "log_only": history.log_only, "owner_account": history.owner_account, "creator": history.creator_image,
        "creator_pid": None if history.creator_process_id is None else str(history.creator_process_id),
        "computer": history.computer,
        "events": lines(history.events, lambda e: f"{log_vocabulary.log_kind(e).timestamp_desc}: "
                                                   f"{log_vocabulary.describe_log_event(e, False)}"),
        "processes": lines(history.processes, log_vocabulary.describe_process),
        "notify_runs": lines(history.notify_executions, log_vocabulary.describe_process),
    }


@dataclass
class _Card:
    host: str
    records: list[tuple[Job, dict[str, Any]]] = field(default_factory=list)


def _unique(marks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for mark in marks:
        key = (mark["time"], mark["kind"], mark["label"])
        if key not in seen:
            seen.add(key)
            out.append(mark)
    return sorted(out, key=lambda m: (m["time"], m["kind"], m["label"]))


def _main_record(records: list[tuple[Job, dict[str, Any]]]) -> tuple[Job, dict[str, Any]]:
    """The live record if there is one (current state file first), else the latest version."""
    def rank(item: tuple[Job, dict[str, Any]]) -> tuple:
        job = item[0]
        prov = job.provenance
        return (record_origin(job) == "live", prov is not None and prov.state_file != "previous",
                job.modification_time or 0, job.creation_time or 0)
    return max(records, key=rank)


def _card_view(key: str, card: _Card) -> dict[str, Any]:
    main, main_verdict = _main_record(card.records)
    worst_job, worst_verdict = max(card.records, key=lambda item: (LEVEL_RANK[item[1]["severity"]],
                                                                   item[0] is main))
    marks = _unique(m for job, _ in card.records for m in _marks(job))
    starts = [t for t in (filetime_to_iso(job.creation_time) for job, _ in card.records) if t]
    start = min(starts) if starts else (marks[0]["time"] if marks else None)
    end = marks[-1]["time"] if marks else start
    versions = [{"origin": record_origin(job), "state": _name(job.state),
                 "modified": filetime_to_iso(job.modification_time), "severity": verdict["severity"],
                 "where": (job.provenance.recovered_from or job.provenance.state_file or "")
                 if job.provenance else "",
                 "provenance": _provenance_pairs(job)}
                for job, verdict in card.records if job is not main]
    versions.sort(key=lambda v: (v["modified"] or "", v["where"]))
    owner_integrity = main.security.owner_integrity_level if main.security else None
    return {
        "key": key, "host": card.host, "job_id": main.job_id, "name": main.display_name,
        "description": main.description, "type": _name(main.type), "state": _name(main.state),
        "priority": _name(main.priority), "origin": record_origin(main),
        "origins": sorted({record_origin(job) for job, _ in card.records}),
        "severity": worst_verdict["severity"], "confidence": worst_verdict["confidence"],
        "reasons": list(worst_verdict["reasons"]), "hits": worst_verdict["hits"],
        "allowlist": worst_verdict.get("allowlist"),
        "verdict_from": None if worst_job is main else "a recovered version",
        "notify": _notify(main),
        "owner": {"sid": main.owner_sid, "name": main.owner_name, "integrity": owner_integrity},
        "creator": main.creator_image, "files": [_file_view(jf) for jf in main.files],
        "missing_files": list(main.missing_file_ids),
        "errors": [f"{e.hresult_hex or '?'} ({_name(e.context) or '?'})" for e in main.errors],
        "times": _times(main), "start": start, "end": end, "end_state": _name(main.state),
        "marks": marks, "versions": versions, "provenance": _provenance_pairs(main),
        "partial": main.partial_reason if main.partial else None, "upload": main.is_upload,
        "history": _merged_history(card.records, main),
        "notify_ran": any(m["notify"] for m in marks),
    }


def _merged_history(records: list[tuple[Job, dict[str, Any]]], main: Job) -> dict[str, Any] | None:
    """The history of the card: the main record's, else that of any version that has one (the join
    attaches it to every database record of the job id)."""
    for job in [main] + [job for job, _ in records if job is not main]:
        view = _history_view(job)
        if view is not None:
            return view
    return None


def _widen(host: dict[str, Any], start: str | None, end: str | None) -> None:
    if start and (host["first"] is None or start < host["first"]):
        host["first"] = start
    if end and (host["last"] is None or end > host["last"]):
        host["last"] = end


class ReportBuilder:
    """Collects records (as they stream from the evidence layer) and builds the view-model."""

    def __init__(self, verdict: VerdictSource, *, inputs: Iterable[str] = (),
                 options: dict[str, Any] | None = None) -> None:
        self.verdict = verdict
        self.inputs = list(inputs)
        self.options = dict(options or {})
        self.cards: dict[str, _Card] = {}
        self.stores: dict[str, set[str]] = {}
        self.orphans: dict[str, int] = {}
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.evidence_items = 0
        self.origins = {"live": 0, "recovered": 0, "log": 0}
        self.host_records: dict[str, list[dict[str, Any]]] = {}
        self._anonymous = 0

    def add_job(self, job: Job, as_of: int | None = None) -> None:
        """One record; `as_of` is the time its verdict's age rules count to (default: the rules layer's)."""
        host = host_label(job)
        if job.job_id:
            key = f"{host}\x00{job.job_id}"
        else:                                   # a damaged copy with no id is a card of its own
            self._anonymous += 1
            key = f"{host}\x00#{self._anonymous}"
        card = self.cards.setdefault(key, _Card(host))
        card.records.append((job, self.verdict(job, as_of)))
        origin = record_origin(job)
        self.origins[origin] += 1
        if job.provenance is not None and origin != "log":
            self.stores.setdefault(host, set()).add(job.provenance.source_path)

    def add_record(self, kind: str, record: Any, verdict: dict[str, Any]) -> None:
        """A record of no job (service configuration, log coverage, unlinked command line or notify run,
        log event): listed under its host, and its verdict counts towards the host's worst."""
        if kind == "service":
            text = "BITS service: " + log_vocabulary.describe_service(record)
            when = record.key_last_written
        elif kind == "log_coverage":
            text = "Event logs read for this host: " + log_vocabulary.describe_coverage(record)
            when = filetime_to_iso(record.bits_client_last or record.database_last_activity)
        elif kind == "process":
            what = "notify command ran (no job linked)" if record.notify_execution else "BITS command line"
            text = f"{what}: {log_vocabulary.describe_process(record)}"
            when = filetime_to_iso(record.time)
        else:
            text = (f"{log_vocabulary.log_kind(record).timestamp_desc}: "
                    f"{log_vocabulary.describe_log_event(record, False)}")
            when = filetime_to_iso(record.time)
        self.host_records.setdefault(host_label(record), []).append({
            "kind": kind, "time": when, "text": text, "severity": verdict["severity"],
            "reasons": list(verdict["reasons"]), "source": record.provenance.source_path if record.provenance else None,
            "notify": kind == "process" and bool(record.notify_execution)})

    def add_orphan(self, jf: JobFile) -> None:
        host = host_label(jf)
        self.orphans[host] = self.orphans.get(host, 0) + 1

    def build(self) -> dict[str, Any]:
        with collector_paused():
            return self._build()

    def _build(self) -> dict[str, Any]:
        jobs = [_card_view(key, card) for key, card in self.cards.items()]
        jobs.sort(key=lambda j: (j["host"], -LEVEL_RANK[j["severity"]], j["start"] or "", j["name"] or "",
                                 j["job_id"] or "", j["key"]))
        hosts: dict[str, dict[str, Any]] = {}

        def host(name: str, first_job: int) -> dict[str, Any]:
            if name not in hosts:
                hosts[name] = {"name": name, "first_job": first_job, "job_count": 0,
                               "counts": dict.fromkeys(LEVELS, 0), "first": None, "last": None}
            return hosts[name]

        for index, job in enumerate(jobs):      # jobs are sorted by host: each host's jobs are one run
            entry = host(job["host"], index)
            entry["job_count"] += 1
            entry["counts"][job["severity"]] += 1
            _widen(entry, job["start"], job["end"])
        for name, records in self.host_records.items():
            entry = host(name, len(jobs))
            for record in records:
                _widen(entry, record["time"], record["time"])
        for name, entry in hosts.items():
            records = sorted(self.host_records.get(name, []), key=lambda r: (-LEVEL_RANK[r["severity"]],
                                                                              r["time"] or "", r["text"]))
            entry["records"] = records
            levels = [level for level, n in entry["counts"].items() if n] + [r["severity"] for r in records]
            entry["worst"] = max(levels, key=LEVEL_RANK.__getitem__, default="none")
            entry["stores"] = len(self.stores.get(name, ()))
            entry["orphan_files"] = self.orphans.get(name, 0)
        ordered = sorted(hosts.values(), key=lambda h: (-LEVEL_RANK[h["worst"]], -h["counts"][h["worst"]],
                                                         h["name"]))
        host_records = sum(len(r) for r in self.host_records.values())
        verdicts = dict.fromkeys(LEVELS, 0)
        for job in jobs:
            verdicts[job["severity"]] += 1
        overview = {
            "inputs": self.inputs, "evidence_items": self.evidence_items, "hosts": len(ordered),
            "stores": sum(len(s) for s in self.stores.values()), "cards": len(jobs),
            "records": dict(self.origins), "verdicts": verdicts, "failures": list(self.failures),
            "warnings": list(self.warnings), "orphan_files": sum(self.orphans.values()),
            "host_records": host_records,
            "options": self.options,
        }
        return {"overview": overview, "levels": list(LEVELS), "hosts": ordered, "jobs": jobs}
