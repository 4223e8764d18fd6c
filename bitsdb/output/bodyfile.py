"""mactime bodyfile (TSK 3.x): MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime.

One line per job and file with crtime = job created, mtime = job modified, atime = transfer
completed (ctime unused); one more line per job for its expiry and one per file for the
remote Last-Modified, each as mtime. Times are whole epoch seconds (FILETIME truncated).
"""

from __future__ import annotations

from ..model import Job, JobFile
from ..text import one_line
from .base import RecordWriter

FILETIME_UNIX_EPOCH = 116444736000000000


def epoch_seconds(filetime: int | None) -> int:
    return 0 if not filetime else (filetime - FILETIME_UNIX_EPOCH) // 10_000_000


def clean(text: str) -> str:
    """mactime has no escaping: pipes would break the columns, and line breaks or terminal escapes the
    lines mactime prints; control characters are shown escaped (bitsdb.text.one_line)."""
    return one_line(text).replace("|", "!")


class BodyfileWriter(RecordWriter):
    def _line(self, name: str, uid: str, size: int, atime=0, mtime=0, ctime=0, crtime=0):
        fields = ["0", clean(name), "0", "r/rrwxrwxrwx", clean(uid or "0"), "0", str(max(size, 0)),
                  str(atime), str(mtime), str(ctime), str(crtime)]
        if any(fields[7:]):
            self.stream.write("|".join(fields) + "\n")

    def _job(self, job: Job):
        if job.history is not None and job.history.log_only:
            self._history_lines(job, job.owner_sid or "0")
            return
        base = f"BITS job '{job.display_name or ''}' [{getattr(job.state, 'name', job.state)}]"
        if job.notify_program or job.notify_parameters:
            base += f" notify: {' '.join(x for x in (job.notify_program, job.notify_parameters) if x)}"
        if job.provenance is not None and job.provenance.recovered:
            base += " (recovered)"
        uid = job.owner_sid or "0"
        times = dict(atime=epoch_seconds(job.completion_time), mtime=epoch_seconds(job.modification_time),
                     crtime=epoch_seconds(job.creation_time))
        for jf in job.files or [None]:
            transfer = f" {jf.remote_name or '?'} -> {jf.local_name or '?'}" if jf else ""
            size = jf.bytes_total if jf and jf.bytes_total else 0
            self._line(base + transfer, uid, size or 0, **times)
        self._line(f"[BITS job expires] {base}", uid, 0, mtime=epoch_seconds(job.expiration_time))
        for jf in job.files:
            self._file_line(jf, uid, f" (BITS job '{job.display_name or ''}')")
        if job.history is not None:
            self._history_lines(job, uid)

    def _history_lines(self, job: Job, uid: str):
        from ..timeline.logs import expand_history

        for event in expand_history(job, []):
            self._line(f"[{event.message}]", uid, 0, mtime=epoch_seconds(event.filetime))

    def _other(self, record_type, record, verdict):
        from ..timeline.logs import expand_record

        for event in expand_record(record_type, record):
            self._line(f"[{event.message}]", "0", 0, mtime=epoch_seconds(event.filetime))

    def _file_line(self, jf: JobFile, uid: str, suffix: str):
        self._line(f"[remote Last-Modified] {jf.remote_name or '?'} -> {jf.local_name or '?'}{suffix}", uid,
                   jf.bytes_total or 0, mtime=epoch_seconds(jf.remote_last_modified))

    def _orphan(self, jf: JobFile):
        self._file_line(jf, "0", " (orphan file)")
