"""Zip triage packages (KAPE, Velociraptor): members located by name, only store files and hives copied out.

Member names are labels, never paths: they are split into components only to find the
Downloader folders, and a copy is written under a name this module builds (`g3/qmgr.db`,
`g3/hive_SOFTWARE`) inside the private work folder, checked to stay there. A member whose
name is not a plain BITS file name (`..%2F..%2Ftmp%2Fx.jrs`) is reported and not copied.
Copies are bounded in size and expansion (copyout.Budget); encrypted members and nested
archives are reported by name.
"""

from __future__ import annotations

import os
import re
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..sources.result import SourceError
from .copyout import Budget, ExtractionRefused, copy_out
from .locate import copy_name, find_in_listing, host_from_name
from .records import Artefact, ArtefactGroup

if TYPE_CHECKING:
    import zipfile

EXTENDED_TIMESTAMP = 0x5455
ENCRYPTED = 0x1
_NESTED = re.compile(r"\.(zip|7z|rar|tar|tgz|gz|xz|bz2|e01|ex01|l01|s01|vmdk|vhdx?|qcow2?|raw|dd|img|001)$", re.I)
_UNUSUAL = re.compile(r"(^|[/\\])\.\.([/\\]|$)|^[/\\]|^[A-Za-z]:|\x00")
#: Members named one by one in a warning; beyond this, a count.
NAMED = 10


#: Containers bitsdb does not open, by their leading bytes: named in the error so the responder
#: knows what to do (decompress or unpack first) instead of reading "unrecognised content".
_OTHER_CONTAINERS = (
    (b"\xfd7zXZ\x00", "an xz-compressed file", "xz -dc FILE > COPY"),
    (b"\x1f\x8b", "a gzip-compressed file", "gzip -dc FILE > COPY"),
    (b"BZh", "a bzip2-compressed file", "bzip2 -dc FILE > COPY"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "zstd -dc FILE > COPY"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "7z x -oFOLDER FILE"),
    (b"Rar!\x1a\x07", "a RAR archive", "unrar x FILE FOLDER/"),
)


def other_container(path: str | Path) -> str | None:
    """What a container bitsdb does not open is, and how to decompress it (one line); None for others."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return None
    for magic, what, command in _OTHER_CONTAINERS:
        if head.startswith(magic):
            return (f"{what}, which bitsdb does not open: decompress or unpack it into a working folder first "
                    f"({command}) and give the copy (bitsdb reads BITS files, zip archives and disk images)")
    return None


def is_zip(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _utc_mtime(info: zipfile.ZipInfo) -> float | None:
    """The UTC mtime from the extended-timestamp extra field (0x5455), when the writer stored one."""
    extra = info.extra
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        if tag == EXTENDED_TIMESTAMP and len(body) >= 5 and body[0] & 1:
            return float(struct.unpack_from("<i", body, 1)[0])
        pos += 4 + size
    return None


def _times(info: zipfile.ZipInfo) -> tuple[dict[str, str], float | None]:
    utc = _utc_mtime(info)
    if utc is not None:
        try:
            return {"modified": datetime.fromtimestamp(utc, timezone.utc).isoformat()}, utc
        except (OverflowError, OSError, ValueError):
            pass
    # The DOS time has no zone: reported as written, labelled so nobody mistakes it for UTC.
    try:
        return {"modified_zone_unknown": datetime(*info.date_time).isoformat()}, None
    except ValueError:
        return {}, None


def _listed(names: list[str], what: str, evidence: str) -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:NAMED]) + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")
    return [f"{evidence}: {what}: {shown}"]


def _members(archive: zipfile.ZipFile, evidence: str) -> tuple[dict[tuple[str, ...], zipfile.ZipInfo], list[str]]:
    """Members by name components (first of duplicates wins), and warnings about names and members."""
    members: dict[tuple[str, ...], zipfile.ZipInfo] = {}
    nested, encrypted, unusual, duplicates = [], [], [], []
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        parts = tuple(p for p in re.split(r"[/\\]", name) if p and p != ".")
        if not parts:
            continue
        if _UNUSUAL.search(name):
            unusual.append(name)
        if parts in members:
            duplicates.append(name)
            continue
        members[parts] = info
        if info.flag_bits & ENCRYPTED:
            encrypted.append(name)
        if _NESTED.search(name):
            nested.append(name)
    warnings = (_listed(nested, "nested archives or images are not opened (extract them and pass each as "
                                "its own evidence item)", evidence)
                + _listed(encrypted, "encrypted members cannot be read (give the password-free archive)", evidence)
                + _listed(unusual, "member names with '..', absolute or drive components (used as labels only, "
                                   "never as paths)", evidence)
                + _listed(duplicates, "members with a name met before (the first is read)", evidence))
    return members, warnings


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, workdir: Path,
             budget: Budget, archive_size: int) -> str:
    """Copy one member to `target` (inside `workdir`, checked) within the limits; its sha256."""
    if not Path(os.path.realpath(target)).is_relative_to(os.path.realpath(workdir)):
        raise SourceError("copy would leave the private work folder")     # unreachable with built names
    if info.flag_bits & ENCRYPTED:
        raise SourceError("encrypted zip member (give the password-free archive)")
    # Sizes are the archive's claims: a member cannot hold more compressed bytes than the whole file.
    budget.check_ratio(info.file_size, min(info.compress_size, archive_size))
    if info.file_size > budget.left:
        raise budget.refuse_total()
    with archive.open(info) as member:
        return copy_out(member, target, budget, ceiling=info.file_size)[0]


def zip_groups(path: str | Path, workdir: Path) -> tuple[list[ArtefactGroup], list[str], list[str]]:
    """BITS groups inside a zip; store files, their logs and hives are streamed into workdir."""
    import zipfile

    evidence = str(path)
    budget = Budget()
    try:
        archive = zipfile.ZipFile(path)
    except UnicodeDecodeError:
        raise SourceError("not a readable zip archive (member names marked UTF-8 are not UTF-8: damaged or "
                          "crafted)") from None
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types on crafted archives
        raise SourceError(f"not a readable zip archive ({type(exc).__name__}: {exc})") from None
    archive_size = os.path.getsize(path)
    with archive:
        members, warnings = _members(archive, evidence)
        zip_host = host_from_name(Path(evidence).name)
        groups = []
        for index, found in enumerate(find_in_listing(members)):
            place = found.place
            host = place.host or zip_host
            group = ArtefactGroup(evidence=evidence, evidence_kind="zip", folder="/".join(found.folder),
                                  host=host, host_source=("folder name" if place.host else
                                                          "archive name" if zip_host else None),
                                  snapshot=place.snapshot)
            target_dir = workdir / f"g{index}"
            target_dir.mkdir(mode=0o700)
            for name, role in found.files:
                info = members[(*found.folder, name)]
                problems = group.errors if role == "store" else group.warnings
                local = copy_name(name)                     # companions too: --recover carves them
                if local is None:
                    problems.append(f"{evidence}!{info.filename}: not a plain file name: not extracted")
                    continue
                target = target_dir / local
                try:
                    sha256 = _extract(archive, info, target, workdir, budget, archive_size)
                except ExtractionRefused as exc:
                    group.errors.append(f"{evidence}!{info.filename}: refused: {exc}")
                    continue
                except Exception as exc:  # noqa: BLE001 - damaged member: this file fails, the rest go on
                    problems.append(f"{evidence}!{info.filename}: cannot extract ({type(exc).__name__}: {exc})")
                    continue
                times, mtime = _times(info)
                if mtime is not None:
                    try:
                        os.utime(target, (mtime, mtime))
                    except (OverflowError, OSError):
                        pass
                group.artefacts.append(Artefact(
                    evidence=evidence, evidence_kind="zip", name=local, role=role,
                    path_in_evidence=info.filename, size=info.file_size, host=group.host,
                    host_source=group.host_source, snapshot=group.snapshot, sha256=sha256, file_times=times,
                    mtime=mtime, local_path=str(target)))
            for label, parts in found.hives.items():
                target = target_dir / f"hive_{label}"
                try:
                    _extract(archive, members[parts], target, workdir, budget, archive_size)
                    group.hives[label] = str(target)
                except ExtractionRefused as exc:
                    group.warnings.append(f"{evidence}!{members[parts].filename}: refused: {exc}")
                except Exception:  # noqa: BLE001 - an unreadable hive only costs names
                    continue
            if group.artefacts or group.errors:
                groups.append(group)
    return groups, warnings, []
