"""The join: database jobs + Bits-Client lifecycle + process evidence -> one history per job.

Rules (docs/EVENTLOGS.md, "Join"):
* Log events join a job by its GUID (`jobId` / `Id`), files by `transferId`. GUIDs are unique, so
  this join does not need the host to match.
* The Windows 7 form of event 3 has no job GUID: it is given to the first job of the same title and
  computer whose first GUID-bearing event follows it (within a day) and that has no creation event.
* A job no database holds becomes a log-only job (`history.log_only`), built from what the log says.
* A command line's BITS operations link to a job by GUID argument, else by URL (same computer), else
  by title and time (same computer, the process started at most 10 minutes before the job's first
  event and not after its last).
* A process started by the BITS service host is a notify-command execution: directly when Sysmon
  names the parent `svchost -k netsvcs [-s BITS]`; for Security 4688 (no parent command line) only
  when its parent PID is the PID that logged Bits-Client events on that computer. It links to the
  job whose transfer ended (60/61/4) last before it, within 5 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..model import (
    Job,
    JobFile,
    JobHistory,
    JobState,
    LogCoverage,
    LogEvent,
    ProcessEvent,
    Provenance,
    ServiceConfig,
)
from ..sources.events import BITS_CLIENT as BITS_CLIENT_CHANNEL
from ..sources.events import LogReadResult, guid

SECOND = 10_000_000
MINUTE = 60 * SECOND
DAY = 86_400 * SECOND
TITLE_WINDOW_BEFORE = 10 * MINUTE
NOTIFY_WINDOW = 5 * MINUTE
V0_CREATION_WINDOW = DAY

#: Log owner names that are well-known accounts (the database keeps the SID; a log-only job has none).
ACCOUNT_SIDS = {"nt authority\\system": "S-1-5-18", "nt authority\\local service": "S-1-5-19",
                "nt authority\\network service": "S-1-5-20", "nt-autorität\\system": "S-1-5-18",
                "autorite nt\\système": "S-1-5-18", "system": "S-1-5-18"}
ENDING_EVENTS = {4: JobState.ACKNOWLEDGED, 5: JobState.CANCELLED, 16384: JobState.CANCELLED,
                 16389: JobState.CANCELLED}
TRANSFER_ENDS = (4, 60, 61)
READ_ONLY = {"info", "list"}


@dataclass
class Picture:
    """Everything read, joined: what the writers and the rules get."""

    jobs: list[Job] = field(default_factory=list)              # database jobs (histories attached)
    log_jobs: list[Job] = field(default_factory=list)          # jobs only the logs know
    processes: list[ProcessEvent] = field(default_factory=list)   # BITS command lines / notify runs not linked
    log_events: list[LogEvent] = field(default_factory=list)      # events of no job (service, peer, network)
    services: list[ServiceConfig] = field(default_factory=list)
    coverage: list[LogCoverage] = field(default_factory=list)     # one per host whose event logs were read
    logs: list[LogReadResult] = field(default_factory=list)

    def latest_time(self) -> int | None:
        """The newest time an event-log record holds: the logs' own 'now' (never the analyst's clock)."""
        times = [r.time for log in self.logs for r in (*log.events, *log.processes) if r.time]
        return max(times) if times else None


def host_key(name: str | None) -> str | None:
    """`JUMP01.offsec.lan` and `JUMP01` are one computer."""
    if not name:
        return None
    return name.strip().split(".")[0].lower() or None


def _same_host(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def join(jobs: Iterable[Job], logs: Iterable[LogReadResult], services: Iterable[ServiceConfig] = ()) -> Picture:
    picture = Picture(jobs=list(jobs), logs=list(logs))
    seen_services = set()
    for service in services:
        key = (service.provenance.source_sha256 or service.provenance.source_path) if service.provenance else id(service)
        if key not in seen_services:
            seen_services.add(key)
            picture.services.append(service)
    events = sorted((e for log in picture.logs for e in log.events), key=_event_order)
    processes = sorted((p for log in picture.logs for p in log.processes), key=_event_order)
    _claim_v0_creations(events)
    histories: dict[str, JobHistory] = {}
    for event in events:
        if event.source == "bits-client" and event.job_id:
            history = histories.setdefault(event.job_id, JobHistory(computer=event.computer))
            history.events.append(event)
        else:
            picture.log_events.append(event)
    for history in histories.values():
        _summarise(history)
    by_id: dict[str, Job] = {}
    for job in picture.jobs:
        if job.job_id and job.job_id.lower() in histories:
            job.history = histories[job.job_id.lower()]
        if job.job_id:
            by_id.setdefault(job.job_id.lower(), job)
    for job_id, history in histories.items():
        if job_id not in by_id:
            job = log_only_job(job_id, history)
            picture.log_jobs.append(job)
            by_id[job_id] = job
    picture.log_jobs.sort(key=lambda j: (j.creation_time or j.modification_time or 0, j.job_id or ""))
    service_pids = _service_pids(events)
    everything = picture.jobs + picture.log_jobs
    for process in processes:
        if process.linked_by == "parent is a service host":
            if (host_key(process.computer), process.parent_process_id) not in service_pids:
                continue                       # an ordinary svchost child: not BITS evidence
            process.notify_execution = True
            process.linked_by = None
        target = _link_notify(process, everything) if process.notify_execution else _link(process, everything, by_id)
        if target is None:
            picture.processes.append(process)
    picture.coverage = coverage(picture)
    _apply_policies(picture)
    return picture


def _apply_policies(picture: Picture) -> None:
    """A host's JobInactivityTimeout policy sets the expiry its jobs really had (lifetime rules use it)."""
    policies = {_where(s.provenance): s.job_inactivity_timeout_days for s in picture.services
                if s.job_inactivity_timeout_days}
    if not policies:
        return
    only = next(iter(policies.values())) if len(policies) == 1 else None
    for job in picture.jobs + picture.log_jobs:
        days = policies.get(_where(job.provenance), only if not (job.provenance and job.provenance.host) else None)
        if days:
            if job.history is None:
                job.history = JobHistory(computer=job.provenance.host if job.provenance else None)
            job.history.inactivity_timeout_days = days


BITS_CHANNEL_FILE = "microsoft-windows-bits-client%4operational.evtx"
CLEARED_CHANNELS = {"microsoft-windows-bits-client/operational", "security", "microsoft-windows-sysmon/operational",
                    "microsoft-windows-powershell/operational", "windows powershell", "system"}


def _where(provenance: Provenance | None) -> str:
    """The host a record belongs to: the evidence's host, else its evidence item (loose files: one group)."""
    if provenance is None:
        return ""
    return host_key(provenance.host) or provenance.container or ""


def coverage(picture: Picture) -> list[LogCoverage]:
    """Per host whose logs were read: which logs, what the Bits-Client log spans, log clearings, and the
    databases' activity (jobs and their latest time)."""
    hosts: dict[str, LogCoverage] = {}
    for log in picture.logs:
        key = host_key(log.host) or log.container or ""
        entry = hosts.setdefault(key, LogCoverage(host=log.host, provenance=Provenance(
            source_path=log.path, source_kind="evtx", source_sha256=log.sha256, host=log.host,
            container=log.container)))
        entry.logs.append(log.path)
        name = log.path.replace("\\", "/").rsplit("/", 1)[-1].lower().replace("/", "%4")
        bits = log.channels.get(BITS_CLIENT_CHANNEL) or name == BITS_CHANNEL_FILE
        if bits:
            entry.bits_client_log = log.path
            entry.bits_client_records += log.channels.get(BITS_CLIENT_CHANNEL, 0)
            times = [e.time for e in log.events if e.source == "bits-client" and e.time]
            if times:
                entry.bits_client_first = min(times + [entry.bits_client_first or times[0]])
                entry.bits_client_last = max(times + [entry.bits_client_last or 0])
        for event in log.events:
            if event.action == "event log cleared" and (event.title or "").lower() in CLEARED_CHANNELS:
                entry.cleared.append(event)
    for job in picture.jobs:
        entry = hosts.get(_where(job.provenance))
        if entry is None and len(hosts) == 1 and not (job.provenance and job.provenance.host):
            entry = next(iter(hosts.values()))          # loose files given together: one host
        if entry is not None:
            entry.database_jobs += 1
            last = max(t or 0 for t in (job.creation_time, job.modification_time, job.completion_time))
            entry.database_last_activity = max(entry.database_last_activity or 0, last) or None
    return [hosts[key] for key in sorted(hosts)]


def _event_order(event) -> tuple:
    provenance = event.provenance
    return (event.time or 0, host_key(event.computer) or "", provenance.source_path if provenance else "",
            provenance.record_index if provenance and provenance.record_index is not None else -1)


def _claim_v0_creations(events: list[LogEvent]) -> None:
    """Give each GUID-less event 3 (Windows 7) the job it created, by title, computer and time."""
    created = {e.job_id for e in events if e.event_id == 3 and e.job_id}
    first_seen: dict[str, LogEvent] = {}
    for event in events:
        if event.source == "bits-client" and event.job_id and event.job_id not in first_seen:
            first_seen[event.job_id] = event
    for event in events:
        if event.source != "bits-client" or event.event_id != 3 or event.job_id or not event.title:
            continue
        for job_id, first in first_seen.items():
            if (job_id not in created and first.title == event.title
                    and host_key(first.computer) == host_key(event.computer)
                    and 0 <= (first.time or 0) - (event.time or 0) <= V0_CREATION_WINDOW):
                event.job_id = job_id
                event.data["job_id_from"] = "title and time (Windows 7 event 3 has no job GUID)"
                created.add(job_id)
                break


def _summarise(history: JobHistory) -> None:
    for event in history.events:
        if event.owner and not history.owner_account:
            history.owner_account = event.owner
        if event.event_id == 3 and event.process_path and not history.creator_image:
            history.creator_image = event.process_path
            history.creator_process_id = event.process_id


def _service_pids(events: list[LogEvent]) -> set[tuple[str | None, int]]:
    """(computer, PID) of the BITS service: the process that wrote Bits-Client events."""
    pids = set()
    for event in events:
        pid = event.data.get("service_process_id") if event.source == "bits-client" else None
        if isinstance(pid, int):
            pids.add((host_key(event.computer), pid))
    return pids


def log_only_job(job_id: str, history: JobHistory) -> Job:
    """A Job built from what the log knows (no database holds it)."""
    history.log_only = True
    events = history.events
    title = next((e.title for e in events if e.title), None)
    creation = next((e.time for e in events if e.event_id == 3), None)
    state = None
    completion = None
    for event in events:
        if event.event_id in ENDING_EVENTS:
            state = ENDING_EVENTS[event.event_id]
            if event.event_id == 4:
                completion = event.time
        elif event.event_id == 61:
            state = JobState.TRANSIENT_ERROR
    owner = history.owner_account
    files: dict[str, JobFile] = {}
    for event in events:
        key = event.file_id or (event.url or "").lower()
        if not key or not (event.url or event.local_name):
            continue
        jf = files.get(key) or next((f for f in files.values() if event.url and f.remote_name == event.url), None)
        if jf is None:
            jf = files[key] = JobFile(file_id=event.file_id, provenance=event.provenance)
        jf.remote_name = jf.remote_name or event.url
        jf.local_name = jf.local_name or event.local_name
        if event.bytes_total is not None:
            jf.bytes_total = event.bytes_total
        if event.bytes_transferred is not None:
            jf.bytes_transferred = max(jf.bytes_transferred or 0, event.bytes_transferred)
    source = events[0].provenance
    provenance = Provenance(source_path=source.source_path if source else "", source_kind="evtx",
                            table=source.table if source else None,
                            record_index=source.record_index if source else None,
                            recovered_from="event log", source_sha256=source.source_sha256 if source else None)
    if source is not None:
        for name in ("container", "host", "host_source", "partition", "snapshot", "path_in_evidence",
                     "source_size", "file_times"):
            setattr(provenance, name, getattr(source, name))
    return Job(job_id=job_id, display_name=title, state=state, owner_name=owner,
               owner_sid=ACCOUNT_SIDS.get((owner or "").lower()), creator_image=history.creator_image,
               files=list(files.values()), file_ids=[f.file_id for f in files.values() if f.file_id],
               creation_time=creation, completion_time=completion,
               modification_time=max((e.time or 0 for e in events), default=None) or None,
               provenance=provenance, history=history)


def _job_host(job: Job) -> str | None:
    if job.history and job.history.computer:
        return host_key(job.history.computer)
    return host_key(job.provenance.host) if job.provenance else None


def _span(job: Job) -> tuple[int | None, int | None]:
    times = [e.time for e in (job.history.events if job.history else []) if e.time]
    times += [t for t in (job.creation_time, job.modification_time) if t]
    return (min(times), max(times)) if times else (None, None)


def _attach(job: Job, process: ProcessEvent, how: str) -> None:
    if job.history is None:
        job.history = JobHistory(computer=job.provenance.host if job.provenance else None)
    target = job.history.notify_executions if process.notify_execution else job.history.processes
    if all(p is not process for p in target):
        target.append(process)
    if job.job_id and job.job_id not in process.job_ids:
        process.job_ids.append(job.job_id)
    process.linked_by = process.linked_by or how


def _link(process: ProcessEvent, jobs: list[Job], by_id: dict[str, Job]) -> Job | None:
    """Link by job GUID, URL, or title and time; returns the (last) job linked, or None."""
    host = host_key(process.computer)
    linked = None
    for op in process.operations:
        if op.operation in READ_ONLY:
            continue
        job = by_id.get(guid(op.job) or "") if op.job else None
        how = "job id"
        if job is None and op.remote_name:
            url = op.remote_name.lower()
            job = next((j for j in jobs if _same_host(host, _job_host(j))
                        and any((f.remote_name or "").lower() == url for f in j.files)), None)
            how = "url"
        if job is None and op.job:
            job = _by_title(op.job, process, jobs, host, op.remote_name)
            how = "title and time"
        if job is not None:
            _attach(job, process, how)
            linked = job
    return linked


def _by_title(title: str, process: ProcessEvent, jobs: list[Job], host: str | None,
              url: str | None) -> Job | None:
    best, best_gap = None, None
    for job in jobs:
        if (job.display_name or "").lower() != title.lower() or not _same_host(host, _job_host(job)):
            continue
        remote = {(f.remote_name or "").lower() for f in job.files if f.remote_name}
        if url and remote and url.lower() not in remote:
            continue                            # the command fetched something else: another job
        start, end = _span(job)
        if start is None or process.time is None:
            continue
        if start - TITLE_WINDOW_BEFORE <= process.time <= end:
            gap = abs(start - process.time)
            if best_gap is None or gap < best_gap:
                best, best_gap = job, gap
    return best


def _link_notify(process: ProcessEvent, jobs: list[Job]) -> Job | None:
    """The job whose transfer ended last before the notify program started (same computer)."""
    host = host_key(process.computer)
    best, best_time = None, None
    for job in jobs:
        if not _same_host(host, _job_host(job)) or job.history is None or process.time is None:
            continue
        for event in job.history.events:
            if event.event_id in TRANSFER_ENDS and event.time and 0 <= process.time - event.time <= NOTIFY_WINDOW:
                if best_time is None or event.time > best_time:
                    best, best_time = job, event.time
    if best is not None:
        _attach(best, process, "time after the transfer ended")
    return best
