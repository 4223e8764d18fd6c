"""The public entry points; the CLI is one of their callers."""

from __future__ import annotations

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
        sha256 = sha256_of(path)
    except PermissionError:
        raise SourceError("permission denied") from None
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror or exc})") from None
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
