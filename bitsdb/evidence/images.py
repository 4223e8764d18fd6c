"""Disk images through dfvfs (optional extra): every partition, volume and shadow copy store.

Only known folders are looked up (Downloader, the two hives), so the cost does not grow
with the number of files in the image. Files are copied into a private temporary folder
(the ESE reader needs a path); the image is never written to.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..sources.result import SourceError
from ..sources.detect import special_kind
from .copyout import Budget, copy_out
from .locate import (
    HIVE_PATHS,
    IMAGE_DOWNLOADER_PATHS,
    LOG_FOLDER,
    copy_name,
    find_in_listing,
    host_from_name,
    role_of,
    wanted_log_name,
)
from .records import Artefact, ArtefactGroup

INSTALL_HINT = "disk images need the optional extra: pip install 'bitsdb[images]' (dfvfs)"
IMAGE_SUFFIXES = re.compile(r"\.(e01|ex01|s01|raw|dd|img|001|vmdk|vhd|vhdx|qcow2?)$", re.I)
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
SPLIT_TAIL = re.compile(r"(\.(e|ex|s)(0[2-9]|[1-9]\d)|\.(00[2-9]|0[1-9]\d|[1-9]\d\d)|-flat\.vmdk|-s\d{3}\.vmdk)$",
                        re.I)
#: First bytes (offset, magic, name) of image containers whose stored bytes are not the disk's bytes.
CONTAINER_MAGICS = (
    (0, b"EVF\x09\x0d\x0a\xff\x00", "EWF (E01)"), (0, b"EVF2\x0d\x0a\x81\x00", "EWF2 (Ex01)"),
    (0, b"LVF\x09\x0d\x0a\xff\x00", "EWF logical (L01)"), (0, b"KDMV", "VMDK"),
    (0, VMDK_DESCRIPTOR, "VMDK"), (0, b"vhdxfile", "VHDX"), (0, b"conectix", "VHD"),
    (0, b"QFI\xfb", "qcow"),
)
#: Containers, then raw disks and volumes (NTFS or FAT boot sector, GPT header).
_MAGICS = tuple((at, magic) for at, magic, _ in CONTAINER_MAGICS) + (
    (3, b"NTFS    "), (512, b"EFI PART"), (3, b"MSDOS5.0"), (82, b"FAT32   "),
)


def looks_like_image(path: str | Path) -> bool:
    """By name (.E01, .vmdk, …) or by signature (EWF, VMDK, VHD/X, qcow, NTFS boot sector, MBR/GPT)."""
    path = Path(path)
    if IMAGE_SUFFIXES.search(path.name):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
            handle.seek(-512, os.SEEK_END)
            tail = handle.read(512)
    except OSError:
        return False
    if any(head[at:at + len(magic)] == magic for at, magic in _MAGICS) or tail.startswith(b"conectix"):
        return True
    return len(head) >= 512 and head[510:512] == b"\x55\xaa"


def is_split_segment(name: str) -> bool:
    """A later segment of a split image (E02…, .002…, VMDK extents): opened through its first segment."""
    return bool(SPLIT_TAIL.search(name))


def _dfvfs():
    try:
        from dfvfs.helpers import volume_scanner
        from dfvfs.lib import errors
        from dfvfs.path import factory
        from dfvfs.resolver import resolver
    except ImportError:
        raise SourceError(INSTALL_HINT) from None
    return volume_scanner, errors, factory, resolver


def _volume_labels(base) -> tuple[str | None, str | None]:
    """(partition, snapshot) from a dfvfs path spec chain, e.g. TSK_PARTITION /p1 and VSHADOW /vss2."""
    partition = snapshot = None
    spec = base
    while spec is not None:
        location = getattr(spec, "location", None) or ""
        if spec.type_indicator == "VSHADOW" and location.strip("/"):
            snapshot = location.strip("/")
        elif spec.type_indicator in ("TSK_PARTITION", "GPT", "LVM", "APFS_CONTAINER") and location.strip("/"):
            partition = location.strip("/")
        spec = spec.parent
    return partition, snapshot


def _iso_times(entry) -> dict[str, str]:
    times = {}
    for label, attribute in (("created", "creation_time"), ("modified", "modification_time"),
                             ("accessed", "access_time"), ("entry_modified", "change_time")):
        value = getattr(entry, attribute, None)
        if value is not None:
            try:
                times[label] = value.CopyToDateTimeStringISO8601()
            except Exception:  # noqa: BLE001 - an unset or odd time is just left out
                continue
    return times


def _posix(entry) -> float | None:
    value = getattr(entry, "modification_time", None)
    try:
        return float(value.CopyToPosixTimestampWithFractionOfSecond()[0]) if value is not None else None
    except Exception:  # noqa: BLE001
        return None


def _copy_out(entry, target: Path | None, budget: Budget | None = None) -> tuple[str, int]:
    """Stream a file out of the image (sha256 as it goes, within `budget`); with target None nothing is written."""
    return copy_out(entry.GetFileObject(), target, budget)


_EXTENT = re.compile(r'^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]*)"', re.M)


def companion_problem(path: Path) -> str | None:
    """Why the files an image reader would open beside `path` are unsafe, or None.

    Split segments (disk.E02, disk.002, disk-s001.vmdk) and VMDK extents are opened by name by
    the image library: each must be a plain file in the image's folder, never a link or a FIFO.
    """
    folder, stem = path.parent, path.name.split(".")[0].lower()
    try:
        with os.scandir(folder) as entries:
            siblings = {e.name: e for e in entries}
    except OSError as exc:
        return f"cannot list its folder ({exc.strerror or exc})"
    for name, entry in sorted(siblings.items()):
        lower = name.lower()
        if name != path.name and (lower.startswith(stem + ".") or lower.startswith(stem + "-")):
            special = special_kind(entry.stat(follow_symlinks=False))
            if special:
                return f"{name} beside it is a {special}: segments are read only from plain files"
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if head.startswith(VMDK_DESCRIPTOR):
        for extent in _EXTENT.findall(head.decode("latin-1")):
            if re.search(r"[/\\:]", extent) or extent in (".", "..") or extent not in siblings:
                return f"its descriptor names extent {extent!r}, not a file of its folder"
            if special_kind(siblings[extent].stat(follow_symlinks=False)):
                return f"its extent {extent} is not a plain file"
    return None


def _entry(fs, factory, base, parts):
    location = fs.JoinPath(list(parts))
    spec = factory.Factory.NewPathSpec(base.type_indicator, location=location, parent=base.parent)
    try:
        return fs.GetFileEntryByPathSpec(spec)
    except Exception:  # noqa: BLE001 - back-ends raise several types for "cannot resolve"
        return None


def _base_path_specs(path: str):
    volume_scanner, errors, _, _ = _dfvfs()
    options = volume_scanner.VolumeScannerOptions()
    options.partitions = ["all"]
    options.volumes = ["all"]
    options.snapshots = ["all"]
    try:
        bases = volume_scanner.VolumeScanner().GetBasePathSpecs(path, options=options)
    except (errors.ScannerError, errors.BackEndError, errors.PathSpecError, OSError) as exc:
        raise SourceError(f"not a readable disk image ({' '.join(str(exc).split())[:160]})") from None
    bases = [b for b in bases if b.type_indicator != "OS"]   # OS = dfvfs found no volume system or file system
    if not bases:
        raise SourceError("not a disk image dfvfs can read (no partition table or file system found)")
    return bases


def image_groups(path: str | Path, workdir: Path) -> tuple[list[ArtefactGroup], list[str], list[str]]:
    """Downloader folders of every volume and snapshot store, with the hives beside them, copied to workdir.

    Returns (groups, warnings, volumes scanned as "p1", "p1/vss1", "volume" …).
    """
    _, _, factory, resolver = _dfvfs()
    evidence = str(path)
    problem = companion_problem(Path(path))
    if problem:
        raise SourceError(f"disk image not opened: {problem}")
    budget = Budget()
    bases = _base_path_specs(os.path.abspath(path))
    groups: list[ArtefactGroup] = []
    warnings: list[str] = []
    seen_sha256: dict[tuple, str] = {}
    labelled = sorted(((_volume_labels(b), b) for b in bases),
                      key=lambda item: (item[0][0] or "", _snapshot_order(item[0][1])))
    volumes = ["/".join(p for p in labels if p) or "volume" for labels, _ in labelled]
    hives_of: dict[tuple, dict[str, str]] = {}      # (partition, snapshot) -> copied hives

    def hives_for(partition, snapshot, fs, base, volume_dir) -> dict[str, str]:
        # Shadow stores reuse their partition's current hives (a SOFTWARE hive can be 100 MB).
        for key in ((partition, None), (partition, snapshot)):
            if key in hives_of and hives_of[key]:
                return hives_of[key]
        if (partition, snapshot) not in hives_of:
            hives_of[(partition, snapshot)] = _copy_hives(fs, factory, base, volume_dir, budget)
        return hives_of[(partition, snapshot)]

    opened = []
    for count, ((partition, snapshot), base) in enumerate(labelled):
        try:
            fs = resolver.Resolver.OpenFileSystem(base)
        except Exception as exc:  # noqa: BLE001 - one unreadable volume never hides the others
            warnings.append(f"{partition or 'volume'}{'/' + snapshot if snapshot else ''}: "
                            f"file system not readable ({' '.join(str(exc).split())[:120]})")
            continue
        volume_dir = workdir / f"v{count}"
        opened.append((partition, snapshot, fs, base, volume_dir))
        found_here = 0
        for parts in IMAGE_DOWNLOADER_PATHS:
            group = _downloader_group(fs, factory, base, parts, evidence, partition, snapshot, volume_dir,
                                      seen_sha256, budget)
            if group is not None:
                group.hives = dict(hives_for(partition, snapshot, fs, base, volume_dir))
                groups.append(group)
                found_here += 1
        logs = _downloader_group(fs, factory, base, LOG_FOLDER, evidence, partition, snapshot, volume_dir,
                                 seen_sha256, budget, keep=wanted_log_name)
        if logs is not None:
            logs.hives = dict(hives_for(partition, snapshot, fs, base, volume_dir))
            groups.append(logs)
        if not found_here and not _is_windows_volume(fs):
            # Not a system volume: a collection stored in a container (KAPE's VHDX output) or a data disk.
            walked, note = _walk_for_bits(fs, factory, base, evidence, partition, snapshot, volume_dir,
                                          seen_sha256, budget)
            groups.extend(walked)
            if note:
                warnings.append(note)
    if any(not g.hives for g in groups):
        # A data partition belongs to the machine whose system volume is in the same image.
        system = {}
        for partition, snapshot, fs, base, volume_dir in opened:
            if snapshot is None:
                system = hives_for(partition, snapshot, fs, base, volume_dir)
                if system:
                    break
        for group in groups:
            if not group.hives and system:
                group.hives = dict(system)
    stem_host = host_from_name(Path(evidence).name)
    for group in groups:
        if not group.host:
            group.host, group.host_source = (stem_host, "image name") if stem_host else (None, None)
        for artefact in group.artefacts:
            artefact.host, artefact.host_source = group.host, group.host_source
    return groups, warnings, volumes


WALK_LIMIT = 500_000
_SKIP_AT_ROOT = {"system volume information", "$recycle.bin", "$extend"}


def _is_windows_volume(fs) -> bool:
    try:
        names = {entry.name.lower() for entry in fs.GetRootFileEntry().sub_file_entries}
    except Exception:  # noqa: BLE001
        return False
    return "windows" in names


def _walk_for_bits(fs, factory, base, evidence, partition, snapshot, volume_dir: Path, seen_sha256: dict,
                   budget: Budget):
    """Every BITS folder found by name anywhere on the volume, grouped like a collection folder."""
    listing: list[tuple[str, ...]] = []
    stack = [((), fs.GetRootFileEntry())]
    visited, note = 0, None
    while stack and note is None:
        parts, entry = stack.pop()
        for sub in entry.sub_file_entries:
            visited += 1
            if visited > WALK_LIMIT:
                note = (f"{partition or 'volume'}{'/' + snapshot if snapshot else ''}: name search stopped after "
                        f"{WALK_LIMIT} entries")
                break
            name = sub.name
            if not parts and (name.startswith("$") or name.lower() in _SKIP_AT_ROOT):
                continue
            if sub.IsDirectory():
                stack.append(((*parts, name), sub))
            elif sub.IsFile():
                listing.append((*parts, name))
    groups = []
    for index, found in enumerate(find_in_listing(listing)):
        group = _downloader_group(fs, factory, base, found.folder, evidence, partition, snapshot,
                                  volume_dir / f"w{index}", seen_sha256, budget)
        if group is None:
            continue
        group.host = found.place.host
        group.host_source = "folder name" if found.place.host else None
        for label, hive_parts in found.hives.items():
            entry = _entry(fs, factory, base, hive_parts)
            target = volume_dir / f"w{index}" / f"hive_{label}"
            try:
                _copy_out(entry, target, budget)
                group.hives[label] = str(target)
            except Exception:  # noqa: BLE001 - an unreadable hive only costs names
                continue
        groups.append(group)
    return groups, note


def _downloader_group(fs, factory, base, parts, evidence, partition, snapshot, volume_dir: Path,
                      seen_sha256: dict, budget: Budget, keep=None) -> ArtefactGroup | None:
    """The store files and their companions (ESE logs: carved by --recover), copied out, of one
    Downloader folder (or the event logs `keep` accepts of the logs folder), or None."""
    folder = _entry(fs, factory, base, parts)
    if folder is None or not folder.IsDirectory():
        return None
    group = ArtefactGroup(evidence=evidence, evidence_kind="image", folder="/" + "/".join(parts),
                          partition=partition, snapshot=snapshot)
    target_dir = volume_dir / hashlib.sha256("/".join(parts).lower().encode()).hexdigest()[:16]
    target_dir.mkdir(parents=True, exist_ok=True)
    for entry in sorted(folder.sub_file_entries, key=lambda e: e.name.lower()):
        role = role_of(entry.name)
        if role is None or not entry.IsFile() or (keep is not None and not keep(entry.name)):
            continue
        if copy_name(entry.name) is None:
            group.warnings.append(f"{evidence}!{group.folder}/{entry.name}: not a plain file name: not copied out")
            continue
        target = target_dir / copy_name(entry.name)
        artefact = Artefact(evidence=evidence, evidence_kind="image", name=entry.name, role=role,
                            path_in_evidence=f"{group.folder}/{entry.name}", size=0, partition=partition,
                            snapshot=snapshot, file_times=_iso_times(entry), mtime=_posix(entry))
        try:
            artefact.sha256, artefact.size = _copy_out(entry, target, budget)
        except Exception as exc:  # noqa: BLE001 - unreadable clusters: this file fails, the rest go on
            (group.errors if role == "store" else group.warnings).append(
                f"{artefact.display_path}: cannot copy out of the image ({' '.join(str(exc).split())[:120]})")
            continue
        artefact.local_path = str(target)
        if artefact.mtime is not None:
            os.utime(target, (artefact.mtime, artefact.mtime))
        key = (partition, group.folder.lower(), entry.name.lower())
        if role in ("store", "log") and snapshot and seen_sha256.get(key) == artefact.sha256:
            group.warnings.append(f"{artefact.display_path}: identical to the current volume's copy "
                                  f"(sha256 {artefact.sha256[:16]}…); not read twice")
            artefact.local_path = None
            target.unlink()
        elif role in ("store", "log") and not snapshot:
            seen_sha256[key] = artefact.sha256
        group.artefacts.append(artefact)
    return group if group.artefacts or group.errors else None


def _snapshot_order(snapshot: str | None) -> tuple[int, int]:
    """Current volume first, then vss1, vss2, … numerically."""
    if not snapshot:
        return (0, 0)
    digits = re.sub(r"\D", "", snapshot)
    return (1, int(digits) if digits else 0)


def _copy_hives(fs, factory, base, volume_dir: Path, budget: Budget) -> dict[str, str]:
    hives = {}
    for label, parts in HIVE_PATHS.items():
        entry = _entry(fs, factory, base, parts)
        if entry is None or not entry.IsFile():
            continue
        target = volume_dir / f"hive_{label}"
        volume_dir.mkdir(parents=True, exist_ok=True)
        try:
            _copy_out(entry, target, budget)
        except Exception:  # noqa: BLE001 - an unreadable hive only costs names
            continue
        hives[label] = str(target)
    return hives
