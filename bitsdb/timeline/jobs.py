"""Timeline events: one per meaningful timestamp of a job, a file or a recovered version.

The vocabulary below is the one place that names events; every timeline format
(Timesketch, bodyfile, ECS, long CSV) is written from these events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..model import Job, JobFile, JobState, JobType
from ..timeutil import filetime_to_datetime

JOB_DATA_TYPE = "windows:bits:job"
FILE_DATA_TYPE = "windows:bits:file"


@dataclass(frozen=True)
class EventKind:
    timestamp_desc: str      # Timesketch / plaso vocabulary, shown to the analyst
    action: str              # ECS event.action
    ecs_type: str            # ECS event.type (an allowed value)
    data_type: str


CREATED = EventKind("BITS job created", "bits-job-created", "creation", JOB_DATA_TYPE)
MODIFIED = EventKind("BITS job modified", "bits-job-modified", "change", JOB_DATA_TYPE)
MODIFIED_2 = EventKind("BITS job files or progress changed", "bits-job-files-changed", "change", JOB_DATA_TYPE)
VERSION_RECOVERED = EventKind("BITS job version recovered", "bits-job-version-recovered", "change", JOB_DATA_TYPE)
COMPLETED = EventKind("BITS transfer completed", "bits-transfer-completed", "end", JOB_DATA_TYPE)
INACTIVITY = EventKind("BITS job inactivity timer started", "bits-job-inactivity-start", "info", JOB_DATA_TYPE)
EXPIRES = EventKind("BITS job expires", "bits-job-expires", "info", JOB_DATA_TYPE)
ERROR = EventKind("BITS transfer error", "bits-transfer-error", "error", JOB_DATA_TYPE)
NO_PROGRESS_DEADLINE = EventKind("BITS no-progress timeout expires", "bits-no-progress-timeout", "info",
                                 JOB_DATA_TYPE)
RETRY_SCHEDULED = EventKind("BITS retry scheduled", "bits-retry-scheduled", "info", JOB_DATA_TYPE)
REMOTE_MODIFIED = EventKind("Remote file last modified", "bits-remote-file-modified", "info", FILE_DATA_TYPE)
UPLOAD_SOURCE_MODIFIED = EventKind("Uploaded file last modified", "bits-upload-source-modified", "info",
                                   FILE_DATA_TYPE)

#: Every kind, in the order the README documents them.
EVENT_KINDS = (CREATED, MODIFIED, MODIFIED_2, VERSION_RECOVERED, COMPLETED, INACTIVITY, EXPIRES, ERROR,
               NO_PROGRESS_DEADLINE, RETRY_SCHEDULED, REMOTE_MODIFIED, UPLOAD_SOURCE_MODIFIED)


@dataclass
class TimelineEvent:
    filetime: int
    kind: EventKind
    message: str
    job: Job
    file: JobFile | None = None
    tags: list[str] = field(default_factory=list)
    record: Any = None              # the LogEvent / ProcessEvent / ServiceConfig an event-log event shows

    @property
    def shown_file(self) -> JobFile | None:
        """The file a one-row format shows with the event: its own, else its job's only file."""
        if self.file is not None:
            return self.file
        return self.job.files[0] if len(self.job.files) == 1 else None


def _name(value) -> str:
    return getattr(value, "name", str(value)) if value is not None else "?"


def describe_job(job: Job) -> str:
    """The sentence shared by every event of a job: who, what, where to, what runs."""
    parts = [f"BITS {_name(job.type).lower()} job '{job.display_name or ''}' ({_name(job.state)})"]
    owner = job.owner_sid or "unknown owner"
    if job.owner_name:
        owner += f" ({job.owner_name})"
    parts.append(f"owner {owner}")
    if job.creator_image:
        parts.append(f"created by {job.creator_image}"
                     + (f" (package {job.package_family_name})" if job.package_family_name else ""))
    arrow = "<-" if job.type in (JobType.UPLOAD, JobType.UPLOAD_REPLY) else "->"
    for jf in job.files[:3]:
        parts.append(f"{jf.remote_name or '?'} {arrow} {jf.local_name or '?'}")
    if len(job.files) > 3:
        parts.append(f"and {len(job.files) - 3} more file(s)")
    command = " ".join(x for x in (job.notify_program, job.notify_parameters) if x)
    if command:
        parts.append(f"notify command: {command}")
    if job.provenance is not None and job.provenance.recovered:
        parts.append(f"recovered from {job.provenance.recovered_from or 'unallocated data'}")
    return "; ".join(parts)


def expand_job(job: Job, tags: Iterable[str] = ()) -> list[TimelineEvent]:
    """Events of one job (and its files), in time order; unset (zero) times and times no calendar
    date can show (negative, after 9999: damaged or crafted) give none (`parse` keeps the raw value)."""
    tags = sorted(set(tags))
    text = describe_job(job)
    recovered = job.provenance is not None and job.provenance.recovered
    events: list[TimelineEvent] = []

    def add(filetime: int | None, kind: EventKind, message: str = text, jf: JobFile | None = None) -> None:
        if filetime and filetime_to_datetime(filetime) is not None:
            events.append(TimelineEvent(filetime, kind, f"{kind.timestamp_desc}: {message}", job, jf, list(tags)))

    add(job.creation_time, CREATED)
    add(job.modification_time, VERSION_RECOVERED if recovered else MODIFIED)
    if job.modification_time_2 != job.modification_time:
        add(job.modification_time_2, MODIFIED_2)
    add(job.completion_time, COMPLETED)
    if job.inactivity_base_time != job.modification_time:
        add(job.inactivity_base_time, INACTIVITY)
    add(job.expiration_time, EXPIRES)
    timers = {t.slot: t for t in job.timers}
    if job.errors or job.state in (JobState.ERROR, JobState.TRANSIENT_ERROR):
        detail = "error " + ", ".join(e.hresult_hex or "?" for e in job.errors) if job.errors \
            else "no error record kept"
        when = timers["error"].start if "error" in timers else job.modification_time
        add(when, ERROR, f"{text}; {detail}")
    if "no_progress" in timers:
        add(timers["no_progress"].end, NO_PROGRESS_DEADLINE)
    if "retry" in timers:
        add(timers["retry"].end, RETRY_SCHEDULED)
    where = f"; recovered from {job.provenance.recovered_from or 'unallocated data'}" if recovered else ""
    for jf in job.files:
        file_text = f"{jf.remote_name or '?'} -> {jf.local_name or '?'} (BITS job '{job.display_name or ''}'){where}"
        add(jf.remote_last_modified, REMOTE_MODIFIED, file_text, jf)
        add(jf.local_file_mtime, UPLOAD_SOURCE_MODIFIED, file_text, jf)
    events.sort(key=lambda e: (e.filetime, EVENT_KINDS.index(e.kind)))
    return events


TagSource = Callable[[Job], Iterable[str]]
