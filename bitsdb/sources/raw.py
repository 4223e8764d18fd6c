"""A single record exported from an ESE viewer or cut from a state file: a job (ESE or
legacy), an ESE file blob, or a legacy inline file list."""

from __future__ import annotations

from pathlib import Path

from ..decode import BlobError, decode_file_blob, decode_job_blob
from ..formats.markers import LEGACY_JOB_MARKERS, InputKind
from ..model import Provenance
from .result import SourceError, SourceResult


def read_raw(path: Path, sha256: str | None, kind: InputKind) -> SourceResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror or exc})") from None
    result = SourceResult(path=str(path), kind=kind.value, sha256=sha256)
    provenance = Provenance(source_path=str(path), source_sha256=sha256, source_kind=kind.value, offset=0)
    try:
        if kind is InputKind.RAW_JOB:
            if data[:16] in LEGACY_JOB_MARKERS:
                from ..decode.legacy import decode_legacy_job

                job = decode_legacy_job(data)
            else:
                job = decode_job_blob(data)
            job.provenance = provenance
            result.jobs.append(job)
        elif kind is InputKind.RAW_LEGACY_FILES:
            from ..decode.legacy import decode_legacy_file_list

            files, _, error = decode_legacy_file_list(data)
            if not files:
                raise SourceError(f"legacy file list does not decode ({error})")
            for jf in files:
                jf.provenance = provenance
            result.orphan_files.extend(files)
        else:
            jf = decode_file_blob(data)
            jf.provenance = provenance
            result.orphan_files.append(jf)
    except BlobError as exc:
        raise SourceError(str(exc)) from None
    return result
