"""Legacy state files qmgr0.dat / qmgr1.dat (Windows XP .. 8.1, early Windows 10), FORMAT.md §7.

The framing is walked procedurally so that one damaged record does not hide the
others: every job that decodes is emitted, damaged ones are emitted as partial, and
anything unexpected (bad CRC, wrong counts, bytes between records, slack) becomes a
one-line warning. BITS writes the two files alternately: `read_legacy_pair` says which
one holds the current state and keeps every job of the previous one as evidence.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..decode.job import job_head_problems, job_head_span
from ..decode.legacy import decode_legacy_record
from ..decode.sections import BlobError, DecodeBudget, plausible_filetime
from ..formats import legacy as fmt
from ..formats.markers import LEGACY_FILE_HEADER, LEGACY_JOB_MARKERS, LEGACY_QUEUE_MARKER, InputKind
from ..formats.plain import guid_text
from ..model import Job, Provenance
from .result import SourceError, SourceResult, sha256_of

CURRENT = "current"
PREVIOUS = "previous"
#: Where the header pair is expected (seen at 0x10 and 0x18); further away is reported.
HEADER_WINDOW = 0x40
#: Reasons for choosing the current file that need no remark in the output.
STRONG_REASONS = ("only file", "registry StateIndex", "newest job modification time")


# --------------------------------------------------------------------------- state files


@dataclass
class LegacyRecord:
    """A job found in a state file, with the bytes it occupies (for exact de-duplication)."""

    job: Job
    offset: int
    end: int
    queue: int


@dataclass
class LegacyState:
    """Everything the framing of one state file says, besides the jobs."""

    size: int
    header_offset: int
    version: str                            # win7 | win10 | unknown
    os_guid: str | None
    prefix_extra: str                       # hex of the bytes between prefix GUID and header (Win10: 8)
    declared_counts: list[int] = field(default_factory=list)
    records: list[LegacyRecord] = field(default_factory=list)
    trailer_guid: str | None = None
    trailer_end: int | None = None          # offset just after the trailer GUID
    crc_stored: int | None = None
    crc_computed: int | None = None
    slack_offset: int | None = None
    slack_size: int = 0
    slack_nonzero: int = 0
    has_crc: bool = False                   # a CRC32 is expected after the trailer (early Windows 10)
    complete: bool = False                  # the framing parsed up to the trailer GUID
    warnings: list[str] = field(default_factory=list)   # oddities (CRC mismatch, slack, unusual prefix)
    errors: list[str] = field(default_factory=list)     # damage: bytes that could not be read as records

    @property
    def crc_valid(self) -> bool | None:
        if self.crc_stored is None:
            return None
        return self.crc_stored == self.crc_computed

    @property
    def newest_time(self) -> int:
        """Latest plausible job time in the file (0 when it holds no job)."""
        times = [t for r in self.records for t in (r.job.creation_time, r.job.modification_time,
                                                   r.job.modification_time_2, r.job.completion_time)
                 if t and plausible_filetime(t)]
        return max(times, default=0)


def _guid_text(raw: bytes) -> str | None:
    return guid_text(raw) if len(raw) == 16 else None


class _MarkerFinder:
    """Next occurrence of any of a set of markers, each searched for once per occurrence.

    A plain `find` per marker on every call rescans to the end of the file for markers
    that no longer occur: quadratic on a file dense with another marker.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.found: dict[bytes, tuple[int, int]] = {}    # marker -> (searched from, found at or -1)

    def next(self, start: int, markers: Sequence[bytes]) -> tuple[int, bytes | None]:
        best, found = -1, None
        for marker in markers:
            searched, at = self.found.get(marker, (len(self.data) + 1, -1))
            if start < searched or 0 <= at < start:
                at = self.data.find(marker, start)
                self.found[marker] = (start, at)
            if at >= 0 and (best < 0 or at < best):
                best, found = at, marker
        return best, found


def _resync(data: bytes, start: int, job_markers: Sequence[bytes], walk: "_Walk") -> tuple[int, tuple | None]:
    """Next position where a valid job record or the closing queue marker starts.

    Returns (offset, (job, end) of the record there or None); offset is len(data) when neither
    is found. Hits whose head cannot be a record's are skipped before decoding
    (job_head_span), and each decoding attempt is paid from the file's budget.
    """
    pos = start
    while True:
        at, marker = walk.finder.next(pos, [LEGACY_QUEUE_MARKER, *job_markers])
        if at < 0:
            return len(data), None
        if marker == LEGACY_QUEUE_MARKER:
            return at, None
        span = job_head_span(data, at)
        if span:
            if not walk.budget.allows(at):
                return len(data), None
            try:
                job, end = decode_legacy_record(data, at)
                if not job_head_problems(job):
                    if job.partial:
                        walk.budget.charge(span)
                    return at, (job, end)
            except BlobError:
                pass
            walk.budget.charge(span)
        pos = at + 1


@dataclass
class _Walk:
    """What the walk of one file shares: marker positions found so far and the decoding budget."""

    finder: _MarkerFinder
    budget: DecodeBudget


def parse_state_file(data: bytes) -> LegacyState:
    """Walk the framing of a state file (§7.1). Raises SourceError when it is not one."""
    data = bytes(data)
    header = data.find(fmt.HEADER_PAIR)
    if header < 0:
        raise SourceError("not a legacy state file: header marker pair (C82BF713.. + 005F4447..) not found")
    os_guid = data[:16] if header >= 16 else b""
    version, prefix_size, has_crc = fmt.PREFIX_KINDS.get(os_guid, ("unknown", header, header == 24))
    state = LegacyState(size=len(data), header_offset=header, version=version, os_guid=_guid_text(os_guid),
                        prefix_extra=data[16:header].hex() if header >= 16 else "", has_crc=has_crc)
    warn = state.warnings.append
    if header > HEADER_WINDOW:
        warn(f"header marker found at 0x{header:x}, further than usual (0x10 / 0x18)")
    if version == "unknown":
        warn(f"unknown prefix GUID {state.os_guid or data[:header].hex()} ({header}-byte prefix)")
    elif header != prefix_size:
        warn(f"{version} prefix GUID but the header starts at 0x{header:x}, not 0x{prefix_size:x}")
    pos = header + 16
    job_markers = list(LEGACY_JOB_MARKERS)
    walk = _Walk(_MarkerFinder(data), DecodeBudget(len(data)))
    for queue in (1, 2):
        pos = _walk_queue(data, pos, queue, state, job_markers, walk)
        if pos is None:
            break
    else:
        _walk_trailer(data, pos, state)
    if walk.budget.message():
        state.errors.append(walk.budget.message())
    return state


def _walk_queue(data: bytes, pos: int, queue: int, state: LegacyState, job_markers: list[bytes],
                walk: _Walk) -> int | None:
    """One queue; returns the offset after its closing marker, or None when the file ends."""
    warn, fail = state.warnings.append, state.errors.append
    pos = _find_queue_marker(data, pos, f"queue {queue}: marker missing at 0x{pos:x}",
                             f"queue {queue}", "the queue marker", fail)
    if pos is None:
        return None
    if pos + 20 > len(data):
        fail(f"queue {queue}: file ends in the job count at 0x{pos + 16:x} (truncated)")
        return None
    (count,) = struct.unpack_from("<I", data, pos + 16)
    state.declared_counts.append(count)
    pos += 20
    found = 0
    decoded = None                      # (job, end) of the record at pos, when a resync decoded it
    while found < min(count, fmt.MAX_JOBS_PER_QUEUE):
        if pos >= len(data):
            fail(f"queue {queue}: file ends after {found} of {count} job(s) (truncated)")
            return None
        marker = data[pos:pos + 16]
        if marker == LEGACY_QUEUE_MARKER:
            break
        try:
            if decoded is None:
                if not walk.budget.allows(pos):
                    break
                try:
                    decoded = decode_legacy_record(data, pos)
                finally:
                    if decoded is None or decoded[0].partial:
                        walk.budget.charge()
            job, end = decoded
            decoded = None
        except BlobError as exc:
            nxt, decoded = _resync(data, pos + 1, job_markers, walk)
            fail(f"queue {queue}: {nxt - pos} byte(s) at 0x{pos:x} are not a job record ({exc}); skipped")
            pos = nxt
            if decoded is None:
                break
            continue
        if marker not in job_markers:
            job_markers.append(marker)
        record = LegacyRecord(job=job, offset=pos, end=end, queue=queue)
        state.records.append(record)
        found += 1
        if queue == 2:
            warn(f"queue 2 holds a job (0x{pos:x}); never seen in known files")
        nxt = end
        if job.partial:
            nxt, decoded = _resync(data, end, job_markers, walk)
            job.undecoded = data[end:nxt]
            record.end = nxt
        elif data[end:end + 16] != LEGACY_QUEUE_MARKER and data[end:end + 16] not in job_markers:
            nxt, decoded = _resync(data, end, job_markers, walk)
            fail(f"queue {queue}: {nxt - end} unexpected byte(s) between records at 0x{end:x}; skipped")
        pos = nxt
    if count > fmt.MAX_JOBS_PER_QUEUE:
        fail(f"queue {queue}: job count {count} is implausible")
    if found != count:
        fail(f"queue {queue}: declares {count} job(s) but {found} were found")
    pos = _find_queue_marker(data, pos, f"queue {queue}: closing marker missing", f"queue {queue}",
                             "the closing marker", fail)
    return None if pos is None else pos + 16


def _find_queue_marker(data: bytes, pos: int, missing: str, where: str, what: str, fail) -> int | None:
    """The queue marker at `pos`, or the next one after reporting the bytes skipped; None if absent."""
    if data[pos:pos + 16] == LEGACY_QUEUE_MARKER:
        return pos
    at = data.find(LEGACY_QUEUE_MARKER, pos)
    if at < 0:
        fail(f"{missing} (file truncated or damaged)")
        return None
    fail(f"{where}: {at - pos} unexpected byte(s) at 0x{pos:x} before {what}")
    return at


def _walk_trailer(data: bytes, pos: int, state: LegacyState) -> None:
    warn, fail = state.warnings.append, state.errors.append
    if data[pos:pos + 16] != LEGACY_FILE_HEADER:
        fail(f"trailer: header marker missing at 0x{pos:x}")
        return
    trailer = data[pos + 16:pos + 32]
    if len(trailer) < 16:
        fail("trailer: file ends before the trailing GUID (truncated)")
        return
    state.trailer_guid = _guid_text(trailer)
    state.trailer_end = end = pos + 32
    state.complete = True
    if trailer != data[:16]:
        warn(f"trailer GUID {state.trailer_guid} differs from the prefix GUID {state.os_guid}")
    computed = fmt.crc32(data[:end])
    has_crc = state.has_crc
    if len(data) >= end + 4:
        (stored,) = struct.unpack_from("<I", data, end)
        if has_crc or stored == computed:
            state.crc_stored, state.crc_computed = stored, computed
            end += 4
            if stored != computed:
                warn(f"CRC32 mismatch: stored 0x{stored:08X}, computed 0x{computed:08X} over 0x0-0x{end - 5:x} "
                     "(file modified or damaged)")
    elif has_crc:
        fail("file ends before the CRC32 (truncated)")
    slack = data[end:]
    state.slack_offset, state.slack_size = end, len(slack)
    state.slack_nonzero = len(slack) - slack.count(0)
    if state.slack_nonzero:
        warn(f"slack: {len(slack)} byte(s) after the trailer at 0x{end:x}, {state.slack_nonzero} non-zero "
             "(may hold older records; carved with --recover)")


# --------------------------------------------------------------------------- sources


def _result(path: Path, sha256: str | None, state: LegacyState, role: str | None,
            skip: set[bytes] | None = None, data: bytes = b"") -> SourceResult:
    result = SourceResult(path=str(path), kind=InputKind.LEGACY_STATE_FILE.value, sha256=sha256)
    result.warnings.extend(state.warnings)
    result.errors.extend(state.errors)
    skipped = 0
    for index, record in enumerate(state.records):
        if skip and data[record.offset:record.end] in skip:
            skipped += 1
            continue
        job = record.job
        job.blob_size = record.end - record.offset
        job.provenance = Provenance(
            source_path=str(path), source_sha256=sha256, source_kind=result.kind, record_index=index,
            offset=record.offset, state_file=role, recovered=role == PREVIOUS,
            recovered_from="previous state" if role == PREVIOUS else None)
        for jf in job.files:
            jf.provenance = job.provenance
        result.jobs.append(job)
    if skipped:
        result.warnings.append(f"{skipped} job record(s) byte-identical to the current file's are not repeated")
    return result


def _load(path: Path) -> tuple[bytes, LegacyState]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror or exc})") from None
    return data, parse_state_file(data)


def read_legacy(path: Path, sha256: str | None) -> SourceResult:
    """One state file on its own (which of the pair is current is not decided here)."""
    path = Path(path)
    _, state = _load(path)
    return _result(path, sha256, state, None)


def choose_current(states: Sequence[LegacyState], mtimes: Sequence[float] | None = None,
                   state_index: int | None = None) -> tuple[int, str]:
    """Index of the state holding the current queue, and why.

    Order of evidence: the registry StateIndex when given; a complete file with a valid
    (or no) CRC over a damaged one; the newest job time; the newer file system mtime.
    """
    if state_index is not None and 0 <= state_index < len(states):
        return state_index, "registry StateIndex"

    def soundness(state: LegacyState) -> int:
        return int(state.complete) + int(state.crc_valid is not False) + int(not state.errors)

    if len(states) == 1:
        return 0, "only file"
    stamps = list(mtimes) if mtimes else [0.0] * len(states)
    ranked = sorted(range(len(states)), reverse=True,
                    key=lambda i: (soundness(states[i]), states[i].newest_time, stamps[i]))
    best, runner = ranked[0], ranked[1]
    a, b = states[best], states[runner]
    if soundness(a) != soundness(b):
        return best, "the other file is damaged or fails its CRC"
    if a.newest_time != b.newest_time:
        return best, "newest job modification time"
    if stamps[best] != stamps[runner]:
        return best, "newer file modification time (job times do not decide)"
    return best, "undecided (identical evidence); first file taken"


def read_legacy_pair(paths: Sequence[str | Path], state_index: int | None = None) -> list[SourceResult]:
    """qmgr0.dat + qmgr1.dat (any order) -> one SourceResult each, jobs marked current/previous.

    Jobs of the previous file are all kept (they are evidence) except records that are
    byte-identical to one in the current file. `state_index` is the registry StateIndex
    (0 -> qmgr0.dat, 1 -> qmgr1.dat) when known. Unreadable files raise SourceError.
    """
    items = [Path(p) for p in paths]
    return _compare_pair(items, [_load(p) for p in items], state_index)


def _compare_pair(items: list[Path], loaded: list[tuple[bytes, LegacyState]], state_index: int | None
                  ) -> list[SourceResult]:
    mtimes = [os.stat(p).st_mtime for p in items]
    index = None
    if state_index is not None:
        wanted = f"qmgr{state_index}.dat"
        index = next((i for i, p in enumerate(items) if p.name.lower() == wanted), None)
    current, reason = choose_current([state for _, state in loaded], mtimes, index)
    cur_data, cur_state = loaded[current]
    identical = {cur_data[r.offset:r.end] for r in cur_state.records if not r.job.partial}
    results = []
    for i, (path, (data, state)) in enumerate(zip(items, loaded)):
        sha256 = sha256_of(path)
        if i == current:
            result = _result(path, sha256, state, CURRENT)
            if reason not in STRONG_REASONS:
                result.warnings.append(f"taken as the current state file: {reason}")
        else:
            result = _result(path, sha256, state, PREVIOUS, identical, data)
        results.append(result)
    return results


def legacy_pairs(paths: Sequence[str | Path]) -> list[list[Path]]:
    """Group state files by folder: qmgr0.dat and qmgr1.dat of one folder go together."""
    groups: dict[Path, list[Path]] = {}
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.resolve() not in seen:
            seen.add(p.resolve())
            groups.setdefault(p.resolve().parent, []).append(p)
    return [sorted(g, key=lambda p: p.name.lower()) for g in groups.values()]


def read_legacy_pairs(paths: Sequence[str | Path], state_index: int | None = None
                      ) -> list[tuple[Path, SourceResult | SourceError]]:
    """Every given state file, read with its folder sibling when both are given; never raises.

    Files of one folder are compared (current / previous); a file alone in its folder is
    read on its own (state_file stays None). A file that cannot be read yields its
    SourceError and the others of its folder are still compared. Output order = input order.
    """
    outcome: dict[Path, SourceResult | SourceError] = {}
    for group in legacy_pairs(paths):
        readable, loaded = [], []
        for path in group:
            try:
                loaded.append(_load(path))          # each file is read and decoded once
                readable.append(path)
            except SourceError as exc:
                outcome[path] = exc
        if len(readable) == 1:
            outcome[readable[0]] = _result(readable[0], sha256_of(readable[0]), loaded[0][1], None)
        elif readable:
            outcome.update(zip(readable, _compare_pair(readable, loaded, state_index)))
    return [(Path(p), outcome[Path(p)]) for p in dict.fromkeys(map(Path, paths)) if Path(p) in outcome]


__all__ = ["parse_state_file", "read_legacy", "read_legacy_pair", "choose_current",
           "legacy_pairs", "read_legacy_pairs", "LegacyState", "LegacyRecord", "CURRENT", "PREVIOUS"]
