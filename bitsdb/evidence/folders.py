"""Collection folders (KAPE, Velociraptor, plain copies): one walk, names only, nothing opened."""

from __future__ import annotations

import os
from pathlib import Path

from .images import is_split_segment, looks_like_image
from .locate import decoded, find_in_listing
from .records import Artefact, ArtefactGroup

ARCHIVE_SUFFIXES = (".zip",)


def _is_nested_evidence(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return True
    from .images import IMAGE_SUFFIXES

    return bool(IMAGE_SUFFIXES.search(lower)) and not is_split_segment(lower)


def walk_folder(root: str | Path) -> tuple[list[ArtefactGroup], list[Path]]:
    """BITS groups under `root`, plus zips and disk images met on the way (separate evidence items)."""
    root = Path(root)
    anchor = root.resolve().parent
    base_parts = root.resolve().relative_to(anchor).parts
    listing: list[tuple[str, ...]] = []
    nested: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = base_parts + Path(dirpath).relative_to(root).parts
        for name in sorted(filenames):
            listing.append((*rel, name))
            if _is_nested_evidence(name):
                nested.append(Path(dirpath) / name)
    groups = []
    for found in find_in_listing(listing):
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
                stat = local.stat()
            except OSError:
                continue
            group.artefacts.append(Artefact(
                evidence=group.evidence, evidence_kind="folder", name=decoded(name), role=role,
                path_in_evidence=f"{group.folder}/{name}", size=stat.st_size, host=group.host,
                host_source=group.host_source, snapshot=group.snapshot, mtime=stat.st_mtime, local_path=str(local)))
        if group.artefacts:
            groups.append(group)
    nested = [p for p in nested if looks_like_image(p) or p.name.lower().endswith(ARCHIVE_SUFFIXES)]
    return groups, nested
