"""A single Jobs or Files blob exported from an ESE viewer."""

from __future__ import annotations

from pathlib import Path

from ..decode import BlobError, decode_file_blob, decode_job_blob
from ..formats.markers import InputKind
from ..model import Provenance
from .result import SourceError, SourceResult


def read_raw(path: Path, sha256: str | None, kind: InputKind) -> SourceResult:
    data = path.read_bytes()
    result = SourceResult(path=str(path), kind=kind.value, sha256=sha256)
    provenance = Provenance(source_path=str(path), source_sha256=sha256, source_kind=kind.value, offset=0)
    try:
        if kind is InputKind.RAW_JOB:
            job = decode_job_blob(data)
            job.provenance = provenance
            result.jobs.append(job)
        else:
            jf = decode_file_blob(data)
            jf.provenance = provenance
            result.orphan_files.append(jf)
    except BlobError as exc:
        raise SourceError(str(exc)) from None
    return result
