"""The public entry points; the CLI is one of their callers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from .formats.markers import InputKind
from .model import Job
from .sources.detect import bits_files_in, detect_file
from .sources.result import SourceError, SourceResult, sha256_of


def read(path: str | Path) -> SourceResult:
    """Read one BITS store file (any supported kind). Raises SourceError with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise SourceError("no such file or directory")
    if path.is_dir():
        raise SourceError("is a directory (use read_many or pass the files)")
    try:
        size = path.stat().st_size
        if size == 0:
            raise SourceError("empty file")
        kind = detect_file(path)
    except PermissionError:
        raise SourceError("permission denied") from None
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror or exc})") from None
    # Hashing runs beside decoding (hashlib releases the GIL): on CPUs without SHA
    # instructions it costs as much as the whole parse.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_of, path)
        result = _read_kind(path, kind)
        try:
            stamp_sha256(result, digest.result())
        except OSError as exc:
            raise SourceError(f"cannot read ({exc.strerror or exc})") from None
    return result


def stamp_sha256(result: SourceResult, sha256: str) -> None:
    """Record the source hash on the result and on every record's provenance."""
    result.sha256 = sha256
    for job in result.jobs:
        for record in [job, *job.files]:
            if record.provenance is not None and record.provenance.source_path == result.path:
                record.provenance.source_sha256 = sha256
    for jf in result.orphan_files:
        if jf.provenance is not None and jf.provenance.source_path == result.path:
            jf.provenance.source_sha256 = sha256


def _read_kind(path: Path, kind: InputKind) -> SourceResult:
    sha256 = None
    if kind is InputKind.ESE_DATABASE:
        from .sources.ese import read_ese

        return read_ese(path, sha256)
    if kind is InputKind.LEGACY_STATE_FILE:
        try:
            from .sources.legacy import read_legacy
        except ImportError:
            raise SourceError("legacy state file (qmgr0/1.dat): not supported yet") from None
        return read_legacy(path, sha256)
    if kind in (InputKind.RAW_JOB, InputKind.RAW_FILE):
        from .sources.raw import read_raw

        return read_raw(path, sha256, kind)
    raise SourceError("not a BITS database, state file or job/file record (unrecognised content)")


def expand(path: str | Path) -> list[Path]:
    """A file stays itself; a folder becomes the BITS store files found under it."""
    path = Path(path)
    if path.is_dir():
        found = bits_files_in(path)
        if not found:
            raise SourceError("directory holds no BITS files (qmgr.db, qmgr0.dat, qmgr1.dat)")
        return found
    return [path]


def parse(path: str | Path) -> Iterator[Job]:
    """Yield every job of one file or of every BITS file under a folder."""
    for item in expand(path):
        yield from read(item).jobs
