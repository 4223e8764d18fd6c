"""Windows event log files (.evtx): every record that parses, as plain values; damage in one line.

Reader: `evtx` (pyevtx-rs, MIT; ../shared/docs/EVENTLOGS.md C.1 compares four parsers: it was
the fastest by 6-400x). It renders each record as JSON (decoded with orjson); the EventID and Channel are
picked out of the text before the JSON is decoded, so records of no interest cost almost nothing.
Damaged chunks and records are skipped by the library with a warning each; they are
counted and reported as one line per file, and every record that parses is kept.
"""

from __future__ import annotations

import json
import re
import struct
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from ..timeutil import datetime_to_filetime
from .detect import EVTX_SIGNATURE
from .result import SourceError

CHUNK_SIGNATURE = b"ElfChnk\x00"
HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
INSTALL_HINT = "event logs need the evtx package: pip install evtx"

try:                                    # 2-3x faster than json on the records' text; json when absent
    from orjson import loads as _loads
except ImportError:                     # pragma: no cover - orjson is a dependency
    _loads = json.loads

_EVENT_ID = re.compile(r'"EventID":\s*(?:(\d+)|\{(?:[^{}]|\{[^{}]*\})*?"#text":\s*(\d+))')
_CHANNEL = re.compile(r'"Channel":\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class RawRecord:
    """One event record: the System values every channel has, and EventData (or UserData) as a dict."""

    record_id: int | None
    time: int | None                 # TimeCreated/SystemTime as FILETIME (the record header's written time
    #                                  is not used: exported logs carry shifted or zero header times)
    channel: str
    provider: str | None
    event_id: int
    version: int | None
    computer: str | None
    user_sid: str | None
    process_id: int | None           # the process that logged the event (System/Execution)
    data: dict[str, Any]


@dataclass
class LogScan:
    """Counts of one pass over a file."""

    path: str
    records: int = 0                 # records that parsed
    kept: int = 0                    # records the caller wanted
    damaged: list[str] = field(default_factory=list)   # the library's messages, one per skipped part
    notes: list[str] = field(default_factory=list)     # truncation found by bitsdb itself
    channels: dict[str, int] = field(default_factory=dict)

    def damage_line(self) -> str | None:
        """One line for everything that could not be read, or None."""
        if not self.damaged and not self.notes:
            return None
        parts = ["damaged event log", *self.notes]
        if self.damaged:
            chunks = sum("chunk" in message.lower() for message in self.damaged)
            first = " ".join(self.damaged[0].split())[:160]
            parts.append(f"{len(self.damaged)} part(s) skipped ({chunks} chunk(s), "
                         f"{len(self.damaged) - chunks} record(s)), first: {first}")
        parts.append(f"{self.records} record(s) read")
        return "; ".join(parts)


def _parser(source: BinaryIO):
    """The parser over an open file (opened here, so a path that is not valid UTF-8 reads like any
    other) or bytes in memory."""
    try:
        import evtx
    except ImportError:
        raise SourceError(INSTALL_HINT) from None
    try:
        # One thread: evidence items already run in parallel worker processes.
        return evtx.PyEvtxParser(source, number_of_threads=1, skip_errors=True, indent=False)
    except (RuntimeError, OSError, ValueError) as exc:
        raise SourceError(f"not a readable event log ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.split(": ", 1)[-1][:160] if text.startswith("An error occurred") else text[:160]


def iter_records(path: str | Path, wanted: Callable[[str, int], bool] | None = None,
                 scan: LogScan | None = None) -> Iterator[RawRecord]:
    """Records of one .evtx file in file order; `wanted(channel, event_id)` filters before decoding.

    Raises SourceError when the file cannot be opened as an event log at all; damage inside is
    counted in `scan.damaged` and skipped. A last chunk cut short (a truncated copy) is read from a
    zero-padded copy of that chunk alone, in memory, so its whole records are kept too.
    """
    path = Path(path)
    scan = scan if scan is not None else LogScan(str(path))
    truncated = _truncation(path)
    if truncated:
        scan.notes.append(truncated)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise SourceError(f"not a readable event log ({exc.strerror or exc})") from None
    with handle:
        yield from _records_of(_parser(handle), wanted, scan)
    tail = _cut_chunk(path)
    if tail is not None:
        import io

        before = scan.records
        yield from _records_of(_parser(io.BytesIO(tail)), wanted, scan)
        scan.notes.append(f"last chunk cut short: {scan.records - before} whole record(s) read from it")


def _records_of(parser, wanted, scan: LogScan) -> Iterator[RawRecord]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iterator = parser.records_json()
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                break
            except RuntimeError as exc:         # a failure the library does not skip by itself
                scan.damaged.append(_short(exc))
                break
            finally:
                if caught:
                    scan.damaged.extend(str(w.message) for w in caught)
                    caught.clear()
            scan.records += 1
            text = item["data"]
            match = _EVENT_ID.search(text)
            channel_match = _CHANNEL.search(text)
            if match is None or channel_match is None:
                continue
            event_id = int(match.group(1) or match.group(2))
            channel = channel_match.group(1)
            if "\\" in channel:
                channel = json.loads(f'"{channel}"')
            scan.channels[channel] = scan.channels.get(channel, 0) + 1
            if wanted is not None and not wanted(channel, event_id):
                continue
            record = _raw_record(text, event_id, channel, item.get("event_record_id"))
            if record is not None:
                scan.kept += 1
                yield record


def _raw_record(text: str, event_id: int, channel: str, header_id: int | None) -> RawRecord | None:
    try:
        event = _loads(text)["Event"]
        system = event["System"]
    except (ValueError, KeyError, TypeError):
        return None
    provider = _attributes(system.get("Provider")).get("Name")
    execution = _attributes(system.get("Execution"))
    record_id = _int(system.get("EventRecordID"))
    return RawRecord(
        record_id=record_id if record_id is not None else _int(header_id),
        time=_filetime(_attributes(system.get("TimeCreated")).get("SystemTime")),
        channel=channel, provider=provider, event_id=event_id, version=_int(system.get("Version")),
        computer=_text(system.get("Computer")), user_sid=_attributes(system.get("Security")).get("UserID"),
        process_id=_int(execution.get("ProcessID")), data=_event_data(event))


def _attributes(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        return attributes if isinstance(attributes, dict) else {}
    return {}


def _text(node: Any) -> str | None:
    if isinstance(node, dict):
        node = node.get("#text")
    return None if node is None else str(node)


def _int(node: Any) -> int | None:
    if isinstance(node, dict):
        node = node.get("#text")
    return as_int(node)


def as_int(value: Any) -> int | None:
    """An integer as event data holds one (int, bool, decimal or 0x text); None for anything else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)            # int() itself ignores surrounding whitespace
        except ValueError:
            return None
    return None


def _event_data(event: dict[str, Any]) -> dict[str, Any]:
    """EventData as name -> value. Classic providers (Windows PowerShell 800) write unnamed <Data>
    values: those become Data1, Data2, ... UserData keeps its single inner element's children."""
    data = event.get("EventData")
    if data is None and isinstance(event.get("UserData"), dict):
        inner = [v for k, v in event["UserData"].items() if k != "#attributes"]
        data = inner[0] if len(inner) == 1 and isinstance(inner[0], dict) else event["UserData"]
    if not isinstance(data, dict):
        return {} if data is None else {"Data1": data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "#attributes":
            continue
        if key == "Data" and isinstance(value, dict) and "#text" in value:
            value = value["#text"]
        if key == "Data" and isinstance(value, list):
            for index, item in enumerate(value, 1):
                out[f"Data{index}"] = item
            continue
        out[key] = value
    return out


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z?$")


_SECONDS: dict[str, int | None] = {}


def _filetime(text: Any) -> int | None:
    """ISO text as evtx writes it (microseconds, 'Z') -> FILETIME; None when unset or odd.
    The whole-second part is remembered: a log's records come many to a second."""
    if not isinstance(text, str):
        return None
    match = _TIME.match(text.strip())
    if not match:
        return None
    whole = match.group(1)
    base = _SECONDS.get(whole, -1)
    if base == -1:
        try:
            base = datetime_to_filetime(datetime.fromisoformat(whole + "+00:00"))
        except ValueError:
            base = None
        if len(_SECONDS) >= 65536:
            _SECONDS.clear()
        _SECONDS[whole] = base
    if base is None:
        return None
    value = base + int((match.group(2) or "0")[:7].ljust(7, "0"))
    return value or None


def _truncation(path: Path) -> str | None:
    """A file shorter than its header's chunk count says (a cut copy): named, the rest still read."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(0x80)
            size = path.stat().st_size
    except OSError:
        return None
    if len(header) < 0x2c or header[:8] != EVTX_SIGNATURE:
        return None
    header_size = struct.unpack_from("<H", header, 0x20)[0] or HEADER_SIZE
    chunks = struct.unpack_from("<H", header, 0x2a)[0]
    expected = max(header_size, HEADER_SIZE) + chunks * CHUNK_SIZE
    if size < expected:
        return f"truncated: {size} bytes, the header promises {chunks} chunk(s) ({expected} bytes)"
    return None


def _cut_chunk(path: Path) -> bytes | None:
    """A one-chunk log holding the file's last, incomplete chunk padded with zeros (None when every
    chunk is whole). The reader skips an incomplete chunk without a word; padded, its whole records
    decode (the chunk's own offsets stay valid)."""
    try:
        size = path.stat().st_size
        tail_size = (size - HEADER_SIZE) % CHUNK_SIZE if size > HEADER_SIZE else 0
        if tail_size < 0x200 + 24:
            return None
        with open(path, "rb") as handle:
            header = bytearray(handle.read(HEADER_SIZE))
            handle.seek(size - tail_size)
            chunk = handle.read(tail_size)
    except OSError:
        return None
    if chunk[:8] != CHUNK_SIGNATURE or header[:8] != EVTX_SIGNATURE:
        return None
    struct.pack_into("<QQ", header, 8, 0, 0)             # first and last chunk: 0
    struct.pack_into("<H", header, 0x2A, 1)
    return bytes(header) + chunk + b"\x00" * (CHUNK_SIZE - tail_size)

