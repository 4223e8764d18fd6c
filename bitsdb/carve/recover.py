"""Entry points: carve one file, or recover everything next to a qmgr.db.

`recover(path, live)` is what `bitsdb parse --recover` calls: it scans the database
(all pages) and its companion files (ESE logs, reserve logs, flush map), groups
the hits into versions and returns the versions the live table does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..formats.markers import InputKind
from ..model import Job, Provenance
from ..sources.detect import detect_bytes, role_of
from ..sources.result import SourceError, SourceResult
from .history import History, Located, build_history
from .scanner import DEFAULT_WINDOW, MarkerFamily, Scanner, ScanStats, ese_page_size

#: Files next to qmgr.db that hold page images (FORMAT.md §3), lower-case glob patterns.

DB_PAGE = "db page"
LOG_FILE = "log file"
IMAGE = "image"
SLACK = "slack"
LIVE_TABLE = "live table"


@dataclass
class CarveResult:
    """What scanning one file produced."""

    path: str
    recovered_from: str
    source_kind: str
    stats: ScanStats
    located: list[Located] = field(default_factory=list)


@dataclass
class Recovery:
    """Recovered history of one set of inputs (a database and its companions, or any files)."""

    history: History
    scans: list[CarveResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return self.history.jobs


def classify(path: Path, head: bytes) -> tuple[str, str, int | None]:
    """(recovered_from, source kind, ESE page size) for a file about to be carved."""
    name = path.name.lower()
    if detect_bytes(head) is InputKind.ESE_DATABASE and not name.endswith((".log", ".jrs", ".jfm")):
        return DB_PAGE, InputKind.ESE_DATABASE.value, ese_page_size(head)
    if role_of(name) == "companion":
        return LOG_FILE, "ese_log", None
    if detect_bytes(head) is InputKind.LEGACY_STATE_FILE:
        return SLACK, InputKind.LEGACY_STATE_FILE.value, None
    return IMAGE, "image", None


def carve_file(path: str | Path, *, families: Iterable[MarkerFamily] | None = None, rank: int = 0,
               window: int = DEFAULT_WINDOW, hash_input: bool = True,
               recovered_from: str | None = None) -> CarveResult:
    """Scan one file of any size; raises SourceError (one line) when it cannot be read."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SourceError("is a directory")
        with open(path, "rb") as handle:
            head = handle.read(4096)
            kind_from, source_kind, page_size = classify(path, head)
            handle.seek(0)
            scanner = Scanner(families, window=window, page_size=page_size, hash_input=hash_input)
            result = CarveResult(path=str(path), recovered_from=recovered_from or kind_from,
                                 source_kind=source_kind, stats=scanner.stats)
            for carved in scanner.records(handle):
                provenance = Provenance(source_path=str(path), source_kind=source_kind, offset=carved.offset,
                                        recovered=True, recovered_from=result.recovered_from)
                result.located.append(Located(carved=carved, provenance=provenance, rank=rank))
    except FileNotFoundError:
        raise SourceError("no such file or directory") from None
    except PermissionError:
        raise SourceError("permission denied") from None
    except IsADirectoryError:
        raise SourceError("is a directory") from None
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror or exc})") from None
    for item in result.located:
        item.provenance.source_sha256 = scanner.stats.sha256
    return result


def companion_files(db_path: str | Path) -> list[Path]:
    """ESE logs, reserve logs and the flush map beside a qmgr.db (case-insensitive names)."""
    folder = Path(db_path).parent
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError:
        return []
    return [p for p in entries if role_of(p.name) == "companion"]


def carve_inputs(given: str | Path) -> list[Path]:
    """What `bitsdb carve` scans for one argument: a file as it is; a folder stands for the BITS
    store files below it and the ESE companions beside each qmgr.db."""
    path = Path(given)
    if not path.is_dir():
        return [path]
    found = [item for item in sorted(p for p in path.rglob("*") if p.is_file()) if role_of(item.name) == "store"]
    for db in [p for p in found if p.name.lower() == "qmgr.db"]:
        found.extend(p for p in companion_files(db) if p not in found)
    return found


def recover_many(paths: Iterable[str | Path], live: SourceResult | None = None, *,
                 families: Iterable[MarkerFamily] | None = None, window: int = DEFAULT_WINDOW,
                 hash_input: bool = True) -> Recovery:
    """Carve every path and build one history over all of them (earlier paths win ties)."""
    recovery = Recovery(history=History())
    located: list[Located] = []
    families = list(families) if families is not None else None
    for rank, path in enumerate(paths):
        try:
            scan = carve_file(path, families=families, rank=rank, window=window, hash_input=hash_input)
        except SourceError as exc:
            recovery.warnings.append(f"{path}: {exc}")
            continue
        recovery.scans.append(scan)
        located.extend(scan.located)
        if scan.stats.stopped:
            recovery.warnings.append(f"{path}: {scan.stats.stopped}")
    live_jobs = live.jobs if live else []
    live_files = live.orphan_files if live else []
    recovery.history = build_history(located, live_jobs, live_files)
    recovery.warnings.extend(recovery.history.warnings)
    return recovery


def recover_source(path: str | Path, live: SourceResult | None = None, *, companions: bool = True,
                   **options) -> Recovery:
    """A qmgr.db (every page) plus its companion files, minus what the live tables hold."""
    path = Path(path)
    paths = [path]
    if companions:
        paths += [p for p in companion_files(path) if p.resolve() != path.resolve()]
    return recover_many(paths, live, **options)


def recover(path: Path, live: SourceResult | None = None) -> list[Job]:
    """Distinct recovered job versions (files linked) not identical to a live record."""
    return recover_source(path, live).jobs
