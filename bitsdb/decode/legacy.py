"""Legacy job records (FORMAT.md §7.3, §7.4): the shared job sections with inline file records."""

from __future__ import annotations

import struct

from construct import Container

from ..formats import legacy as fmt
from ..formats.file import FileBody
from ..formats.job import MAX_FILES_PER_JOB, MAX_SD_SIZE
from ..formats.markers import FILE_LIST_MARKER, LEGACY_JOB_MARKERS
from ..model import Job, JobFile
from .file import file_from_body
from .job import job_from_sections, job_head_problems, job_head_span
from .sections import BlobError, parse_prefix, walk_sections


def _explain(error: str) -> str:
    """construct's stream messages, said plainly."""
    if "stream read less than specified amount" in error or "could not read enough bytes" in error:
        return f"{error} (data ends early: truncated)"
    return error


def decode_legacy_file(data: bytes, offset: int = 0) -> tuple[JobFile | None, int, str | None]:
    """One inline file record at `offset` -> (file or None, end offset, error or None).

    A record cut short still yields the fields before the cut, marked partial.
    """
    body, end, error = parse_prefix(FileBody, data, offset)
    if body is None:
        return None, offset, f"file record: {error}"
    jf = file_from_body(body, None, "legacy_inline")
    if error is None:
        progress, end, error = parse_prefix(fmt.LegacyProgress, data, end)
        if progress is not None:
            if "complete" in progress:
                jf.progress_complete = progress.complete
            if "bytes_done" in progress:
                jf.progress_bytes_done = progress.bytes_done
            jf.unknown.update(progress_a_unk16=bytes(progress.unk_a16).hex(),
                              **({"progress_a_unk8": progress.unk_a8} if "unk_a8" in progress else {}))
        if error is not None:
            error = f"progress block: {error}"
    else:
        error = f"file body: {error}"
    if error is not None:
        error = _explain(error)
        jf.partial = True
        jf.partial_reason = f"{error} (offset 0x{end:x})"
    return jf, end, error


def decode_legacy_file_list(data: bytes, offset: int = 0) -> tuple[list[JobFile], int, str | None]:
    """The inline file list (marker, count, records, marker) -> (files, end offset, error or None)."""
    if data[offset:offset + 16] != FILE_LIST_MARKER:
        return [], offset, "file list marker missing"
    if offset + 20 > len(data):
        return [], offset + 16, "truncated in the file count"
    (count,) = struct.unpack_from("<I", data, offset + 16)
    if count > MAX_FILES_PER_JOB:
        return [], offset + 16, f"file count {count} is implausible"
    files: list[JobFile] = []
    pos = offset + 20
    for index in range(count):
        jf, pos, error = decode_legacy_file(data, pos)
        if jf is not None:
            files.append(jf)
        if error is not None:
            return files, pos, f"file {index + 1} of {count}: {error}"
    if data[pos:pos + 16] != FILE_LIST_MARKER:
        return files, pos, f"closing file list marker missing after {count} file(s)"
    return files, pos + 16, None


#: Bytes after a record's head (and a full-size security descriptor) it is first decoded from;
#: a record cut short there is decoded again from all the data. Copying the rest of a large file
#: for every record (and every candidate a resync tries) made reading quadratic in its size.
RECORD_WINDOW = 64 * 1024
_TRUNCATED = "data ends early: truncated"


def decode_legacy_record(data: bytes, offset: int = 0) -> tuple[Job, int]:
    """Decode the job record at `offset` -> (job, offset just after what was understood).

    Raises BlobError when not even the head (header, strings, owner) validates.
    """
    window = job_head_span(data, offset) + MAX_SD_SIZE + RECORD_WINDOW
    if len(data) - offset > window:
        chunk = bytes(data[offset:offset + window])
        try:
            job, end = _decode_record(chunk, offset)
        except BlobError:
            if chunk[:16] in LEGACY_JOB_MARKERS:      # the head fits the window: the cut is not why
                raise
            job, end = None, offset
        if job is not None and not (job.partial and (_TRUNCATED in (job.partial_reason or "")
                                                     or end >= offset + len(chunk) - 16)):
            return job, end
    return _decode_record(bytes(data[offset:]) if offset else bytes(data), offset)


def _decode_record(data: bytes, base: int) -> tuple[Job, int]:
    """The record at the start of `data` (one copy per record, not one per section); `base`
    is its offset in the file, for messages and the returned end."""
    marker = data[:16]
    if len(marker) < 16:
        raise BlobError(f"{len(data)} bytes is too short for a job record")
    sections = fmt.legacy_job_sections(marker)
    walk = walk_sections(data, 0, sections[:3])
    parsed = dict(walk.parsed)
    end, failure = walk.end, walk.failure
    files: list[JobFile] = []
    if failure is None:
        files, end, error = decode_legacy_file_list(data, end)
        if error is not None:
            failure = f"file_list: {error}"
        else:
            parsed["file_list"] = Container(file_ids=[], files=files)
    if failure is None:
        rest = walk_sections(data, end, sections[4:])
        parsed.update(rest.parsed)
        end, failure = rest.end, rest.failure
    raw_tail = parsed.pop("trailer", None) if not isinstance(parsed.get("trailer"), Container) else None
    job = job_from_sections(parsed)
    job.files = files
    if "strings" not in parsed or "owner" not in parsed:
        # A known marker with a sound header is a damaged job, not noise: report it partial.
        header_only = [p for p in job_head_problems(job) if p != "strings do not decode"]
        if marker not in LEGACY_JOB_MARKERS or "header" not in parsed or header_only:
            problems = job_head_problems(job) or [failure or "header does not validate"]
            raise BlobError("not a legacy job record: " + "; ".join(problems))
    if marker not in LEGACY_JOB_MARKERS and (job_head_problems(job) or "file_list" not in parsed):
        raise BlobError("unknown marker and the record does not validate: "
                        + "; ".join(job_head_problems(job) or [failure or "no file list"]))
    trailer = parsed.get("trailer")
    if isinstance(trailer, Container) and "unk_l1" in trailer:
        job.unknown["unk_l1"] = trailer.unk_l1
    if raw_tail is not None:
        job.unknown["legacy_tail"] = bytes(raw_tail).hex()
    if failure is not None:
        job.partial = True
        job.partial_reason = f"stopped at {_explain(failure)} (offset 0x{base + end:x})"
        return job, base + end
    if data[end:end + 16] != marker:
        job.partial = True
        job.partial_reason = f"footer marker missing at 0x{base + end:x}"
        return job, base + end
    return job, base + end + 16


def decode_legacy_job(data: bytes) -> Job:
    """A raw legacy job record (one record, starting with its marker) -> Job.

    Bytes after the footer are kept in `undecoded` and the job marked partial.
    """
    data = bytes(data)
    job, end = decode_legacy_record(data, 0)
    job.blob_size = len(data)
    if job.partial:
        job.undecoded = data[end:]
    elif end < len(data):
        job.partial = True
        job.partial_reason = f"{len(data) - end} bytes after the footer"
        job.undecoded = data[end:]
    return job
