"""A readable per-job summary for a terminal.

Values come from the evidence: every line is written through `one_line`, so a name holding a
newline or a terminal escape sequence cannot break the layout or drive the terminal.
"""

from __future__ import annotations

from ..model import Job, JobFile, NotifyFlags, flag_names
from ..text import one_line
from ..timeutil import filetime_to_ez
from .base import RecordWriter


def _n(value) -> str:
    if value is None:
        return "?"
    return getattr(value, "name", str(value))


def _size(value) -> str:
    return "unknown" if value in (None, -1) else f"{value:,}"


class TableWriter(RecordWriter):
    def _line(self, text: str = "") -> None:
        self.stream.write(one_line(text) + "\n")

    def _begin(self, path, kind, job_count, orphan_count):
        extra = f", {orphan_count} orphan file(s)" if orphan_count else ""
        self._line()
        self._line(f"== {path}  [{kind}]  {job_count} job(s){extra}")

    def _job(self, job: Job):
        if job.history is not None and job.history.log_only:
            self._log_job(job)
            return
        w = self._line
        partial = f"  PARTIAL: {job.partial_reason}" if job.partial else ""
        w()
        w(f"Job {job.job_id}  {job.display_name!r}")
        w(f"  {_n(job.type)} / {_n(job.state)} / priority {_n(job.priority)}{partial}")
        if job.description:
            w(f"  description   {job.description}")
        integrity = job.security.owner_integrity_level if job.security else None
        owner = job.owner_sid or "?"
        if job.owner_name:
            owner += f" ({job.owner_name})"
        w(f"  owner         {owner}  integrity {integrity or '?'}")
        if job.creator_image is not None:
            w(f"  creator       {job.creator_image or '(empty)'}")
        if job.package_family_name is not None or job.application_id is not None:
            w(f"  package       {job.package_family_name or '-'}  application {job.application_id or '-'}")
        command = " ".join(x for x in (job.notify_program, job.notify_parameters) if x)
        flags = "|".join(flag_names(NotifyFlags, job.notify_flags)) if job.notify_flags is not None else "?"
        w(f"  notify cmd    {command or '(none)'}  [flags {flags}]")
        times = [("created", job.creation_time), ("modified", job.modification_time),
                 ("completed", job.completion_time), ("expires", job.expiration_time)]
        w("  times (UTC)   " + "  ".join(f"{k} {filetime_to_ez(v) or '-'}" for k, v in times))
        w(f"  retry/no-progress/max  {job.min_retry_delay}s / {job.no_progress_timeout}s / "
          f"{job.max_download_time}s   proxy {_n(job.proxy_usage)}")
        if job.custom_headers:
            w(f"  custom headers  DPAPI-encrypted, {job.custom_headers.blob_length} bytes")
        for error in job.errors:
            w(f"  error         {error.hresult_hex} context {_n(error.context)}")
        for index, jf in enumerate(job.files):
            self._file(index, jf)
        for file_id in job.missing_file_ids:
            w(f"  file          {file_id}  MISSING from the Files table")
        if job.provenance is not None and (job.provenance.recovered or job.provenance.state_file):
            where = job.provenance.recovered_from or job.provenance.state_file
            offset = f" at offset 0x{job.provenance.offset:x}" if job.provenance.offset is not None else ""
            w(f"  source        {where}{offset}{' (recovered)' if job.provenance.recovered else ''}")
        self._raw_strings(job)
        if job.history is not None:
            self._history(job)
        self._findings(self.verdict(job))

    def _log_job(self, job: Job):
        """A job only the event logs know: what they say, without the database's empty fields."""
        w = self._line
        w()
        w(f"Log-only job {job.job_id}  {job.display_name!r}  "
          f"[{_n(job.state) if job.state is not None else 'state not logged'}]")
        if job.creator_image:
            w(f"  creator       {job.creator_image}")
        for index, jf in enumerate(job.files):
            self._file(index, jf)
        self._history(job)
        self._findings(self.verdict(job))

    def _history(self, job: Job):
        """The lifecycle from the logs, one line per event in time order (time, event id, what it says)."""
        from ..timeline.logs import describe_log_event, describe_process

        history = job.history
        owner = f"  owner {history.owner_account}" if history.owner_account else ""
        self._line(f"  log lifecycle{owner}")
        lines = []
        for event in history.events:
            detail = describe_log_event(event).replace(f"job '{event.title or ''}' ({event.job_id}); ", "")
            lines.append((event.time or 0, f"{event.event_id:>5} {detail}"))
        for process in [*history.processes, *history.notify_executions]:
            tag = "NOTIFY RAN" if process.notify_execution else f"{process.source} {process.event_id}"
            lines.append((process.time or 0, f"{tag} {describe_process(process)}"))
        for when, text in sorted(lines, key=lambda line: line[0]):
            self._line(f"    {filetime_to_ez(when)[:23] or '-':<23} {text}")

    def _other(self, record_type, record, verdict):
        from ..timeline.logs import describe_log_event, describe_process, describe_service

        w = self._line
        w()
        if record_type == "log_coverage":
            from ..timeline.logs import describe_coverage

            w(f"Event logs of {record.host or 'the loose files'}")
            w(f"  {describe_coverage(record)}")
        elif record_type == "service":
            w(f"BITS service ({record.control_set})  {record.provenance.source_path if record.provenance else ''}")
            w(f"  {describe_service(record)}")
            for name, other in sorted(record.other_control_sets.items()):
                w(f"  {name}: start {other.get('start_name')} image {other.get('image_path')} "
                  f"ServiceDll {other.get('service_dll')}")
            if record.policies:
                w("  policies      " + ", ".join(f"{k}={v}" for k, v in sorted(record.policies.items())))
        else:
            text = describe_process(record) if record_type == "process" else describe_log_event(record)
            where = record.provenance.table if record.provenance else ""
            w(f"{record_type} {filetime_to_ez(record.time)[:23]}  {where} {record.event_id}")
            w(f"  {text}")
        self._findings(verdict)

    def _findings(self, verdict) -> None:
        if verdict is None:
            return
        self._line(f"  VERDICT       {verdict.severity} (confidence {verdict.confidence}): "
                   + " | ".join(verdict.top_reasons()))
        for finding in verdict.hits:
            self._line(f"  FINDING       [{finding.severity}] {finding.rule_id}: {finding.explanation}")

    def _raw_strings(self, record) -> None:
        """Text that was not valid Unicode: the record's kept source bytes (see README, Output)."""
        for name, raw in sorted(record.raw_strings.items()):
            self._line(f"  raw bytes     {name} = {raw}")

    def _file(self, index: int, jf: JobFile, label: str | None = None):
        w = self._line
        w(f"  {label or f'file {index}':<13} {jf.remote_name or '?'}")
        w(f"  {'':<13} -> {jf.local_name or '?'}  ({_size(jf.bytes_transferred)}/{_size(jf.bytes_total)} bytes)")
        if jf.remote_last_modified:
            w(f"  {'':<13} remote Last-Modified {filetime_to_ez(jf.remote_last_modified)}")
        self._raw_strings(jf)

    def _orphan(self, jf: JobFile):
        self._line()
        self._line(f"Orphan file {jf.file_id} (no job references it)")
        self._file(0, jf, label="file")
