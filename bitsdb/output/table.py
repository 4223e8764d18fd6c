"""A readable per-job summary for a terminal."""

from __future__ import annotations

from ..model import Job, JobFile, NotifyFlags, flag_names
from ..timeutil import filetime_to_ez
from .base import RecordWriter


def _n(value) -> str:
    if value is None:
        return "?"
    return getattr(value, "name", str(value))


def _size(value) -> str:
    return "unknown" if value in (None, -1) else f"{value:,}"


class TableWriter(RecordWriter):
    def begin_source(self, path, kind, job_count, orphan_count):
        extra = f", {orphan_count} orphan file(s)" if orphan_count else ""
        self.stream.write(f"\n== {path}  [{kind}]  {job_count} job(s){extra}\n")

    def write_job(self, job: Job):
        if job.history is not None and job.history.log_only:
            self._log_job(job)
            return
        w = self.stream.write
        partial = f"  PARTIAL: {job.partial_reason}" if job.partial else ""
        w(f"\nJob {job.job_id}  {job.display_name!r}\n")
        w(f"  {_n(job.type)} / {_n(job.state)} / priority {_n(job.priority)}{partial}\n")
        if job.description:
            w(f"  description   {job.description}\n")
        integrity = job.security.owner_integrity_level if job.security else None
        owner = job.owner_sid or "?"
        if job.owner_name:
            owner += f" ({job.owner_name})"
        w(f"  owner         {owner}  integrity {integrity or '?'}\n")
        if job.creator_image is not None:
            w(f"  creator       {job.creator_image or '(empty)'}\n")
        if job.package_family_name is not None or job.application_id is not None:
            w(f"  package       {job.package_family_name or '-'}  application {job.application_id or '-'}\n")
        command = " ".join(x for x in (job.notify_program, job.notify_parameters) if x)
        flags = "|".join(flag_names(NotifyFlags, job.notify_flags)) if job.notify_flags is not None else "?"
        w(f"  notify cmd    {command or '(none)'}  [flags {flags}]\n")
        times = [("created", job.creation_time), ("modified", job.modification_time),
                 ("completed", job.completion_time), ("expires", job.expiration_time)]
        w("  times (UTC)   " + "  ".join(f"{k} {filetime_to_ez(v) or '-'}" for k, v in times) + "\n")
        w(f"  retry/no-progress/max  {job.min_retry_delay}s / {job.no_progress_timeout}s / "
          f"{job.max_download_time}s   proxy {_n(job.proxy_usage)}\n")
        if job.custom_headers:
            w(f"  custom headers  DPAPI-encrypted, {job.custom_headers.blob_length} bytes\n")
        for error in job.errors:
            w(f"  error         {error.hresult_hex} context {_n(error.context)}\n")
        for index, jf in enumerate(job.files):
            self._file(index, jf)
        for file_id in job.missing_file_ids:
            w(f"  file          {file_id}  MISSING from the Files table\n")
        if job.provenance is not None and (job.provenance.recovered or job.provenance.state_file):
            where = job.provenance.recovered_from or job.provenance.state_file
            offset = f" at offset 0x{job.provenance.offset:x}" if job.provenance.offset is not None else ""
            w(f"  source        {where}{offset}{' (recovered)' if job.provenance.recovered else ''}\n")
        if job.history is not None:
            self._history(job)
        for finding in self.findings(job) or []:
            w(f"  FINDING       [{finding.severity}] {finding.rule_id}: {finding.explanation}\n")

    def _log_job(self, job: Job):
        """A job only the event logs know: what they say, without the database's empty fields."""
        w = self.stream.write
        w(f"\nLog-only job {job.job_id}  {job.display_name!r}  [{_n(job.state) if job.state is not None else 'state not logged'}]\n")
        if job.creator_image:
            w(f"  creator       {job.creator_image}\n")
        for index, jf in enumerate(job.files):
            self._file(index, jf)
        self._history(job)
        for finding in self.findings(job) or []:
            w(f"  FINDING       [{finding.severity}] {finding.rule_id}: {finding.explanation}\n")

    def _history(self, job: Job):
        """The lifecycle from the logs, one line per event in time order (time, event id, what it says)."""
        from ..timeline.logs import describe_log_event, describe_process

        history, w = job.history, self.stream.write
        owner = f"  owner {history.owner_account}" if history.owner_account else ""
        w(f"  log lifecycle{owner}\n")
        lines = []
        for event in history.events:
            detail = describe_log_event(event).replace(f"job '{event.title or ''}' ({event.job_id}); ", "")
            lines.append((event.time or 0, f"{event.event_id:>5} {detail}"))
        for process in [*history.processes, *history.notify_executions]:
            tag = "NOTIFY RAN" if process.notify_execution else f"{process.source} {process.event_id}"
            lines.append((process.time or 0, f"{tag} {describe_process(process)}"))
        for when, text in sorted(lines, key=lambda line: line[0]):
            w(f"    {filetime_to_ez(when)[:23] or '-':<23} {text}\n")

    def write_record(self, record_type, record, findings=None):
        from ..timeline.logs import describe_log_event, describe_process, describe_service

        w = self.stream.write
        if record_type == "log_coverage":
            from ..timeline.logs import describe_coverage

            w(f"\nEvent logs of {record.host or 'the loose files'}\n  {describe_coverage(record)}\n")
        elif record_type == "service":
            w(f"\nBITS service ({record.control_set})  {record.provenance.source_path if record.provenance else ''}\n")
            w(f"  {describe_service(record)}\n")
            for name, other in sorted(record.other_control_sets.items()):
                w(f"  {name}: start {other.get('start_name')} image {other.get('image_path')} "
                  f"ServiceDll {other.get('service_dll')}\n")
            if record.policies:
                w("  policies      " + ", ".join(f"{k}={v}" for k, v in sorted(record.policies.items())) + "\n")
        else:
            text = describe_process(record) if record_type == "process" else describe_log_event(record)
            where = record.provenance.table if record.provenance else ""
            w(f"\n{record_type} {filetime_to_ez(record.time)[:23]}  {where} {record.event_id}\n  {text}\n")
        for finding in findings or []:
            w(f"  FINDING       [{finding.severity}] {finding.rule_id}: {finding.explanation}\n")

    def _file(self, index: int, jf: JobFile, label: str | None = None):
        w = self.stream.write
        w(f"  {label or f'file {index}':<13} {jf.remote_name or '?'}\n")
        w(f"  {'':<13} -> {jf.local_name or '?'}  ({_size(jf.bytes_transferred)}/{_size(jf.bytes_total)} bytes)\n")
        if jf.remote_last_modified:
            w(f"  {'':<13} remote Last-Modified {filetime_to_ez(jf.remote_last_modified)}\n")

    def write_orphan(self, jf: JobFile):
        self.stream.write(f"\nOrphan file {jf.file_id} (no job references it)\n")
        self._file(0, jf, label="file")

    def close(self):
        super().close()
