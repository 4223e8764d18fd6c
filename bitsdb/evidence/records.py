"""What the evidence layer hands on: artefacts grouped by Downloader folder, and per-item results."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sources.result import SourceResult


@dataclass
class Artefact:
    """One BITS file found in evidence; `local_path` is where a reader can open it (never the evidence itself
    for images and archives: a private temporary copy)."""

    evidence: str                            # the evidence item (collection folder, zip, image, file)
    evidence_kind: str                       # folder | zip | image | file
    path_in_evidence: str                    # "/"-separated, as the container names it
    name: str
    role: str                                # store | companion
    size: int
    host: str | None = None
    host_source: str | None = None
    partition: str | None = None
    snapshot: str | None = None
    sha256: str | None = None
    file_times: dict[str, str] | None = None
    mtime: float | None = None               # POSIX seconds, for the legacy current/previous tie-break
    local_path: str | None = None

    @property
    def display_path(self) -> str:
        """How outputs name the source: the file itself for folders, `evidence!volume/path` otherwise."""
        if self.evidence_kind in ("folder", "file") and self.local_path:
            return self.local_path
        volume = "/".join(part for part in (self.partition, self.snapshot) if part)
        inner = self.path_in_evidence.lstrip("/")
        return f"{self.evidence}!{volume + '/' if volume else ''}{inner}"


@dataclass
class ArtefactGroup:
    """The files of one Downloader folder (or a loose qmgr file with its companions), read together."""

    evidence: str
    evidence_kind: str
    folder: str                              # the folder's path inside the evidence
    artefacts: list[Artefact] = field(default_factory=list)
    host: str | None = None
    host_source: str | None = None
    partition: str | None = None
    snapshot: str | None = None
    hives: dict[str, str] = field(default_factory=dict)   # SOFTWARE/SYSTEM -> local path (folders, temp copies)
    accounts: dict[str, str] = field(default_factory=dict)  # SID -> account name, from the evidence's ProfileList
    state_index: int | None = None           # SOFTWARE\Microsoft\Windows\CurrentVersion\BITS\StateIndex
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)        # artefacts that could not be taken out

    @property
    def stores(self) -> list[Artefact]:
        return [a for a in self.artefacts if a.role == "store"]

    @property
    def companions(self) -> list[Artefact]:
        return [a for a in self.artefacts if a.role == "companion"]

    @property
    def event_logs(self) -> list[Artefact]:
        return [a for a in self.artefacts if a.role == "log"]

    def sort_key(self) -> tuple:
        return (self.evidence, self.partition or "", self.snapshot or "", self.folder.lower())


@dataclass
class ItemResult:
    """Everything one unit of work produced: what was found, what was read, what failed."""

    evidence: str
    evidence_kind: str
    groups: list[ArtefactGroup] = field(default_factory=list)
    results: list[SourceResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)    # one line each: "<where>: <reason>"
    warnings: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)      # images: every volume / snapshot store scanned
    logs: list = field(default_factory=list)              # LogReadResult of each event log (sources.events)
    services: list = field(default_factory=list)          # ServiceConfig of each SYSTEM hive read
    store_count: int = 0                                  # counts kept so results can be dropped after writing
    job_count: int = 0
    seconds: float = 0.0

    @property
    def artefact_count(self) -> int:
        return sum(len(g.artefacts) for g in self.groups)


@dataclass
class BatchReport:
    """The closing summary of a batch run (results in deterministic order)."""

    items: list[ItemResult]
    jobs: int
    seconds: float
    events: list[str] = field(default_factory=list)      # workers lost, tasks run again

    @property
    def results(self) -> list[SourceResult]:
        return [r for item in self.items for r in item.results]

    @property
    def failures(self) -> list[str]:
        return [f for item in self.items for f in item.failures]

    @property
    def failed_items(self) -> list[ItemResult]:
        return [item for item in self.items if item.failures]

    def summary(self) -> str:
        return "\n".join(self.summary_lines())

    def summary_lines(self) -> list[str]:
        evidence = len({item.evidence for item in self.items})
        artefacts = sum(item.artefact_count for item in self.items)
        stores = sum(item.store_count for item in self.items)
        jobs_found = sum(item.job_count for item in self.items)
        lines = [f"bitsdb: {evidence} evidence item(s), {stores} BITS store file(s) "
                 f"({artefacts} artefact file(s) incl. logs), {jobs_found} job record(s); "
                 f"{self.jobs} worker(s), {self.seconds:.1f} s; "
                 f"{len(self.failed_items)} item(s) with failures"]
        for event in self.events:
            lines.append(f"  workers: {event}")
        for item in self.failed_items:
            for failure in item.failures:
                lines.append(f"  failed: {failure}")
        return lines
