"""Disk images as bytes for carving: every volume, shadow-copy store and unpartitioned area of
the DECODED media (dfvfs, the `images` extra), and where on a volume a hit lies.

`survey(image)` lists targets: each partition (or the bare volume), each Volume Shadow Copy
store (only the blocks the store holds: the rest of a snapshot is the current volume, scanned
once), and the disk areas no partition covers. A target is described by serialisable dfvfs path
specs, so any process that can read the image path can scan a range of it (`scan_target_range`)
or say where hits lie (`locate_hits`): unallocated, inside an allocated file (its path and the
offset in it), in that file's slack, or outside every partition.
"""

from __future__ import annotations

import bisect
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..carve.ranges import RangeResult, merge_regions, scan_range
from ..sources.result import SourceError
from .images import CONTAINER_MAGICS, INSTALL_HINT, WALK_LIMIT, _snapshot_order   # WALK_LIMIT: entries a file walk visits

VSS_BLOCK = 0x4000
_STORAGE_TYPES_PREFERRED = ("GPT", "TSK_PARTITION", "APM")


def container_format(path: str | Path) -> str | None:
    """The container format name when `path` is an E01/VMDK/VHD(X)/qcow image, else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            size = handle.seek(0, os.SEEK_END)
            tail = b""
            if size >= 512:
                handle.seek(-512, os.SEEK_END)
                tail = handle.read(8)
    except OSError:
        return None
    for at, magic, name in CONTAINER_MAGICS:
        if head[at:at + len(magic)] == magic:
            return name
    return "VHD" if tail == b"conectix" else None


@dataclass(frozen=True)
class Target:
    """Bytes of one image to carve: a volume, a snapshot store's blocks, or unpartitioned space."""

    label: str                              # "p1", "p1/vss2", "volume", "unpartitioned", "media"
    kind: str                               # volume | snapshot | unpartitioned | media
    partition: str | None
    snapshot: str | None
    spec: str                               # dfvfs path spec (JSON) of the bytes
    size: int
    regions: tuple[tuple[int, int], ...]    # what to scan, as [start, stop) offsets into the bytes
    fs_spec: str | None = None              # the file system on these bytes (JSON), to locate hits

    @property
    def scanned_bytes(self) -> int:
        return sum(stop - start for start, stop in self.regions)


@dataclass
class Survey:
    image: str
    media_format: str                       # "EWF", "VMDK", "RAW", "OS" (a plain file) …
    targets: list[Target] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Place:
    """Where on its volume a hit lies."""

    allocation: str                         # model.ALLOCATION_KINDS
    path: str | None = None                 # the allocated file holding the bytes ("/pagefile.sys")
    file_offset: int | None = None          # the hit's offset inside that file


def _dfvfs():
    try:
        from dfvfs.analyzer import analyzer
        from dfvfs.lib import errors
        from dfvfs.path import factory
        from dfvfs.resolver import resolver
        from dfvfs.serializer.json_serializer import JsonPathSpecSerializer
    except ImportError:
        raise SourceError(INSTALL_HINT) from None
    return analyzer, errors, factory, resolver, JsonPathSpecSerializer


def _clean(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def survey(image: str | Path) -> Survey:
    """Every target of an image; SourceError (one line) when dfvfs cannot open it at all."""
    from .images import companion_problem

    problem = companion_problem(Path(image))         # segments and extents: plain files only
    if problem:
        raise SourceError(f"disk image not opened: {problem}")
    analyzer, errors, factory, resolver, serializer = _dfvfs()
    path = os.path.abspath(image)
    os_spec = factory.Factory.NewPathSpec("OS", location=path)
    try:
        media_types = analyzer.Analyzer.GetStorageMediaImageTypeIndicators(os_spec)
        media = factory.Factory.NewPathSpec(media_types[0], parent=os_spec) if media_types else os_spec
        media_size = resolver.Resolver.OpenFileObject(media).get_size()
        volume_types = analyzer.Analyzer.GetVolumeSystemTypeIndicators(media)
    except (errors.BackEndError, errors.PathSpecError, errors.ScannerError, OSError, IOError) as exc:
        raise SourceError(f"not a readable disk image ({_clean(exc)})") from None
    result = Survey(image=str(image), media_format=media.type_indicator)
    write = serializer.WriteSerialized
    partition_type = next((t for t in _STORAGE_TYPES_PREFERRED if t in volume_types), None)
    if partition_type is None and not volume_types and _has_tsk_partitions(media, resolver):
        partition_type = "TSK_PARTITION"        # MBR: no signature for dfvfs's analyzer, TSK reads it
    if partition_type is None:
        _add_volume(result, media, None, media_size, volume_types, write)
        if not result.targets[0].fs_spec and not any(t.kind == "snapshot" for t in result.targets):
            # Nothing dfvfs knows: carve the (decoded) bytes as they are.
            only = result.targets[0]
            result.targets[0] = Target("media", "media", None, None, only.spec, only.size, only.regions)
        return result
    covered = []
    for identifier, offset, size in _partitions(partition_type, media, factory):
        volume = factory.Factory.NewPathSpec(partition_type, location=f"/{identifier}", parent=media)
        try:
            volume_size = resolver.Resolver.OpenFileObject(volume).get_size()
            inner_types = analyzer.Analyzer.GetVolumeSystemTypeIndicators(volume)
        except Exception as exc:  # noqa: BLE001 - one unreadable partition never hides the others
            result.warnings.append(f"{identifier}: partition not readable ({_clean(exc)})")
            continue
        covered.append((offset, offset + size))
        _add_volume(result, volume, identifier, volume_size, inner_types, write)
    gaps = _gaps(media_size, covered)
    if gaps:
        result.targets.append(Target("unpartitioned", "unpartitioned", None, None, write(media), media_size,
                                     tuple(gaps)))
    return result


def _has_tsk_partitions(media, resolver) -> bool:
    try:
        import pytsk3
        from dfvfs.lib.tsk_image import TSKFileSystemImage

        return bool(pytsk3.Volume_Info(TSKFileSystemImage(resolver.Resolver.OpenFileObject(media))))
    except Exception:  # noqa: BLE001 - not a partition table TSK knows
        return False


def _partitions(partition_type: str, media, factory) -> list[tuple[str, int, int]]:
    """(identifier, offset, size) of each partition, in dfvfs's order (p1, p2 …)."""
    if partition_type == "GPT":
        from dfvfs.volume.gpt_volume_system import GPTVolumeSystem as System
    elif partition_type == "APM":
        from dfvfs.volume.apm_volume_system import APMVolumeSystem as System
    else:
        from dfvfs.volume.tsk_volume_system import TSKVolumeSystem as System
    system = System()
    system.Open(factory.Factory.NewPathSpec(partition_type, location="/", parent=media))
    out = []
    for volume in system.volumes:
        extents = list(volume.extents)
        if extents:
            out.append((volume.identifier, extents[0].offset, sum(e.size for e in extents)))
    return sorted(out, key=lambda item: (len(item[0]), item[0]))


def _gaps(size: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    gaps, at = [], 0
    for start, stop in merge_regions(covered):
        if start > at:
            gaps.append((at, start))
        at = max(at, stop)
    if at < size:
        gaps.append((at, size))
    return gaps


def _add_volume(result: Survey, volume, partition: str | None, size: int, inner_types, write) -> None:
    """The volume itself, then each shadow-copy store on it (the blocks the store holds)."""
    _, _, factory, resolver, _ = _dfvfs()
    label = partition or "volume"
    result.targets.append(Target(label, "volume", partition, None, write(volume), size, ((0, size),),
                                 _file_system_spec(volume, write)))
    if "VSHADOW" not in inner_types:
        return
    try:
        from dfvfs.volume.vshadow_volume_system import VShadowVolumeSystem

        system = VShadowVolumeSystem()
        root = factory.Factory.NewPathSpec("VSHADOW", location="/", parent=volume)
        system.Open(root)
        stores_fs = resolver.Resolver.OpenFileSystem(root)
        identifiers = sorted((v.identifier for v in system.volumes), key=_snapshot_order)
    except Exception as exc:  # noqa: BLE001 - the current volume is still carved
        result.warnings.append(f"{label}: shadow copies not readable ({_clean(exc)})")
        return
    for identifier in identifiers:
        index = int(identifier.lstrip("vs")) - 1
        spec = factory.Factory.NewPathSpec("VSHADOW", location=f"/{identifier}", store_index=index, parent=volume)
        try:
            store = stores_fs.GetVShadowStoreByPathSpec(spec)
            blocks = [(block.original_offset, block.original_offset + VSS_BLOCK)
                      for block in (store.get_block(i) for i in range(store.number_of_blocks))]
            regions = tuple(merge_regions((a, min(b, size)) for a, b in blocks if a < size))
        except Exception as exc:  # noqa: BLE001 - unreadable store: said, the others go on
            result.warnings.append(f"{label}/{identifier}: shadow copy store not readable ({_clean(exc)})")
            continue
        result.targets.append(Target(f"{partition + '/' if partition else ''}{identifier}", "snapshot", partition,
                                     identifier, write(spec), size, regions, _file_system_spec(spec, write)))


def _file_system_spec(volume, write) -> str | None:
    analyzer, _, factory, _, _ = _dfvfs()
    try:
        types = analyzer.Analyzer.GetFileSystemTypeIndicators(volume)
    except Exception:  # noqa: BLE001 - no file system: hits are located by volume offset only
        return None
    if not types:
        return None
    kind = "NTFS" if "NTFS" in types else types[0]
    location = "\\" if kind == "NTFS" else "/"
    return write(factory.Factory.NewPathSpec(kind, location=location, parent=volume))


# --------------------------------------------------------------------------- opening bytes in a worker

_OPEN = threading.local()          # per thread: a dfvfs file object is not safe to share


def _open_bytes(spec_json: str):
    """The file-like object of a target (kept open per thread: EWF/VMDK opens are costly)."""
    cache = getattr(_OPEN, "files", None)
    if cache is None:
        cache = _OPEN.files = {}
    handle = cache.get(spec_json)
    if handle is None:
        _, _, _, resolver, serializer = _dfvfs()
        handle = resolver.Resolver.OpenFileObject(serializer.ReadSerialized(spec_json))
        if len(cache) >= 8:
            cache.clear()
        cache[spec_json] = handle
    return handle


def scan_target_range(target: Target, start: int, stop: int) -> RangeResult:
    """Task: every validated record whose marker lies in [start, stop) of the target's bytes."""
    try:
        return scan_range(_open_bytes(target.spec), start, stop)
    except SourceError:
        raise
    except (OSError, IOError) as exc:
        raise SourceError(f"{target.label}: cannot read bytes {start}-{stop} ({_clean(exc)})") from None


# --------------------------------------------------------------------------- where hits lie


def locate_hits(target: Target, offsets: list[int]) -> dict[int, Place]:
    """Task: for each offset of the target's bytes, where it lies (see Place)."""
    if target.kind in ("unpartitioned", "media"):
        allocation = "unpartitioned" if target.kind == "unpartitioned" else "no file system"
        return {offset: Place(allocation) for offset in offsets}
    if not target.fs_spec or not offsets:
        return {offset: Place("no file system") for offset in offsets}
    _, _, _, resolver, serializer = _dfvfs()
    try:
        fs_spec = serializer.ReadSerialized(target.fs_spec)
        fs = resolver.Resolver.OpenFileSystem(fs_spec)
    except Exception:  # noqa: BLE001 - a damaged file system: offsets are still reported
        return {offset: Place("no file system") for offset in offsets}
    allocated = _ntfs_allocated(fs, fs_spec, target, offsets)
    wanted = [o for o in offsets if allocated is None or allocated.get(o)]
    files = _FileMap.build(fs, fs_spec) if wanted else None
    out = {}
    for offset in offsets:
        if allocated is not None and not allocated.get(offset):
            out[offset] = Place("unallocated")
            continue
        found = files.find(offset) if files is not None else None
        if found is None:
            # NTFS: an allocated cluster no walked file claims (metadata, or the walk stopped early)
            out[offset] = Place("allocated file" if allocated is not None else "unallocated")
        else:
            path, file_offset, size = found
            out[offset] = Place("file slack" if file_offset >= size else "allocated file", path, file_offset)
    return out


def _ntfs_allocated(fs, fs_spec, target: Target, offsets: list[int]) -> dict[int, bool] | None:
    """offset -> cluster in use, from NTFS's $Bitmap; None when the volume is not NTFS."""
    _, _, factory, _, _ = _dfvfs()
    try:
        volume = _open_bytes(target.spec)
        volume.seek(0)
        boot = volume.read(512)
        if boot[3:11] != b"NTFS    ":
            return None
        sector, per_cluster = struct.unpack_from("<HB", boot, 0x0B)
        cluster = sector * (per_cluster if per_cluster <= 0x80 else 1 << (256 - per_cluster))
        spec = factory.Factory.NewPathSpec(fs_spec.type_indicator, location=fs.JoinPath(["$Bitmap"]),
                                           parent=fs_spec.parent)
        bitmap = fs.GetFileEntryByPathSpec(spec).GetFileObject()
        out = {}
        for offset in offsets:
            number = offset // cluster
            bitmap.seek(number // 8)
            byte = bitmap.read(1)
            out[offset] = bool(byte and byte[0] >> (number % 8) & 1)
        return out
    except Exception:  # noqa: BLE001 - no usable bitmap: fall back to the file walk alone
        return None


class _FileMap:
    """Volume extents of every file (one walk of the file system), searchable by offset."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.items: list[tuple[int, int, str, int, int]] = []     # (start, stop, path, logical, size)

    @classmethod
    def build(cls, fs, fs_spec) -> "_FileMap":
        spans = []
        stack = [("", fs.GetRootFileEntry())]
        visited = 0
        while stack and visited < WALK_LIMIT:
            parent, entry = stack.pop()
            for sub in entry.sub_file_entries:
                visited += 1
                if visited >= WALK_LIMIT:
                    break
                path = f"{parent}/{sub.name}"
                if sub.IsDirectory():
                    stack.append((path, sub))
                if not sub.IsFile():
                    continue
                try:
                    extents = sub.GetExtents()
                    size = sub.size or 0
                except Exception:  # noqa: BLE001 - an unreadable entry only costs its name
                    continue
                logical = 0
                for extent in extents:
                    if extent.extent_type == "data" and extent.size:
                        spans.append((extent.offset, extent.offset + extent.size, path, logical, size))
                    logical += extent.size
        table = cls()
        table.items = sorted(spans)
        table.starts = [item[0] for item in table.items]
        return table

    def find(self, offset: int) -> tuple[str, int, int] | None:
        """(path, offset in the file, file size) of the file whose extent holds `offset`."""
        index = bisect.bisect_right(self.starts, offset) - 1
        if index < 0:
            return None
        start, stop, path, logical, size = self.items[index]
        return (path, logical + offset - start, size) if offset < stop else None


def carve_as_image(path: str | Path) -> bool:
    """Whether `bitsdb carve` reads `path` as a disk image (decoded media, every volume) rather than
    as plain bytes. A container (E01, VMDK, VHD/X, qcow) always is, and without dfvfs that is a
    SourceError: its stored bytes are compressed or sparse, carving them would find nothing."""
    from ..formats.markers import InputKind
    from ..sources.detect import detect_file
    from .images import looks_like_image

    path = Path(path)
    if path.is_dir() or not path.is_file():
        return False
    try:
        if detect_file(path) is not InputKind.UNKNOWN:
            return False                        # a BITS store or record: carved as a file (page-aware)
    except OSError:
        return False
    container = container_format(path)
    try:
        import dfvfs  # noqa: F401
    except ImportError:
        if container:
            raise SourceError(f"{container} image: carving reads the decoded disk, which needs the optional "
                              "extra: pip install 'bitsdb[images]' (dfvfs)") from None
        return False
    return bool(container) or looks_like_image(path)
