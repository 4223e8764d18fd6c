"""Where BITS artefacts sit in an evidence tree: name rules shared by folders, zips and images.

Everything here works on path components (strings), so one set of rules serves a
collection folder, a zip member list and a file system inside a disk image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ..sources.detect import role_of
from ..text import is_valid

#: Downloader folder below a volume root, Vista and later / XP and 2003.
DOWNLOADER_TAILS = (
    ("programdata", "microsoft", "network", "downloader"),
    ("documents and settings", "all users", "application data", "microsoft", "network", "downloader"),
)
#: Where an image keeps the folder, as components below the volume root (the lookups done in images).
IMAGE_DOWNLOADER_PATHS = (
    ("ProgramData", "Microsoft", "Network", "Downloader"),
    ("Documents and Settings", "All Users", "Application Data", "Microsoft", "Network", "Downloader"),
    ("Windows.old", "ProgramData", "Microsoft", "Network", "Downloader"),
)
#: Hives read for accounts, host name and StateIndex, below a volume root.
HIVE_PATHS = {
    "SOFTWARE": ("Windows", "System32", "config", "SOFTWARE"),
    "SYSTEM": ("Windows", "System32", "config", "SYSTEM"),
}

#: Where Windows keeps its event logs, below a volume root; only the channels that tell of BITS are taken
#: from it (KAPE writes `/` in a channel name as `%4`). Loose .evtx files elsewhere are all read.
LOG_FOLDER = ("Windows", "System32", "winevt", "Logs")
EVENT_LOG_NAMES = frozenset({
    "microsoft-windows-bits-client/operational.evtx", "microsoft-windows-sysmon/operational.evtx",
    "security.evtx", "system.evtx", "microsoft-windows-powershell/operational.evtx", "windows powershell.evtx",
})


def wanted_log_name(name: str) -> bool:
    """A log of the Windows logs folder that can tell of BITS (by channel file name)."""
    return decoded(name).lower().replace("%4", "/") in EVENT_LOG_NAMES


_DRIVE = re.compile(r"^(?:[a-z]|[a-z]:|\\\\[.?]\\[a-z]:)$", re.I)
_SNAPSHOT = re.compile(r"(?:^vss(\d+)$|harddiskvolumeshadowcopy(\d+)$)", re.I)
#: Folder names collectors put between the collection root and the drive.
_COLLECTOR_WORDS = {"uploads", "auto", "ntfs", "file", "lazy_ntfs", "mft", "fs", "tout", "targets", "kape",
                    "collection", "files", "triage", "c_drive"}
_VELO_NAME = re.compile(r"^(?:Collection|Offline)-(.+?)-\d{4}-\d{2}-\d{2}T[\d_:.]+Z?$", re.I)
_STAMP_PREFIX = re.compile(r"^\d{4}-?\d{2}-?\d{2}(?:T?[\d_:.-]*)?_+", re.I)
_STAMP_SUFFIX = re.compile(r"[_-]+\d{4}-?\d{2}-?\d{2}(?:T?[\d_:.-]*)?Z?$", re.I)
_IMAGE_SUFFIX = re.compile(r"(\.(?:e01|ex01|l01|s01|raw|dd|img|001|vmdk|vhdx?|qcow2?|zip|xz|gz|bin))+$", re.I)


def decoded(component: str) -> str:
    """A path component as the collector meant it (Velociraptor URL-encodes `C:` as `C%3A`)."""
    return unquote(component) if "%" in component else component


#: What a private copy's file name may not hold: separators, a drive colon, NUL and other controls.
_NOT_IN_NAME = re.compile(r"[/\\:\x00-\x1f\x7f]")


def copy_name(name: str) -> str | None:
    """The name a container file's private copy gets: its own name as the collector meant it (qmgr.db,
    edb00001.log, Microsoft-Windows-Bits-Client%4Operational.evtx) when that is one plain file name,
    else None: never a separator, `..`, drive colon or control character, whatever percent-decoding
    gives, and at most 255 bytes."""
    name = decoded(name)
    if (name in ("", ".", "..") or _NOT_IN_NAME.search(name) or not is_valid(name)
            or len(name.encode("utf-8")) > 255):
        return None
    return name


def downloader_index(parts: tuple[str, ...] | list[str]) -> int | None:
    """Index of the volume root's first component when `parts` (a folder) ends in a Downloader folder."""
    lowered = [decoded(p).lower() for p in parts]
    for tail in DOWNLOADER_TAILS:
        if len(lowered) >= len(tail) and tuple(lowered[-len(tail):]) == tail:
            return len(lowered) - len(tail)
    return None


@dataclass(frozen=True)
class Placement:
    """What the folders above a volume root say: the collection root, host, drive and snapshot."""

    item_parts: tuple[str, ...]      # path components of the evidence item (collection root)
    host: str | None
    drive: str | None
    snapshot: str | None


def snapshot_of(component: str) -> str | None:
    match = _SNAPSHOT.search(decoded(component))
    return f"vss{match.group(1) or match.group(2)}" if match else None


def placement(prefix: tuple[str, ...]) -> Placement:
    """Split the components above a volume root into collection root + drive/snapshot/collector folders."""
    drive = snapshot = None
    index = len(prefix)
    while index > 0:
        part = decoded(prefix[index - 1])
        lower = part.lower()
        if _DRIVE.match(part):
            drive = drive or part.rstrip(":")[-1].upper()
        elif snapshot_of(part):
            snapshot = snapshot or snapshot_of(part)
            drive_here = re.search(r"\\([a-z]):?$", part, re.I)
            drive = drive or (drive_here.group(1).upper() if drive_here else None)
        elif lower not in _COLLECTOR_WORDS:
            break
        index -= 1
    item = prefix[:index]
    host = host_from_name(decoded(item[-1])) if item else None
    return Placement(item_parts=tuple(item), host=host, drive=drive, snapshot=snapshot)


def host_from_name(name: str) -> str | None:
    """A host name from a collection folder, zip or image file name (collector time stamps removed)."""
    name = _IMAGE_SUFFIX.sub("", name.strip())
    match = _VELO_NAME.match(name)
    if match:
        return match.group(1)
    name = _STAMP_PREFIX.sub("", name)
    name = _STAMP_SUFFIX.sub("", name)
    name = name.strip(" _-.")
    if not name or re.fullmatch(r"[\d_\-T:.Z]+", name) or name.lower() in _COLLECTOR_WORDS:
        return None
    return name


def find_component(names: dict[str, str], wanted: str) -> str | None:
    """Case-insensitive match of one path component among a folder's entries ({lower: real})."""
    return names.get(wanted.lower())


@dataclass
class FoundFolder:
    """A folder of a listing that holds BITS files (a Downloader folder, or a loose qmgr file's folder)."""

    folder: tuple[str, ...]
    files: list[tuple[str, str]]             # (name, role), sorted by name
    volume_root: tuple[str, ...] | None      # components above ProgramData / Documents and Settings
    place: Placement
    hives: dict[str, tuple[str, ...]]        # SOFTWARE/SYSTEM -> path components, same volume root


_HIVE_TAILS = {label: tuple(p.lower() for p in parts) for label, parts in HIVE_PATHS.items()}


def find_in_listing(paths, stores_by_content: set[tuple[str, ...]] | frozenset = frozenset()) -> list[FoundFolder]:
    """Group a listing of file paths (tuples of components) into BITS folders; case-insensitive.
    `stores_by_content`: paths whose bytes showed a BITS store or record whatever their name."""
    by_folder: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    hives_by_root: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
    for parts in paths:
        if not parts:
            continue
        name = decoded(parts[-1])
        role = role_of(name) or ("store" if tuple(parts) in stores_by_content else None)
        if role is not None:
            by_folder.setdefault(tuple(parts[:-1]), []).append((parts[-1], role))
            continue
        if len(parts) >= 4:
            tail = tuple(decoded(p).lower() for p in parts[-4:])
            for label, wanted in _HIVE_TAILS.items():
                if tail == wanted:
                    root = tuple(decoded(p).lower() for p in parts[:-4])
                    hives_by_root.setdefault(root, {})[label] = tuple(parts)
    found = []
    log_tail = tuple(p.lower() for p in LOG_FOLDER)
    for folder, files in by_folder.items():
        index = downloader_index(folder)
        if len(folder) >= len(log_tail) and tuple(decoded(p).lower() for p in folder[-len(log_tail):]) == log_tail:
            files = [(name, role) for name, role in files if role != "log" or wanted_log_name(name)]
            index = len(folder) - len(log_tail)         # the logs of a volume: host and hives as for Downloader
        if index is None and not any(role in ("store", "log") for _, role in files):
            continue                         # stray edb.log files are not BITS evidence on their own
        if not files:
            continue
        files.sort(key=lambda item: item[0].lower())
        if index is not None:
            root = folder[:index]
            place = placement(root)
            hives = hives_by_root.get(tuple(decoded(p).lower() for p in root), {})
        else:
            root = None
            # A loose file's folder names no host reliably (it may be "System32" or "export").
            place = Placement(item_parts=tuple(folder), host=None, drive=None, snapshot=None)
            hives = {}
        found.append(FoundFolder(folder=folder, files=files, volume_root=root, place=place, hives=hives))
    found.sort(key=lambda f: tuple(p.lower() for p in f.folder))
    return found
