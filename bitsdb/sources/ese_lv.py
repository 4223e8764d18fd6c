"""One-pass reader of an ESE table's long-value (LV) tree: LID -> blob bytes.

libesedb looks every separated long value up by key, and each lookup gets slower
the more long values a table has, so reading all blobs of a large ``qmgr.db`` that
way is quadratic.  Here the LV tree is walked once, in key order, from its root
page (named in the catalog), and every blob is assembled from its LV root node
(refcount, size) and the chunks that follow it (key = LID + big-endian offset).
Free pages are never scanned: they can hold stale chunks.

The reader is strict on purpose.  Whatever it does not fully understand (a damaged
page, an unexpected flag, chunks that do not add up to the recorded size, a chunk
libesedb would treat as compressed) is left out of the mapping or fails the whole
table with :class:`LongValueError`; the caller then reads those values with
libesedb, so results never differ from libesedb's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from ..formats.ese import (
    ROW_HEAD,
    ROW_SEPARATED_LV,
    OBJID_CATALOG,
    PGNO_CATALOG,
    SYSOBJ_COLUMN,
    SYSOBJ_LONG_VALUE,
    SYSOBJ_TABLE,
    DB_MAGIC,
    HEADER_PAGE_SIZE_OFFSET,
    LARGE_PAGE_HEADER_SIZE,
    PAGE_HEADER,
    PAGE_PGNO_OFFSET,
    TAG_OFFSET_MASK,
    PAGE_EMPTY,
    PAGE_INDEX,
    PAGE_LEAF,
    PAGE_LONG_VALUE,
    PAGE_ROOT,
    PAGE_SPACE_TREE,
    TAG_SIZE,
)

#: Only the large-page layout (flags in the node's key-length word, 15-bit tags) is read here.
SUPPORTED_PAGE_SIZE = 16384
_KEY_LENGTH_MASK = 0x1FFF
# Node flags (top 3 bits of a node's first word on large pages).
_NODE_DELETED = 0x2
_NODE_PREFIX_COMPRESSED = 0x4
#: libesedb takes an LV chunk starting with this byte for XPRESS-compressed data and fails
#: (or decompresses); such values are left to libesedb so both paths agree.
_LIBESEDB_COMPRESSED_CHUNK_START = 0x18
_MAX_TREE_DEPTH = 16
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_LV_ROOT = struct.Struct("<II")  # LVROOT: refcount, size


#: The columns of Jobs and Files (FORMAT.md §4.1): id -> (JET_coltyp, name).
_BITS_COLUMNS = {1: (16, "Id"), 256: (11, "Blob")}


class LongValueError(Exception):
    """The LV tree (or the catalog leading to it) is not what this reader can vouch for."""


def lid_from_reference(raw: bytes | None) -> int | None:
    """LID held by a separated long-value column (4- or 8-byte little-endian), else None."""
    if raw is None or len(raw) not in (4, 8):
        return None
    return int.from_bytes(raw, "little")


class EseLongValues:
    """Long values of the tables of one ESE database, read straight from its pages.

    The file is opened for each read (our own handle, never libesedb's, whose file
    position must not move under it).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with self.path.open("rb") as handle:
            self._handle = handle
            header = handle.read(1024)
            if len(header) < 1024 or _U32.unpack_from(header, 4)[0] != DB_MAGIC:
                raise LongValueError("no ESE database header")
            self.page_size = _U32.unpack_from(header, HEADER_PAGE_SIZE_OFFSET)[0]
            if self.page_size != SUPPORTED_PAGE_SIZE:
                raise LongValueError(f"page size {self.page_size} not handled by the one-pass reader")
            self._lv_trees, self._tables, self._columns = self._read_catalog()

    # --- public -------------------------------------------------------------------------

    def blobs(self, table_name: str) -> dict[int, bytes]:
        """LID -> blob for every complete long value of ``table_name`` (empty if it has none)."""
        tree = self._lv_trees.get(table_name)
        if tree is None:
            return {}
        return dict(self.iter_blobs(table_name))

    def iter_blobs(self, table_name: str) -> Iterator[tuple[int, bytes]]:
        """(LID, blob) of every complete long value of ``table_name``, in LID order, as they are
        assembled (so a caller can use each one and let it go). LongValueError can come after some
        values were given: the caller must then drop them all (the table is not sound)."""
        tree = self._lv_trees.get(table_name)
        if tree is None:
            return
        lv_objid, root_pgno = tree
        with self.path.open("rb") as handle:
            self._handle = handle
            yield from self._assemble(root_pgno, lv_objid)

    def blob_rows(self, table_name: str) -> list[tuple[bytes, int]]:
        """(Id, LID) of every row of a `Jobs`/`Files`-shaped table, in key order (libesedb's
        record numbering): the table's data tree walked once from the root the catalog names.

        Strict like the rest: LongValueError unless the table has exactly the columns BITS
        gives it (Id: column 1, GUID; Blob: column 256, long binary) and every row is the
        record BITS writes (`01 7F 15 00 <Id> FE 00 01 04 00 05 <LID>`, FORMAT.md §4.3, with
        a 4- or 8-byte LID) in a live node. Callers then read the table with libesedb.
        """
        table = self._tables.get(table_name)
        if table is None:
            raise LongValueError(f"no table {table_name}")
        objid, root_pgno = table
        if self._columns.get(objid) != _BITS_COLUMNS:
            raise LongValueError(f"table {table_name} has columns {self._columns.get(objid)}")
        rows = []
        with self.path.open("rb") as handle:
            self._handle = handle
            for _, record, flags in self._leaf_nodes(root_pgno, objid, long_value_tree=False):
                if flags & _NODE_DELETED:
                    raise LongValueError(f"deleted node in table {table_name}")
                if (len(record) not in (30, 34) or record[:4] != ROW_HEAD or record[20:26] != ROW_SEPARATED_LV):
                    raise LongValueError(f"row of table {table_name} not in the BITS layout")
                rows.append((record[4:20], int.from_bytes(record[26:], "little")))
        return rows

    def table(self, table_name: str) -> tuple[int, int] | None:
        """(object id, root page) of the table's data tree, as the catalog names it."""
        return self._tables.get(table_name)

    def lv_tree(self, table_name: str) -> tuple[int, int] | None:
        """(object id, root page) of the table's LV tree, as the catalog names it."""
        return self._lv_trees.get(table_name)

    def table_rows(self, table_name: str) -> int:
        """Rows (live leaf nodes) of the table's data tree, walked from its root with every page
        checked and the leaf pages' sibling links followed; LongValueError says what is damaged."""
        if table_name not in self._tables:
            raise LongValueError(f"table {table_name} is not in the catalog")
        objid, root = self._tables[table_name]
        leaves: list[int] = []
        with self.path.open("rb") as handle:
            self._handle = handle
            rows = sum(1 for _, _, flags in self._leaf_nodes(root, objid, False, leaves)
                       if not flags & _NODE_DELETED)
            expected_prev = 0
            for index, pgno in enumerate(leaves):
                handle.seek((pgno + 1) * self.page_size)
                _, _, prev_pgno, next_pgno, *_ = PAGE_HEADER.unpack(handle.read(PAGE_HEADER.size))
                expected_next = leaves[index + 1] if index + 1 < len(leaves) else 0
                if prev_pgno != expected_prev or next_pgno != expected_next:
                    raise LongValueError(f"leaf page {pgno} links to pages {prev_pgno} and {next_pgno}, "
                                         f"not {expected_prev} and {expected_next}")
                expected_prev = pgno
        return rows

    def read_page(self, pgno: int, objid: int, *, is_root: bool, long_value_tree: bool = True):
        """(page flags, [(key, data, node flags)]) of one checked tree page (for inspection and tests)."""
        with self.path.open("rb") as handle:
            self._handle = handle
            return self._page(pgno, objid, long_value_tree, is_root)

    # --- long values ----------------------------------------------------------------------

    def _assemble(self, root_pgno: int, lv_objid: int) -> Iterator[tuple[int, bytes]]:
        current_lid: int | None = None
        parts: list[bytes] = []
        expected_size = assembled = 0
        sound = False
        previous_key = b""
        for key, data, flags in self._leaf_nodes(root_pgno, lv_objid, long_value_tree=True):
            if key <= previous_key:
                raise LongValueError(f"LV keys out of order in object {lv_objid}")
            previous_key = key
            lid, offset = _split_lv_key(key)
            if offset is None:  # an LV root: refcount and total size
                if sound and assembled == expected_size:
                    yield current_lid, b"".join(parts)
                current_lid, parts, assembled = lid, [], 0
                sound = len(data) >= _LV_ROOT.size and not flags & _NODE_DELETED
                expected_size = _LV_ROOT.unpack_from(data)[1] if sound else 0
                sound = sound and expected_size > 0
                continue
            if lid != current_lid or not sound:  # a chunk without its root, or of a value already given up
                continue
            if (offset != assembled or flags & _NODE_DELETED or not data
                    or data[0] == _LIBESEDB_COMPRESSED_CHUNK_START):
                sound = False
                continue
            parts.append(data)
            assembled += len(data)
        if sound and assembled == expected_size:
            yield current_lid, b"".join(parts)

    # --- catalog ------------------------------------------------------------------------

    def _read_catalog(self) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], dict[int, dict]]:
        """From MSysObjects' table (1), column (2) and LV (4) rows: table name -> (LV objid, LV root
        page); table name -> (objid, data root page); table objid -> {column id: (type, name)}."""
        table_names: dict[int, str] = {}
        tables: dict[str, tuple[int, int]] = {}
        columns: dict[int, dict[int, tuple[int, str | None]]] = {}
        lv_trees: dict[int, tuple[int, int]] = {}
        for _, record, flags in self._leaf_nodes(PGNO_CATALOG, OBJID_CATALOG, long_value_tree=False):
            if flags & _NODE_DELETED:
                continue
            objid_table, record_type, object_id, pgno_fdp, name = _catalog_fields(record)
            if record_type == SYSOBJ_TABLE and name is not None:
                table_names[objid_table] = name
                tables[name] = (objid_table, pgno_fdp)
            elif record_type == SYSOBJ_COLUMN:
                columns.setdefault(objid_table, {})[object_id] = (pgno_fdp, name)   # ColtypOrPgnoFDP = type
            elif record_type == SYSOBJ_LONG_VALUE:
                lv_trees[objid_table] = (object_id, pgno_fdp)
        lv_by_name = {name: lv_trees[objid] for objid, name in table_names.items() if objid in lv_trees}
        return lv_by_name, tables, columns

    # --- pages and trees ----------------------------------------------------------------

    def _leaf_nodes(self, root_pgno: int, objid: int, long_value_tree: bool,
                    leaves: list[int] | None = None) -> Iterator[tuple[bytes, bytes, int]]:
        """(key, data, node flags) of every leaf node under ``root_pgno``, in key order (the leaf
        pages, in that order, appended to `leaves` when given)."""
        visited: set[int] = set()

        def walk(pgno: int, depth: int, is_root: bool) -> Iterator[tuple[bytes, bytes, int]]:
            if depth > _MAX_TREE_DEPTH or pgno in visited:
                raise LongValueError(f"page {pgno}: tree loops or is too deep")
            visited.add(pgno)
            flags, nodes = self._page(pgno, objid, long_value_tree, is_root)
            if flags & PAGE_LEAF:
                if leaves is not None:
                    leaves.append(pgno)
                yield from nodes
                return
            for _, data, _ in nodes:
                if len(data) < 4:
                    raise LongValueError(f"page {pgno}: branch node without a child page")
                yield from walk(_U32.unpack_from(data)[0], depth + 1, False)

        yield from walk(root_pgno, 0, True)

    def _page(self, pgno: int, objid: int, long_value_tree: bool, is_root: bool) -> tuple[int, list]:
        size = self.page_size
        self._handle.seek((pgno + 1) * size)
        page = self._handle.read(size)
        if len(page) != size:
            raise LongValueError(f"page {pgno} beyond the end of the file")
        _, _, prev_pgno, next_pgno, page_objid, _, _, mic_free, itag_state, flags = PAGE_HEADER.unpack_from(page)
        stored_pgno = _U32.unpack_from(page, PAGE_PGNO_OFFSET)[0]
        if stored_pgno != pgno or page_objid != objid:
            raise LongValueError(f"page {pgno}: header names page {stored_pgno} of object {page_objid}")
        if (bool(flags & PAGE_ROOT) != is_root or flags & (PAGE_EMPTY | PAGE_SPACE_TREE | PAGE_INDEX)
                or bool(flags & PAGE_LONG_VALUE) != long_value_tree):
            raise LongValueError(f"page {pgno}: unexpected page flags {flags:#x}")
        is_leaf = bool(flags & PAGE_LEAF)
        if not is_leaf and (prev_pgno or next_pgno):
            raise LongValueError(f"page {pgno}: branch page with sibling links")
        if itag_state >> 12:
            raise LongValueError(f"page {pgno}: reserved tags {itag_state >> 12}")
        tag_count = itag_state & 0x0FFF
        data_end = LARGE_PAGE_HEADER_SIZE + mic_free
        if tag_count < 1 or data_end > size - TAG_SIZE * tag_count:
            raise LongValueError(f"page {pgno}: {tag_count} tags do not fit")
        view = memoryview(page)
        tags = [_tag(page, size, index, data_end, pgno) for index in range(tag_count)]
        prefix = b"" if is_root else bytes(view[tags[0][0]:tags[0][1]])
        nodes = [_node(view, start, end, prefix, is_root, pgno) for start, end in tags[1:]]
        return flags, nodes


def _tag(page: bytes, size: int, index: int, data_end: int, pgno: int) -> tuple[int, int]:
    position = size - TAG_SIZE * (index + 1)
    length = _U16.unpack_from(page, position)[0] & TAG_OFFSET_MASK
    start = LARGE_PAGE_HEADER_SIZE + (_U16.unpack_from(page, position + 2)[0] & TAG_OFFSET_MASK)
    if start + length > data_end:
        raise LongValueError(f"page {pgno}: tag {index} points outside the page data")
    return start, start + length


def _node(view: memoryview, start: int, end: int, prefix: bytes, is_root: bool, pgno: int) -> tuple[bytes, bytes, int]:
    """A node's full key (prefix + suffix), data and flags; large pages keep the flags in its first word."""
    if end - start < 2:
        raise LongValueError(f"page {pgno}: node too short")
    word = _U16.unpack_from(view, start)[0]
    flags = word >> 13
    cursor = start + 2
    key_prefix = b""
    if flags & _NODE_PREFIX_COMPRESSED:
        prefix_length = word & _KEY_LENGTH_MASK
        if is_root or prefix_length > len(prefix) or cursor + 2 > end:
            raise LongValueError(f"page {pgno}: bad key prefix")
        key_prefix = prefix[:prefix_length]
        word = _U16.unpack_from(view, cursor)[0]
        cursor += 2
    suffix_length = word & _KEY_LENGTH_MASK
    if cursor + suffix_length > end:
        raise LongValueError(f"page {pgno}: key longer than its node")
    key = key_prefix + bytes(view[cursor:cursor + suffix_length])
    return key, bytes(view[cursor + suffix_length:end]), flags


def _split_lv_key(key: bytes) -> tuple[int, int | None]:
    """(LID, chunk offset or None for the LV root); 64-bit LIDs carry the top bit, 32-bit ones do not."""
    lid_size = 8 if key and key[0] & 0x80 else 4
    if len(key) == lid_size:
        return int.from_bytes(key, "big"), None
    if len(key) == lid_size + 4:
        return int.from_bytes(key[:lid_size], "big"), int.from_bytes(key[lid_size:], "big")
    raise LongValueError(f"LV key of {len(key)} bytes")


def _catalog_fields(record: bytes) -> tuple[int, int, int, int, str | None]:
    """ObjidTable, Type, Id, ColtypOrPgnoFDP and Name of an MSysObjects record."""
    if len(record) < 18 or record[0] < 4:
        raise LongValueError("catalog record too short")
    last_variable = record[1]
    end_of_fixed = _U16.unpack_from(record, 2)[0]
    objid_table, record_type, object_id, pgno_fdp = struct.unpack_from("<IHII", record, 4)
    name = None
    if last_variable >= 128:
        variable_start = end_of_fixed + 2 * (last_variable - 127)
        if variable_start > len(record):
            raise LongValueError("catalog record with a bad variable-column area")
        name_end = _U16.unpack_from(record, end_of_fixed)[0]
        if not name_end & 0x8000:
            name = record[variable_start:variable_start + name_end].decode("cp1252", "replace")
    return objid_table, record_type, object_id, pgno_fdp, name
