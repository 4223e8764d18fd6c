"""CSV, one row per job x file, in the style of Eric Zimmerman's tools (Timeline Explorer)."""

from __future__ import annotations

import csv

from ..model import CostFlags, FileAclFlags, Job, JobFile, NotifyFlags, SecurityFlags, flag_names
from ..timeutil import filetime_to_ez
from .base import RecordWriter, record_type_of


class CsvRows:
    """csv.writer whose rows stay rows: the csv module quotes a cell for the line terminator's
    characters only, so a cell holding a bare CR (a folder name, a job string) would end the row
    for every reader; such a row is written with every cell quoted (still plain CSV)."""

    def __init__(self, stream) -> None:
        self._minimal = csv.writer(stream, lineterminator="\n")
        self._quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: list) -> None:
        quoted = any(isinstance(cell, str) and "\r" in cell for cell in row)
        (self._quoted if quoted else self._minimal).writerow(row)


def _name(value) -> str:
    if value is None:
        return ""
    return getattr(value, "name", str(value))


def _flags(flag_type, value) -> str:
    return "" if value is None else "|".join(flag_names(flag_type, value)) or "0"


def _hex(value) -> str:
    return "" if value is None else f"0x{value:X}"


def _text(value) -> str:
    return "" if value is None else str(value)


JOB_COLUMNS = {
    "JobId": lambda j: _text(j.job_id),
    "DisplayName": lambda j: _text(j.display_name),
    "Description": lambda j: _text(j.description),
    "JobType": lambda j: _name(j.type),
    "Priority": lambda j: _name(j.priority),
    "State": lambda j: _name(j.state),
    "OwnerSid": lambda j: _text(j.owner_sid),
    "OwnerName": lambda j: _text(j.owner_name),
    "IntegrityLevel": lambda j: _text(j.security.owner_integrity_level if j.security else None),
    "NotifyProgram": lambda j: _text(j.notify_program),
    "NotifyParameters": lambda j: _text(j.notify_parameters),
    "NotifyFlags": lambda j: _flags(NotifyFlags, j.notify_flags),
    "CreatorImage": lambda j: _text(j.creator_image),
    "PackageFamilyName": lambda j: _text(j.package_family_name),
    "ApplicationId": lambda j: _text(j.application_id),
    "HttpMethod": lambda j: _text(j.http_method),
    "CreationTime": lambda j: filetime_to_ez(j.creation_time),
    "ModificationTime": lambda j: filetime_to_ez(j.modification_time),
    "ModificationTime2": lambda j: filetime_to_ez(j.modification_time_2),
    "CompletionTime": lambda j: filetime_to_ez(j.completion_time),
    "InactivityBaseTime": lambda j: filetime_to_ez(j.inactivity_base_time),
    "ExpirationTime": lambda j: filetime_to_ez(j.expiration_time),
    "TransientErrorCount": lambda j: _text(j.transient_error_count),
    "MinRetryDelay": lambda j: _text(j.min_retry_delay),
    "NoProgressTimeout": lambda j: _text(j.no_progress_timeout),
    "MaxDownloadTime": lambda j: _text(j.max_download_time),
    "ProxyUsage": lambda j: _name(j.proxy_usage),
    "ProxyList": lambda j: _text(j.proxy_list),
    "ProxyBypass": lambda j: _text(j.proxy_bypass),
    "FileAclFlags": lambda j: _flags(FileAclFlags, j.file_acl_flags),
    "SecurityFlags": lambda j: _flags(SecurityFlags, j.security_flags),
    "CostFlags": lambda j: _hex(j.cost_flags) + (f" ({_flags(CostFlags, j.cost_flags)})" if j.cost_flags else ""),
    "CustomHeaders": lambda j: "" if j.custom_headers is None else
        f"DPAPI {j.custom_headers.blob_length} bytes, master key {j.custom_headers.dpapi_master_key or '?'}",
    "Timers": lambda j: "; ".join(f"{t.slot} {filetime_to_ez(t.start)} - {filetime_to_ez(t.end)}" for t in j.timers),
    "ErrorCount": lambda j: str(len(j.errors)),
    "LastErrorHresult": lambda j: _text(j.errors[-1].hresult_hex) if j.errors else "",
    "LastErrorContext": lambda j: _name(j.errors[-1].context) if j.errors else "",
    "FileCount": lambda j: str(len(j.file_ids) or len(j.files)),
    "MissingFileIds": lambda j: "|".join(j.missing_file_ids),
    "JobPartial": lambda j: str(j.partial),
    "JobPartialReason": lambda j: _text(j.partial_reason),
}

FILE_COLUMNS = {
    "FileIndex": None,
    "FileId": lambda f: _text(f.file_id),
    "RemoteName": lambda f: _text(f.remote_name),
    "LocalName": lambda f: _text(f.local_name),
    "TempName": lambda f: _text(f.temp_name),
    "BytesTransferred": lambda f: _text(f.bytes_transferred),
    "BytesTotal": lambda f: _text(f.bytes_total),
    "Drive": lambda f: _text(f.drive),
    "Volume": lambda f: _text(f.volume),
    "RemoteLastModified": lambda f: filetime_to_ez(f.remote_last_modified),
    "FilePartial": lambda f: str(f.partial),
}

SOURCE_COLUMNS = ("RecordType", "SourceFile", "SourceKind", "Table", "RecordIndex", "Offset", "Recovered",
                  "RecoveredFrom", "SourceSha256")

def source_cells(p) -> list[str]:
    """Cells for SOURCE_COLUMNS after RecordType (the caller's)."""
    if p is None:
        return [""] * (len(SOURCE_COLUMNS) - 1)
    return [p.source_path, _text(p.source_kind), _text(p.table), _text(p.record_index), _text(p.offset),
            str(p.recovered), _text(p.recovered_from), _text(p.source_sha256)]


def raw_strings_cell(job: Job | None, jf: JobFile | None, provenance=None) -> str:
    """Every kept source value of a row's records (text that was not valid Unicode), as
    `field=hex` joined by `;`: job fields by name, then `file.`, `provenance.` and `file.provenance.`
    (`provenance`: of a record that is neither a job nor a file)."""
    parts = []
    provenance = job.provenance if job else provenance
    for prefix, record in (("", job), ("provenance.", provenance), ("file.", jf),
                           ("file.provenance.", jf.provenance if jf and (not job or jf.provenance is not
                                                                         job.provenance) else None)):
        if record is not None and getattr(record, "raw_strings", None):
            parts.extend(f"{prefix}{name}={raw}" for name, raw in sorted(record.raw_strings.items()))
    return ";".join(parts)


#: The last column: the source bytes of any text that had to be repaired (README, Output).
RAW_STRINGS_COLUMN = "RawStrings"
COLUMNS = list(SOURCE_COLUMNS) + list(JOB_COLUMNS) + list(FILE_COLUMNS) + [RAW_STRINGS_COLUMN]


FINDING_COLUMNS = ["Verdict", "VerdictConfidence", "Findings"]


def finding_cells(verdict) -> list[str]:
    """The verdict (as `bitsdb scan` gives it), its confidence and the `severity:rule_id` hits behind it."""
    if verdict is None:
        return ["", "", ""]
    return [verdict.severity, verdict.confidence, "|".join(f"{f.severity}:{f.rule_id}" for f in verdict.hits)]


class CsvWriter(RecordWriter):
    def __init__(self, stream, rules=None):
        super().__init__(stream, rules)
        self._csv = CsvRows(self.stream)
        self._whole(self._csv.writerow, COLUMNS + (FINDING_COLUMNS if rules is not None else []))

    def _source(self, record_type, provenance):
        return [record_type] + source_cells(provenance)

    def _file_cells(self, index, jf: JobFile | None):
        if jf is None:
            return [""] * len(FILE_COLUMNS)
        return [str(index)] + [fn(jf) for name, fn in FILE_COLUMNS.items() if fn is not None]

    def _job(self, job: Job):
        head = self._source(record_type_of(job), job.provenance) + [fn(job) for fn in JOB_COLUMNS.values()]
        tail = finding_cells(self.verdict(job)) if self.rules is not None else []
        if not job.files:
            self._csv.writerow(head + self._file_cells(None, None) + [raw_strings_cell(job, None)] + tail)
        for index, jf in enumerate(job.files):
            self._csv.writerow(head + self._file_cells(index, jf) + [raw_strings_cell(job, jf)] + tail)

    def _other(self, record_type, record, verdict):
        """One row: the record's sentence in DisplayName, its time in CreationTime, linked jobs in JobId."""
        from ..timeline.logs import describe_log_event, describe_process, describe_service
        from ..model import LogEvent, ProcessEvent

        cells = dict.fromkeys(JOB_COLUMNS, "")
        if isinstance(record, ProcessEvent):
            cells.update(JobId="|".join(record.job_ids), DisplayName=describe_process(record),
                         CreatorImage=_text(record.image), CreationTime=filetime_to_ez(record.time))
        elif isinstance(record, LogEvent):
            cells.update(JobId=_text(record.job_id), DisplayName=describe_log_event(record),
                         CreatorImage=_text(record.process_path), CreationTime=filetime_to_ez(record.time))
        elif record_type == "log_coverage":
            from ..timeline.logs import describe_coverage

            cells.update(DisplayName=describe_coverage(record))
        else:
            cells.update(DisplayName=describe_service(record))
        tail = finding_cells(verdict) if self.rules is not None else []
        self._csv.writerow(self._source(record_type, record.provenance) + list(cells.values())
                           + self._file_cells(None, None) + [raw_strings_cell(None, None, record.provenance)]
                           + tail)

    def _orphan(self, jf: JobFile):
        self._csv.writerow(self._source("orphan_file", jf.provenance) + [""] * len(JOB_COLUMNS)
                           + self._file_cells(0, jf) + [raw_strings_cell(None, jf)]
                           + (finding_cells(None) if self.rules is not None else []))
