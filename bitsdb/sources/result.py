"""What reading one source yields: jobs, files no job references, and problems met."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..model import Job, JobFile


@dataclass
class DamagedTable:
    """A table whose rows could not all be read; stores.read recovers its rows from its pages."""

    table: str | None                              # None: the database itself (header, catalog)
    problem: str                                   # one line: what is damaged
    objids: tuple[int, ...] | None = None          # pages whose header names these objects; None: every page
    page_size: int | None = None
    #: When nothing is recovered, the source is not a BITS store after all: SourceError(this).
    unless_found: str | None = None


@dataclass
class SourceResult:
    """Everything one source file yielded."""

    path: str
    kind: str
    sha256: str | None = None
    jobs: list[Job] = field(default_factory=list)
    orphan_files: list[JobFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # damage: the run exits non-zero
    damaged_tables: list[DamagedTable] = field(default_factory=list)
    #: Part of the source is damaged although every problem is a warning (partial live records):
    #: the run exits non-zero all the same.
    damaged: bool = False


#: Lines of one kind reported per source before the rest is summed up in one line.
MESSAGE_CAP = 20


def capped(lines: list[str], what: str, cap: int = MESSAGE_CAP) -> list[str]:
    """The first `cap` lines, then "... and N more <what>" (one line per problem, never a flood)."""
    if len(lines) <= cap:
        return lines
    return lines[:cap] + [f"... and {len(lines) - cap} more {what}"]


class SourceError(Exception):
    """A source that cannot be read at all; the message is one line naming the problem."""


def unreadable(exc: OSError) -> SourceError:
    """The one-line SourceError for an OSError met opening or reading a source."""
    for kind, text in ((FileNotFoundError, "no such file or directory"), (PermissionError, "permission denied"),
                       (IsADirectoryError, "is a directory")):
        if isinstance(exc, kind):
            return SourceError(text)
    return SourceError(f"cannot read ({exc.strerror or exc})")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        # Large reads: the hash runs beside decoding and each chunk is a GIL hand-over; never more
        # than the file holds (a read allocates its whole size first).
        size = max(1 << 16, min(1 << 24, os.fstat(handle.fileno()).st_size + 1))
        for chunk in iter(lambda: handle.read(size), b""):
            digest.update(chunk)
    return digest.hexdigest()


DEBUG_ENV = "BITSDB_DEBUG"     # set by `--debug`; read in worker processes too


def internal_error(where: str, exc: BaseException) -> str:
    """One line for a bug met while reading; with --debug the traceback goes to stderr at once
    (messages are one line each, so it is never part of the line)."""
    line = f"{where}: internal error while reading: {type(exc).__name__}: {exc}"
    if not os.environ.get(DEBUG_ENV):
        return line + " (run with --debug for details)"
    import sys
    import traceback

    traceback.print_exception(exc, file=sys.stderr)
    return line
