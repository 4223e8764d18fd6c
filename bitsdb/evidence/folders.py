"""Collection folders (KAPE, Velociraptor, plain copies): one walk by name; only files whose names
may hide an exported or renamed BITS store have their first bytes read (_SNIFFED).

The walk never follows a link (symbolic link, junction, reparse point) found inside the tree
and never lists a FIFO, socket or device: links may lead out of the evidence and special
files may block or never end. Each entry left out is reported (docs/SECURITY.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..formats.markers import InputKind
from ..sources.detect import detect_file, role_of, special_kind
from .images import IMAGE_SUFFIXES, is_split_segment
from .locate import decoded, find_in_listing
from .records import Artefact, ArtefactGroup

ARCHIVE_SUFFIXES = (".zip",)
#: Containers the walk does not open. Archives may hold whole collections (always said); a compressed
#: single file is said when its inner name is evidence (`qmgr.db.gz`, `disk.E01.xz`, `c.tar.gz`).
_UNOPENED_ARCHIVE = re.compile(r"\.(7z|rar)$", re.I)
_COMPRESSED = re.compile(r"\.(xz|gz|tgz|bz2|zst)$", re.I)
#: Skipped entries named one by one per evidence folder; beyond this, a count.
SKIPPED_NAMED = 50


def _is_nested_evidence(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return True
    return bool(IMAGE_SUFFIXES.search(lower)) and not is_split_segment(lower)


def walk_tree(root: Path) -> tuple[list[tuple[tuple[str, ...], str]], list[str]]:
    """(folder components below root, file name) of every plain file, and one line per entry left out."""
    files: list[tuple[tuple[str, ...], str]] = []
    skipped: list[str] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        folder, rel = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(f"{folder}: folder not readable ({exc.strerror or exc}): skipped")
            continue
        subfolders = []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append(f"{entry.path}: not readable ({exc.strerror or exc}): skipped")
                continue
            special = special_kind(st) or ("junction" if getattr(entry, "is_junction", lambda: False)() else None)
            if special:
                skipped.append(f"{entry.path}: {special} not followed or opened (evidence links and special "
                               f"files are skipped)")
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append((Path(entry.path), (*rel, entry.name)))
            else:
                files.append((rel, entry.name))
        stack.extend(reversed(subfolders))
    return files, skipped


#: Names whose content is looked at in a folder walk: exported or renamed stores and records
#: (`win10_qmgr.db`, `job.raw`), and files an image suffix would otherwise send to the image layer.
_SNIFFED = re.compile(r"(qmgr|bits)|\.(db|dat|raw|bin|blob|rec|job|dd|img|001)$|^[^.]+$", re.I)


def _bits_by_content(path: Path) -> bool:
    """A plain file (links and special files never reach here) whose first bytes are a BITS store
    or record; only names that may hide one are opened, so big collections stay cheap."""
    if role_of(path.name) is not None or not _SNIFFED.search(path.name):
        return False
    try:
        return path.stat().st_size > 0 and detect_file(path) is not InputKind.UNKNOWN
    except OSError:
        return False


def _unopened_container(name: str) -> bool:
    if _UNOPENED_ARCHIVE.search(name):
        return True
    match = _COMPRESSED.search(name)
    if not match:
        return False
    inner = name[:match.start()]
    return (match.group(1).lower() == "tgz" or inner.lower().endswith(".tar") or _is_nested_evidence(inner)
            or role_of(inner) is not None or inner.upper() in ("SYSTEM", "SOFTWARE"))


def walk_folder(root: str | Path) -> tuple[list[ArtefactGroup], list[Path], list[str]]:
    """BITS groups under `root`, zips and disk images met on the way (separate evidence items), and
    warnings naming the entries left out. `root` itself was named by the user: followed if a link."""
    root = Path(root)
    anchor = root.resolve().parent
    base_parts = root.resolve().relative_to(anchor).parts
    listing: list[tuple[str, ...]] = []
    nested: list[Path] = []
    by_content: set[tuple[str, ...]] = set()
    files, skipped = walk_tree(root)
    for rel, name in files:
        listing.append((*base_parts, *rel, name))
        if _bits_by_content(root.joinpath(*rel, name)):
            by_content.add(listing[-1])
        elif _is_nested_evidence(name):
            nested.append(root.joinpath(*rel, name))
        elif _unopened_container(name):
            skipped.append(f"{root.joinpath(*rel, name)}: compressed file or archive that bitsdb does not open "
                           "(7z, rar, xz, gzip, bzip2, zstd): not read; decompress or unpack it into a working "
                           "folder and give the copy")
    groups = []
    for found in find_in_listing(listing, by_content):
        place = found.place
        item = anchor.joinpath(*place.item_parts) if place.item_parts else root
        group = ArtefactGroup(evidence=str(item), evidence_kind="folder",
                              folder="/".join(found.folder[len(place.item_parts):]),
                              host=place.host, host_source="folder name" if place.host else None,
                              snapshot=place.snapshot,
                              hives={label: str(anchor.joinpath(*parts)) for label, parts in found.hives.items()})
        folder_path = anchor.joinpath(*found.folder)
        for name, role in found.files:
            local = folder_path / name
            try:
                stat = local.lstat()
            except OSError:
                continue
            group.artefacts.append(Artefact(
                evidence=group.evidence, evidence_kind="folder", name=decoded(name), role=role,
                path_in_evidence=f"{group.folder}/{name}", size=stat.st_size, host=group.host,
                host_source=group.host_source, snapshot=group.snapshot, mtime=stat.st_mtime, local_path=str(local)))
        if group.artefacts:
            groups.append(group)
    if len(skipped) > SKIPPED_NAMED:
        skipped = skipped[:SKIPPED_NAMED] + [f"{root}: {len(skipped) - SKIPPED_NAMED} more entries skipped "
                                             f"(links, special files, unopened containers)"]
    return groups, nested, skipped
