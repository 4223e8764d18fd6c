"""Pure-Python writer for ESE ("JET Blue") databases shaped like Windows' ``qmgr.db``.

The writer bulk-loads a fresh database in one pass: fixed system objects first
(catalog, shadow catalog, catalog indexes, MSysObjids, MSysLocales on the same
pages Windows uses), then each user table with its primary-key tree, its
long-value (LV) tree and their space trees.  Long binary columns are stored as
*separated* long values, as BITS does: the record's tagged column holds a 64-bit
LID and the table's LV tree holds an LV root (refcount, size) plus data chunks.

Public entry points:

* :func:`write_qmgr_database` - BITS ``Jobs``/``Files`` tables from (GUID, blob) pairs.
* :func:`write_ese_database` - the generic writer underneath, for other schemas.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..formats.ese import (
    OBJID_CATALOG,
    PGNO_CATALOG,
    SYSOBJ_COLUMN,
    SYSOBJ_INDEX,
    SYSOBJ_LONG_VALUE,
    SYSOBJ_TABLE,
    COLTYP_BINARY,
    COLTYP_BIT,
    COLTYP_GUID,
    COLTYP_LONG,
    COLTYP_LONG_BINARY,
    COLTYP_LONG_TEXT,
    COLTYP_SHORT,
    COLTYP_TEXT,
    COLTYP_UNSIGNED_BYTE,
    COLTYP_UNSIGNED_SHORT,
    FIXED_COLUMN_SIZES,
    PAGE_BASE_FLAGS,
    PAGE_EMPTY,
    PAGE_INDEX,
    PAGE_LEAF,
    PAGE_LONG_VALUE,
    PAGE_ROOT,
    PAGE_SPACE_TREE,
    TAGFLD_LONG_VALUE,
    TAGFLD_SEPARATED,
    HeaderFields,
    TaggedValue,
    build_database_header,
    build_page,
    encode_node,
    encode_record,
    encode_space_header,
    key_ascii_text,
    key_binary,
    key_bit,
    key_guid,
    key_long,
    key_short,
)
from ..formats.ese_checksum import seal_large_page
from .ese_tree import Entry, PlannedTree, emit_tree, plan_tree

#: LV data chunk size Windows uses in 16 KiB-page qmgr.db files (0xFD2, seen in real samples).
DEFAULT_LV_CHUNK_SIZE = 4050
#: 64-bit LIDs carry the top bit (LVKEY_BUFFER.fLid64); Windows numbers them above the 32-bit range.
LID64_BASE = 0x8000000080000000


_CATALOG_FIXED_SIZES = {1: 4, 2: 2, 3: 4, 4: 4, 5: 4, 6: 4, 7: 4, 8: 1, 9: 2, 10: 4, 11: 2, 12: 4}
_LCMAP_FLAGS_DEFAULT = 0x00030401
_LOCALE_EN_US = "en-US".encode("utf-16-le")


# ----------------------------------------------------------------------------------
# Schema description
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """One column as recorded in the catalog (type 2 record)."""

    column_id: int
    name: str
    coltyp: int
    space_usage: int
    flags: int = 0
    codepage: int = 0
    default_value: bytes | None = None
    record_offset: int | None = None  # overrides the computed offset (MSysObjects quirk)

    @property
    def is_fixed(self) -> bool:
        return self.column_id < 128

    @property
    def is_variable(self) -> bool:
        return 128 <= self.column_id < 256

    @property
    def is_tagged(self) -> bool:
        return self.column_id >= 256

    @property
    def is_long(self) -> bool:
        return self.coltyp in (COLTYP_LONG_BINARY, COLTYP_LONG_TEXT)


@dataclass(frozen=True)
class IndexSpec:
    """An index (type 3 record).  The primary index shares its table's objid and FDP."""

    name: str
    key_column_ids: tuple[int, ...]
    flags: int = 0x00010031  # IDXFLAG ExtendedColumns << 16 | Unique | NoNullSeg | Primary
    density: int = 80


@dataclass
class TableData:
    """A user table: schema plus rows (column id -> raw value bytes)."""

    name: str
    columns: list[ColumnSpec]
    primary_index: IndexSpec
    rows: Sequence[dict[int, bytes]]
    density: int = 80
    flags: int = 0
    pages: int = 0


@dataclass
class Remnant:
    """Bytes planted in unused page space, and where they landed in the file."""

    data: bytes
    file_offset: int = -1
    pgno: int = -1


@dataclass
class WriteReport:
    """What the writer produced (handy for tests and benchmarks)."""

    page_count: int
    table_roots: dict[str, int] = field(default_factory=dict)
    lv_roots: dict[str, int] = field(default_factory=dict)
    remnants: list[Remnant] = field(default_factory=list)


# ----------------------------------------------------------------------------------
# System schema (mirrors the catalog of a Windows 10/11 qmgr.db)
# ----------------------------------------------------------------------------------


def _catalog_columns() -> list[ColumnSpec]:
    cp = 1252
    fixed = [
        (1, "ObjidTable", COLTYP_LONG, 4, 1),
        (2, "Type", COLTYP_SHORT, 2, 1),
        (3, "Id", COLTYP_LONG, 4, 1),
        (4, "ColtypOrPgnoFDP", COLTYP_LONG, 4, 1),
        (5, "SpaceUsage", COLTYP_LONG, 4, 1),
        (6, "Flags", COLTYP_LONG, 4, 1),
        (7, "PagesOrLocale", COLTYP_LONG, 4, 1),
        (8, "RootFlag", COLTYP_BIT, 1, 0),
        (9, "RecordOffset", COLTYP_SHORT, 2, 0),
        (10, "LCMapFlags", COLTYP_LONG, 4, 0),
        (11, "KeyMost", COLTYP_UNSIGNED_SHORT, 2, 0),
        (12, "LVChunkMax", COLTYP_LONG, 4, 0),
    ]
    columns = [ColumnSpec(i, n, t, s, f, cp, record_offset=4) for i, n, t, s, f in fixed]
    variable = [
        (128, "Name", COLTYP_TEXT, 1),
        (129, "Stats", COLTYP_BINARY, 0),
        (130, "TemplateTable", COLTYP_TEXT, 0),
        (131, "DefaultValue", COLTYP_BINARY, 0),
        (132, "KeyFldIDs", COLTYP_BINARY, 0),
        (133, "VarSegMac", COLTYP_BINARY, 0),
        (134, "ConditionalColumns", COLTYP_BINARY, 0),
        (135, "TupleLimits", COLTYP_BINARY, 0),
        (136, "Version", COLTYP_BINARY, 0),
        (137, "SortID", COLTYP_BINARY, 0),
    ]
    columns += [ColumnSpec(i, n, t, 255, f, cp) for i, n, t, f in variable]
    tagged = ["CallbackData", "CallbackDependencies", "SeparateLV", "SpaceHints", "SpaceDeferredLVHints", "LocaleName"]
    columns += [ColumnSpec(256 + i, n, COLTYP_LONG_BINARY, 0, 0, cp) for i, n in enumerate(tagged)]
    return columns


CATALOG_COLUMNS = _catalog_columns()
OBJIDS_COLUMNS = [
    ColumnSpec(256, "objid", COLTYP_LONG, 4),
    ColumnSpec(257, "objidTable", COLTYP_LONG, 4),
    ColumnSpec(258, "type", COLTYP_SHORT, 2),
]
LOCALES_COLUMNS = [
    ColumnSpec(1, "Type", COLTYP_UNSIGNED_BYTE, 1, 1),
    ColumnSpec(2, "iValue", COLTYP_LONG, 4, 0x30, default_value=b"\x00\x00\x00\x00"),
    ColumnSpec(128, "Key", COLTYP_BINARY, 255),
]
#: MSysLocales rows of a fresh Windows 10/11 qmgr.db: (Type, iValue, Key string).
LOCALES_ROWS = [
    (1, 1, ".Schema\\External\\Major"),
    (1, 0, ".Schema\\External\\Minor"),
    (1, 0, ".Schema\\External\\Update"),
    (1, 1, ".Schema\\Internal\\Major"),
    (1, 0, ".Schema\\Internal\\Minor"),
    (1, 0, ".Schema\\Internal\\Update"),
    (2, 1, "MSysLocalesConsistent"),
]

# Fixed page layout of the system objects (identical to Windows' qmgr.db).
PGNO_DB_ROOT = 1
PGNO_CATALOG_NAME_INDEX = 7
PGNO_CATALOG_ROOT_INDEX = 10
PGNO_SHADOW = 24
PGNO_OBJIDS = 29
PGNO_LOCALES = 30
FIRST_USER_PGNO = 31
CATALOG_EXTENT = 20  # pages 4..23
SHADOW_EXTENT = 5  # pages 24..28

OBJID_DB = 1
OBJID_SHADOW = 3
OBJID_NAME_INDEX = 4
OBJID_ROOT_INDEX = 5
OBJID_OBJIDS = 6
OBJID_LOCALES = 7
FIRST_USER_OBJID = 8


# ----------------------------------------------------------------------------------
# Keys and records
# ----------------------------------------------------------------------------------


def normalized_key(column: ColumnSpec, value: bytes) -> bytes:
    """Normalized index key segment of one column value."""
    coltyp = column.coltyp
    if coltyp == COLTYP_GUID:
        return key_guid(value)
    if coltyp == COLTYP_LONG:
        return key_long(struct.unpack("<i", value)[0])
    if coltyp in (COLTYP_SHORT,):
        return key_short(struct.unpack("<h", value)[0])
    if coltyp == COLTYP_UNSIGNED_SHORT:
        return b"\x7f" + struct.pack(">H", struct.unpack("<H", value)[0])
    if coltyp in (COLTYP_UNSIGNED_BYTE,):
        return b"\x7f" + value
    if coltyp == COLTYP_BIT:
        return key_bit(value != b"\x00")
    if coltyp == COLTYP_TEXT:
        return key_ascii_text(value.decode("cp1252"))
    if coltyp == COLTYP_BINARY:
        return key_binary(value)
    raise NotImplementedError(f"no key normalization for column type {coltyp}")


def _record_from_columns(columns: Sequence[ColumnSpec], values: dict[int, object]) -> bytes:
    """Encode a row given column specs; tagged values may be TaggedValue instances."""
    by_id = {column.column_id: column for column in columns}
    fixed_sizes = {c.column_id: FIXED_COLUMN_SIZES.get(c.coltyp, c.space_usage) for c in columns if c.is_fixed}
    fixed: dict[int, bytes | None] = {}
    variable: dict[int, bytes | None] = {}
    tagged: dict[int, TaggedValue] = {}
    for column_id, value in values.items():
        column = by_id[column_id]
        if column.is_fixed:
            fixed[column_id] = value  # type: ignore[assignment]
        elif column.is_variable:
            variable[column_id] = value  # type: ignore[assignment]
        elif isinstance(value, TaggedValue):
            tagged[column_id] = value
        else:
            flags = TAGFLD_LONG_VALUE if column.is_long else 0
            tagged[column_id] = TaggedValue(bytes(value), flags)  # type: ignore[arg-type]
    return encode_record(fixed, fixed_sizes, variable, tagged)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)


def _catalog_key(objid_table: int, record_type: int, object_id: int) -> bytes:
    return key_long(objid_table) + key_short(record_type) + key_long(object_id)


@dataclass(frozen=True)
class _CatalogEntry:
    key: bytes
    record: bytes
    objid_table: int
    record_type: int
    name: str
    is_root: bool


def _catalog_record(
    objid_table: int,
    record_type: int,
    object_id: int,
    coltyp_or_pgno: int,
    space_usage: int,
    flags: int,
    pages_or_locale: int,
    name: str,
    *,
    root_flag: bool = False,
    record_offset: int | None = None,
    lcmap_flags: int | None = None,
    variable_extra: dict[int, bytes | None] | None = None,
    tagged: dict[int, TaggedValue] | None = None,
) -> _CatalogEntry:
    fixed: dict[int, bytes | None] = {
        1: _u32(objid_table),
        2: struct.pack("<H", record_type),
        3: _u32(object_id),
        4: _u32(coltyp_or_pgno),
        5: _u32(space_usage),
        6: _u32(flags),
        7: _u32(pages_or_locale),
    }
    if root_flag:
        fixed[8] = b"\xff"
    if record_offset is not None:
        fixed[8] = None
        fixed[9] = struct.pack("<H", record_offset)
    if lcmap_flags is not None:
        fixed[8] = None
        fixed[9] = None
        fixed[10] = _u32(lcmap_flags)
    variable: dict[int, bytes | None] = {128: name.encode("cp1252")}
    if variable_extra:
        variable.update(variable_extra)
    record = encode_record(fixed, _CATALOG_FIXED_SIZES, variable, tagged or {})
    return _CatalogEntry(
        _catalog_key(objid_table, record_type, object_id), record, objid_table, record_type, name, root_flag
    )


def _column_records(objid_table: int, columns: Sequence[ColumnSpec]) -> list[_CatalogEntry]:
    entries = []
    offset = 4
    for column in columns:
        record_offset = None
        if column.is_fixed:
            record_offset = column.record_offset if column.record_offset is not None else offset
            offset += FIXED_COLUMN_SIZES.get(column.coltyp, column.space_usage)
        extra: dict[int, bytes | None] = {}
        if column.default_value is not None:
            extra = {129: None, 130: None, 131: column.default_value}
        entries.append(
            _catalog_record(
                objid_table,
                SYSOBJ_COLUMN,
                column.column_id,
                column.coltyp,
                column.space_usage,
                column.flags,
                column.codepage,
                column.name,
                record_offset=record_offset,
                variable_extra=extra,
            )
        )
    return entries


def _index_record(objid_table: int, index_objid: int, pgno_fdp: int, index: IndexSpec) -> _CatalogEntry:
    key_fields = b"".join(b"\x00\x00" + struct.pack("<H", fid) for fid in index.key_column_ids)
    return _catalog_record(
        objid_table,
        SYSOBJ_INDEX,
        index_objid,
        pgno_fdp,
        index.density,
        index.flags,
        0,
        index.name,
        lcmap_flags=_LCMAP_FLAGS_DEFAULT,
        variable_extra={129: None, 130: None, 131: None, 132: key_fields},
        tagged={261: TaggedValue(_LOCALE_EN_US, TAGFLD_LONG_VALUE)},
    )


# ----------------------------------------------------------------------------------
# Page allocation and writing
# ----------------------------------------------------------------------------------


class _PageFile:
    """Writes sealed pages at their file offsets (two header pages come first)."""

    def __init__(self, handle, page_size: int):
        self.handle = handle
        self.page_size = page_size
        self.highest_pgno = 0

    def offset_of(self, pgno: int) -> int:
        return (pgno + 1) * self.page_size

    def write(self, pgno: int, page: bytearray) -> None:
        self.handle.seek(self.offset_of(pgno))
        self.handle.write(page)
        self.highest_pgno = max(self.highest_pgno, pgno)


def _space_tree_nodes(extents: Iterable[tuple[int, int]]) -> list[bytes]:
    """Space tree leaf nodes: key = last page (big-endian), data = page count."""
    return [encode_node(struct.pack(">I", first + count - 1), struct.pack("<I", count)) for first, count in extents]


def _write_space_trees(
    pages: _PageFile,
    objid: int,
    pgno_oe: int,
    owned: list[tuple[int, int]],
    available: list[tuple[int, int]],
    dbtime: int,
) -> None:
    flags = PAGE_BASE_FLAGS | PAGE_ROOT | PAGE_LEAF | PAGE_SPACE_TREE
    for pgno, extents in ((pgno_oe, owned), (pgno_oe + 1, available)):
        page, _ = build_page(
            pages.page_size, pgno, objid, flags, b"\x00" * 16, _space_tree_nodes(extents), dbtime=dbtime
        )
        pages.write(pgno, page)


def _write_single_page_tree(
    pages: _PageFile,
    pgno: int,
    objid: int,
    tree_flags: int,
    root_header: bytes,
    entries: Sequence[Entry],
    dbtime: int,
) -> None:
    nodes = [encode_node(key, bytes(data)) for key, data in entries]
    flags = PAGE_BASE_FLAGS | PAGE_ROOT | PAGE_LEAF | tree_flags
    page, _ = build_page(pages.page_size, pgno, objid, flags, root_header, nodes, dbtime=dbtime)
    pages.write(pgno, page)


@dataclass
class _UserLayout:
    table: TableData
    objid: int
    lv_objid: int | None
    fdp: int
    tree: PlannedTree
    tree_pages: list[int]
    lv_fdp: int | None = None
    lv_tree: PlannedTree | None = None
    lv_pages: list[int] = field(default_factory=list)
    extent_end: int = 0  # last page owned by the table (inclusive)


def _lv_entries(
    blobs: Sequence[bytes], first_lid: int, chunk_size: int
) -> tuple[list[Entry], list[int]]:
    """LV tree entries for blobs stored in order; returns entries and each blob's LID."""
    entries: list[Entry] = []
    lids: list[int] = []
    for number, blob in enumerate(blobs):
        lid = first_lid + number
        lids.append(lid)
        root_key = struct.pack(">Q", lid)
        entries.append((root_key, struct.pack("<II", 1, len(blob))))
        view = memoryview(blob)
        for offset in range(0, len(blob), chunk_size):
            entries.append((root_key + struct.pack(">I", offset), view[offset : offset + chunk_size]))
    return entries, lids


def _prepare_user_table(
    table: TableData, page_size: int, chunk_size: int
) -> tuple[PlannedTree, PlannedTree | None]:
    """Encode a table's records and long values and plan both trees."""
    columns = {c.column_id: c for c in table.columns}
    key_columns = [columns[i] for i in table.primary_index.key_column_ids]
    long_columns = [c for c in table.columns if c.is_tagged and c.is_long]

    blobs: list[bytes] = []
    blob_slots: list[tuple[int, int]] = []  # (row index, column id)
    for row_index, row in enumerate(table.rows):
        for column in long_columns:
            value = row.get(column.column_id)
            if value:
                blob_slots.append((row_index, column.column_id))
                blobs.append(value)
    lv_entries, lids = _lv_entries(blobs, LID64_BASE + 1, chunk_size)
    lid_of = {slot: lid for slot, lid in zip(blob_slots, lids)}

    records: list[Entry] = []
    for row_index, row in enumerate(table.rows):
        key = b"".join(normalized_key(c, row[c.column_id]) for c in key_columns)
        values: dict[int, object] = {}
        for column_id, value in row.items():
            if (row_index, column_id) in lid_of:
                values[column_id] = TaggedValue(
                    struct.pack("<Q", lid_of[(row_index, column_id)]), TAGFLD_LONG_VALUE | TAGFLD_SEPARATED
                )
            else:
                values[column_id] = value
        records.append((key, _record_from_columns(table.columns, values)))
    records.sort(key=lambda entry: entry[0])
    for previous, current in zip(records, records[1:]):
        if previous[0] == current[0]:
            raise ValueError(f"duplicate primary key in table {table.name}")
    tree = plan_tree(records, page_size, 16, table.density)
    lv_tree = plan_tree(lv_entries, page_size, 16, 100) if long_columns else None
    return tree, lv_tree


def write_ese_database(
    path: str | os.PathLike,
    tables: Sequence[TableData],
    *,
    page_size: int = 16384,
    lv_chunk_size: int = DEFAULT_LV_CHUNK_SIZE,
    header: HeaderFields | None = None,
    remnants: Sequence[bytes] = (),
) -> WriteReport:
    """Write a fresh ESE database holding the system catalog plus ``tables``.

    ``remnants`` are byte strings to leave behind as if deleted: they are written
    into extra free pages at the end of the file (flagged empty, owned by the
    database root and listed in its available-extent tree, i.e. not reachable from
    any B-tree) so deleted-data carving can be tested.  Their file offsets are
    returned in the report.
    """
    if page_size != 16384:
        raise NotImplementedError("only 16 KiB pages (the qmgr.db page size) are supported")
    dbtime = 0x100

    # --- plan user tables and allocate their pages --------------------------------
    layouts: list[_UserLayout] = []
    next_pgno = FIRST_USER_PGNO
    next_objid = FIRST_USER_OBJID
    lv_objids = []
    has_lv = [any(c.is_tagged and c.is_long for c in t.columns) for t in tables]
    table_objids = [next_objid + i for i in range(len(tables))]
    next_objid += len(tables)
    for flag in has_lv:
        if flag:
            lv_objids.append(next_objid)
            next_objid += 1
        else:
            lv_objids.append(None)

    for table, objid, lv_objid in zip(tables, table_objids, lv_objids):
        tree, lv_tree = _prepare_user_table(table, page_size, lv_chunk_size)
        fdp = next_pgno
        tree_pages = list(range(fdp + 3, fdp + 3 + tree.page_count - 1))
        next_pgno = fdp + 3 + tree.page_count - 1
        layout = _UserLayout(table, objid, lv_objid, fdp, tree, tree_pages)
        if lv_tree is not None:
            layout.lv_fdp = next_pgno
            layout.lv_tree = lv_tree
            layout.lv_pages = list(range(next_pgno + 3, next_pgno + 3 + lv_tree.page_count - 1))
            next_pgno = next_pgno + 3 + lv_tree.page_count - 1
        layout.extent_end = next_pgno - 1
        layouts.append(layout)

    remnant_records = [Remnant(bytes(data)) for data in remnants]
    free_first = next_pgno
    free_pages_needed = _pages_for_remnants(remnant_records, page_size)
    last_pgno = next_pgno - 1 + free_pages_needed

    # --- catalog -------------------------------------------------------------------
    catalog = _build_catalog(layouts)
    objid_last = next_objid - 1
    fields = header or HeaderFields(page_size=page_size)
    fields = HeaderFields(**{**fields.__dict__, "objid_last": objid_last, "dbtime": dbtime + 1})

    report = WriteReport(page_count=last_pgno)
    with open(path, "wb") as handle:
        handle.truncate((last_pgno + 2) * page_size)
        header_page = build_database_header(fields)
        handle.seek(0)
        handle.write(header_page)
        handle.write(header_page)
        pages = _PageFile(handle, page_size)

        # Database root: owns every page; free remnant pages are "available".
        free_extents = [(free_first, free_pages_needed)] if free_pages_needed else []
        _write_single_page_tree(
            pages, PGNO_DB_ROOT, OBJID_DB, 0, encode_space_header(last_pgno, 0, 2), [], dbtime
        )
        _write_space_trees(pages, OBJID_DB, 2, [(1, last_pgno)], free_extents, dbtime)

        _write_system_objects(pages, catalog, dbtime)
        for layout in layouts:
            _write_user_table(pages, layout, dbtime)
            report.table_roots[layout.table.name] = layout.fdp
            if layout.lv_fdp is not None:
                report.lv_roots[layout.table.name] = layout.lv_fdp

        _plant_remnants(pages, remnant_records, free_first, free_pages_needed, dbtime)
    report.remnants = remnant_records
    return report


def _build_catalog(layouts: Sequence[_UserLayout]) -> list[_CatalogEntry]:
    entries: list[_CatalogEntry] = []
    system_table_flags = 0xC0000000  # JET_bitObjectSystem | JET_bitObjectTableFixedDDL
    for objid, name, pgno, pages in (
        (OBJID_CATALOG, "MSysObjects", PGNO_CATALOG, CATALOG_EXTENT),
        (OBJID_SHADOW, "MSysObjectsShadow", PGNO_SHADOW, SHADOW_EXTENT),
    ):
        entries.append(_catalog_record(objid, SYSOBJ_TABLE, objid, pgno, 80, system_table_flags, pages, name, root_flag=True))
        entries += _column_records(objid, CATALOG_COLUMNS)
        entries.append(_index_record(objid, objid, pgno, IndexSpec("Id", (1, 2, 3))))
    entries.append(_index_record(OBJID_CATALOG, OBJID_NAME_INDEX, PGNO_CATALOG_NAME_INDEX, IndexSpec("Name", (1, 2, 128), 0x00010011)))
    entries.append(_index_record(OBJID_CATALOG, OBJID_ROOT_INDEX, PGNO_CATALOG_ROOT_INDEX, IndexSpec("RootObjects", (8, 128), 0x00010009)))

    entries.append(_catalog_record(OBJID_OBJIDS, SYSOBJ_TABLE, OBJID_OBJIDS, PGNO_OBJIDS, 100, 0xC8000000, 0, "MSysObjids", root_flag=True))
    entries += _column_records(OBJID_OBJIDS, OBJIDS_COLUMNS)
    entries.append(_index_record(OBJID_OBJIDS, OBJID_OBJIDS, PGNO_OBJIDS, IndexSpec("primary", (256,), 0x0001002F, 100)))

    entries.append(_catalog_record(OBJID_LOCALES, SYSOBJ_TABLE, OBJID_LOCALES, PGNO_LOCALES, 92, 0x88000000, 0, "MSysLocales", root_flag=True))
    entries += _column_records(OBJID_LOCALES, LOCALES_COLUMNS)
    entries.append(_index_record(OBJID_LOCALES, OBJID_LOCALES, PGNO_LOCALES, IndexSpec("KeyPrimary", (128,), 0x0001402F, 92)))

    for layout in layouts:
        table = layout.table
        entries.append(
            _catalog_record(layout.objid, SYSOBJ_TABLE, layout.objid, layout.fdp, table.density, table.flags, table.pages, table.name, root_flag=True)
        )
        entries += _column_records(layout.objid, table.columns)
        entries.append(_index_record(layout.objid, layout.objid, layout.fdp, table.primary_index))
        if layout.lv_objid is not None:
            entries.append(_catalog_record(layout.objid, SYSOBJ_LONG_VALUE, layout.lv_objid, layout.lv_fdp or 0, 100, 0, 1, "LV"))
    entries.sort(key=lambda entry: entry.key)
    return entries


def _write_system_objects(pages: _PageFile, catalog: list[_CatalogEntry], dbtime: int) -> None:
    catalog_entries = [(entry.key, entry.record) for entry in catalog]
    # MSysObjects and its shadow copy: one page each, like in Windows' qmgr.db.
    for objid, pgno, extent in ((OBJID_CATALOG, PGNO_CATALOG, CATALOG_EXTENT), (OBJID_SHADOW, PGNO_SHADOW, SHADOW_EXTENT)):
        header = encode_space_header(extent, PGNO_DB_ROOT, pgno + 1)
        _write_single_page_tree(pages, pgno, objid, 0, header, catalog_entries, dbtime)
        _write_space_trees(pages, objid, pgno + 1, [(pgno, extent)], [(pgno + 9, extent - 9)] if objid == OBJID_CATALOG else [(pgno + 3, extent - 3)], dbtime)

    name_index = sorted(
        (key_long(e.objid_table) + key_short(e.record_type) + key_ascii_text(e.name), e.key) for e in catalog
    )
    root_index = sorted((key_bit(True) + key_ascii_text(e.name), e.key) for e in catalog if e.is_root)
    for objid, pgno, entries in (
        (OBJID_NAME_INDEX, PGNO_CATALOG_NAME_INDEX, name_index),
        (OBJID_ROOT_INDEX, PGNO_CATALOG_ROOT_INDEX, root_index),
    ):
        header = encode_space_header(3, PGNO_CATALOG, pgno + 1)
        _write_single_page_tree(pages, pgno, objid, PAGE_INDEX, header, entries, dbtime)
        _write_space_trees(pages, objid, pgno + 1, [(pgno, 3)], [], dbtime)

    objids = []
    for entry in catalog:
        if entry.record_type in (SYSOBJ_TABLE, SYSOBJ_INDEX, SYSOBJ_LONG_VALUE):
            object_id = struct.unpack(">I", entry.key[-4:])[0] ^ 0x80000000
            if entry.record_type == SYSOBJ_INDEX and object_id == entry.objid_table:
                continue  # primary indexes share their table's objid
            objids.append((object_id, entry.objid_table, entry.record_type))
    objid_entries = []
    for object_id, objid_table, record_type in sorted(objids):
        record = _record_from_columns(
            OBJIDS_COLUMNS, {256: _u32(object_id), 257: _u32(objid_table), 258: struct.pack("<H", record_type)}
        )
        objid_entries.append((key_long(object_id), record))
    _write_single_page_tree(pages, PGNO_OBJIDS, OBJID_OBJIDS, 0, encode_space_header(1, PGNO_DB_ROOT, None), objid_entries, dbtime)

    locale_entries = []
    for record_type, value, name in LOCALES_ROWS:
        key_value = (name + "\x00").encode("utf-16-le")
        record = _record_from_columns(LOCALES_COLUMNS, {1: bytes([record_type]), 2: _u32(value), 128: key_value})
        locale_entries.append((key_binary(key_value), record))
    locale_entries.sort()
    _write_single_page_tree(pages, PGNO_LOCALES, OBJID_LOCALES, 0, encode_space_header(1, PGNO_DB_ROOT, None), locale_entries, dbtime)


def _write_user_table(pages: _PageFile, layout: _UserLayout, dbtime: int) -> None:
    fdp = layout.fdp
    extent = layout.extent_end - fdp + 1
    emit_tree(
        layout.tree,
        fdp,
        layout.tree_pages,
        page_size=pages.page_size,
        objid=layout.objid,
        tree_flags=0,
        root_header=encode_space_header(extent, PGNO_DB_ROOT, fdp + 1),
        sink=pages.write,
        dbtime=dbtime,
    )
    _write_space_trees(pages, layout.objid, fdp + 1, [(fdp, extent)], [], dbtime)
    if layout.lv_tree is None or layout.lv_fdp is None or layout.lv_objid is None:
        return
    lv_fdp = layout.lv_fdp
    lv_extent = layout.extent_end - lv_fdp + 1
    emit_tree(
        layout.lv_tree,
        lv_fdp,
        layout.lv_pages,
        page_size=pages.page_size,
        objid=layout.lv_objid,
        tree_flags=PAGE_LONG_VALUE,
        root_header=encode_space_header(lv_extent, fdp, lv_fdp + 1),
        sink=pages.write,
        dbtime=dbtime,
    )
    _write_space_trees(pages, layout.lv_objid, lv_fdp + 1, [(lv_fdp, lv_extent)], [], dbtime)


def _pages_for_remnants(remnants: Sequence[Remnant], page_size: int) -> int:
    usable = page_size - 80
    return sum((len(r.data) + usable - 1) // usable for r in remnants)


def _plant_remnants(
    pages: _PageFile, remnants: Sequence[Remnant], first_pgno: int, count: int, dbtime: int
) -> None:
    """Write remnant bytes into free pages that look like freed (empty) LV leaf pages."""
    pgno = first_pgno
    usable = pages.page_size - 80
    for remnant in remnants:
        pieces = [remnant.data[i : i + usable] for i in range(0, len(remnant.data), usable)] or [b""]
        remnant.pgno = pgno
        remnant.file_offset = pages.offset_of(pgno) + 80
        for piece in pieces:
            page = _free_page_with(pages.page_size, pgno, piece, dbtime)
            pages.write(pgno, page)
            pgno += 1
    assert pgno == first_pgno + count


def _free_page_with(page_size: int, pgno: int, payload: bytes, dbtime: int) -> bytearray:
    """A free page (no tags in use) whose data area still holds old bytes."""
    page = bytearray(page_size)
    flags = PAGE_BASE_FLAGS | PAGE_LEAF | PAGE_EMPTY  # a freed page
    struct.pack_into("<qIIIHHHHI", page, 8, dbtime, 0, 0, 0, page_size - 80, 0, 0, 0, flags)
    struct.pack_into("<I", page, 64, pgno)
    page[80 : 80 + len(payload)] = payload
    seal_large_page(page, pgno)
    return page


# ----------------------------------------------------------------------------------
# BITS qmgr.db
# ----------------------------------------------------------------------------------

ID_COLUMN = ColumnSpec(1, "Id", COLTYP_GUID, 16)
BLOB_COLUMN = ColumnSpec(256, "Blob", COLTYP_LONG_BINARY, 0)


def qmgr_table(name: str, records: Iterable[tuple[bytes, bytes]]) -> TableData:
    """The BITS ``Jobs``/``Files`` table shape: Id GUID (fixed, id 1) + Blob (tagged LV, id 256)."""
    rows = []
    for guid, blob in records:
        if len(guid) != 16:
            raise ValueError("Id must be 16 bytes (GUID in bytes_le order)")
        row = {1: bytes(guid)}
        if blob is not None:
            row[256] = blob
        rows.append(row)
    return TableData(name, [ID_COLUMN, BLOB_COLUMN], IndexSpec(f"{name}ById", (1,)), rows)


def write_qmgr_database(
    path: str | os.PathLike,
    jobs: list[tuple[bytes, bytes]],
    files: list[tuple[bytes, bytes]],
    *,
    page_size: int = 16384,
    lv_chunk_size: int = DEFAULT_LV_CHUNK_SIZE,
    remnants: Sequence[bytes] = (),
) -> WriteReport:
    """Write a fresh BITS ``qmgr.db``.

    jobs/files: (16-byte Id GUID in bytes_le order, blob bytes), any order.
    ``remnants`` are stale blob copies to leave in free pages (see :class:`Remnant`).
    """
    return write_ese_database(
        path,
        [qmgr_table("Jobs", jobs), qmgr_table("Files", files)],
        page_size=page_size,
        lv_chunk_size=lv_chunk_size,
        remnants=remnants,
    )


__all__ = [
    "ColumnSpec",
    "IndexSpec",
    "TableData",
    "Remnant",
    "WriteReport",
    "write_ese_database",
    "write_qmgr_database",
    "qmgr_table",
    "normalized_key",
    "DEFAULT_LV_CHUNK_SIZE",
]

