"""Low-level ESE on-disk encodings: normalized keys, records, nodes, pages, header.

Everything here follows what Windows' ESE writes into a 16 KiB-page database
(format 0x620, revision >= 0x11), as observed in real ``qmgr.db`` files and as
described by libyal's EDB format notes and Microsoft's open-sourced ESE headers.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass


# --- column types (JET_coltyp) -------------------------------------------------
#: MSysObjects record types.
SYSOBJ_TABLE = 1
SYSOBJ_COLUMN = 2
SYSOBJ_INDEX = 3
SYSOBJ_LONG_VALUE = 4

#: A Jobs/Files row (FORMAT.md §4.3): last fixed column 1, no variable column, tagged data at 0x15
#: (`01 7F 15 00`), the 16-byte Id, then the null bitmap and the one tagged column (256 at offset 4)
#: whose flag byte says inline Blob (`01`) or separated long value (`05`).
ROW_HEAD = b"\x01\x7f\x15\x00"
ROW_INLINE_BLOB = b"\xfe\x00\x01\x04\x00\x01"
ROW_SEPARATED_LV = b"\xfe\x00\x01\x04\x00\x05"
ROW_PREFIX_SIZE = len(ROW_HEAD) + 16 + len(ROW_INLINE_BLOB)


def inline_row(record_id: str, blob: bytes) -> bytes:
    """A Jobs/Files row with its Blob stored inline, as carving finds it before a record."""
    return ROW_HEAD + uuid.UUID(record_id).bytes_le + ROW_INLINE_BLOB + blob


#: The catalog's fixed place (identical to Windows' qmgr.db).
PGNO_CATALOG = 4
OBJID_CATALOG = 2

COLTYP_BIT = 1
COLTYP_UNSIGNED_BYTE = 2
COLTYP_SHORT = 3
COLTYP_LONG = 4
COLTYP_BINARY = 9
COLTYP_TEXT = 10
COLTYP_LONG_BINARY = 11
COLTYP_LONG_TEXT = 12
COLTYP_GUID = 16
COLTYP_UNSIGNED_SHORT = 17

FIXED_COLUMN_SIZES = {
    COLTYP_BIT: 1,
    COLTYP_UNSIGNED_BYTE: 1,
    COLTYP_SHORT: 2,
    COLTYP_LONG: 4,
    COLTYP_GUID: 16,
    COLTYP_UNSIGNED_SHORT: 2,
}

# --- page flags (CPAGE fPage*) ---------------------------------------------------
PAGE_ROOT = 0x0001
PAGE_LEAF = 0x0002
PAGE_PARENT_OF_LEAF = 0x0004
PAGE_EMPTY = 0x0008
PAGE_SPACE_TREE = 0x0020
PAGE_INDEX = 0x0040
PAGE_LONG_VALUE = 0x0080
PAGE_NEW_RECORD_FORMAT = 0x0800
PAGE_NEW_CHECKSUM_FORMAT = 0x2000
PAGE_FLUSH_TYPE_1 = 0x8000
#: Flags every page written by current Windows carries (new record + checksum format).
PAGE_BASE_FLAGS = PAGE_NEW_RECORD_FORMAT | PAGE_NEW_CHECKSUM_FORMAT | PAGE_FLUSH_TYPE_1

# --- tagged-field header byte (TAGFLD_HEADER) ------------------------------------
TAGFLD_LONG_VALUE = 0x01
TAGFLD_SEPARATED = 0x04

# --- space header (SPACE_HEADER) ---------------------------------------------------
SPACE_MULTIPLE_EXTENT = 0x01

LARGE_PAGE_HEADER_SIZE = 80  # PGHDR (40) + PGHDR2 (40)
TAG_SIZE = 4
#: PGHDR: checksum, dbtime, prev, next, objidFDP, cbFree, cbUncommittedFree, ibMicFree, itagState, fFlags.
PAGE_HEADER = struct.Struct("<QqIIIHHHHI")
PAGE_PREV_OFFSET, PAGE_NEXT_OFFSET, PAGE_OBJID_OFFSET, PAGE_FLAGS_OFFSET = 16, 20, 24, 36
PAGE_PGNO_OFFSET = 64  # PGHDR2.pgno on large pages
HEADER_PAGE_SIZE_OFFSET = 236  # DBFILEHDR.cbPageSize
TAG_OFFSET_MASK = 0x7FFF  # the 15 bits of a large page's tag that hold a length or an offset
NODE_KEY_LENGTH_SIZE = 2


# --- normalized keys --------------------------------------------------------------
# Each key segment of a non-null column starts with 0x7F; integers are big-endian
# with the sign bit flipped so that byte order equals numeric order.

def key_long(value: int) -> bytes:
    return b"\x7f" + struct.pack(">I", (value ^ 0x80000000) & 0xFFFFFFFF)


def key_short(value: int) -> bytes:
    return b"\x7f" + struct.pack(">H", (value ^ 0x8000) & 0xFFFF)


def key_bit(value: bool) -> bytes:
    return b"\x7f\xff" if value else b"\x7f\x00"


def key_ascii_text(text: str) -> bytes:
    """Non-Unicode (code page 1252) text: upper-cased, zero terminated."""
    return b"\x7f" + text.upper().encode("cp1252") + b"\x00"


def key_guid(guid_le: bytes) -> bytes:
    """GUIDs sort by their last bytes first (bytes 10-15, 8-9, 6-7, 4-5, 0-3)."""
    if len(guid_le) != 16:
        raise ValueError("GUID key needs exactly 16 bytes")
    g = guid_le
    return b"\x7f" + g[10:16] + g[8:10] + g[6:8] + g[4:6] + g[0:4]


def key_binary(value: bytes) -> bytes:
    """Binary segment: 8-byte groups, each followed by 9 (more follows) or its used length."""
    out = bytearray(b"\x7f")
    if not value:
        return bytes(out + b"\x00" * 8 + b"\x00")
    groups = [value[i : i + 8] for i in range(0, len(value), 8)]
    for index, group in enumerate(groups):
        out += group.ljust(8, b"\x00")
        out.append(9 if index < len(groups) - 1 else len(group))
    return bytes(out)


# --- records -------------------------------------------------------------------------

@dataclass(frozen=True)
class TaggedValue:
    """A tagged column value with its TAGFLD header flags (e.g. separated LV reference)."""

    data: bytes
    header_flags: int = 0


def encode_record(
    fixed: dict[int, bytes | None],
    fixed_sizes: dict[int, int],
    variable: dict[int, bytes | None],
    tagged: dict[int, TaggedValue],
) -> bytes:
    """Encode a record in the "new record format" used on large pages.

    ``fixed``/``variable`` hold the columns that appear in the record (None =
    explicitly null); the last present column id bounds each section, as ESE only
    stores columns up to the highest one set.  Unused null-bitmap bits are 1.
    """
    last_fixed = max(fixed) if fixed else 0
    last_variable = max(variable) if variable else 127

    fixed_data = bytearray()
    null_bits = 0
    for column_id in range(1, last_fixed + 1):
        size = fixed_sizes[column_id]
        value = fixed.get(column_id)
        if value is None:
            null_bits |= 1 << (column_id - 1)
            fixed_data += b"\x00" * size
        else:
            if len(value) != size:
                raise ValueError(f"fixed column {column_id} needs {size} bytes, got {len(value)}")
            fixed_data += value
    bitmap_len = (last_fixed + 7) // 8
    for bit in range(last_fixed, bitmap_len * 8):
        null_bits |= 1 << bit
    bitmap = null_bits.to_bytes(bitmap_len, "little") if bitmap_len else b""

    end_of_fixed = 4 + len(fixed_data) + len(bitmap)
    offsets = bytearray()
    variable_data = bytearray()
    for column_id in range(128, last_variable + 1):
        value = variable.get(column_id)
        if value is None:
            offsets += struct.pack("<H", len(variable_data) | 0x8000)
        else:
            variable_data += value
            offsets += struct.pack("<H", len(variable_data))

    tagged_part = b""
    if tagged:
        ids = sorted(tagged)
        directory = bytearray()
        payload = bytearray()
        base = 4 * len(ids)
        for column_id in ids:
            item = tagged[column_id]
            directory += struct.pack("<HH", column_id, base + len(payload))
            payload.append(item.header_flags)
            payload += item.data
        tagged_part = bytes(directory + payload)

    header = struct.pack("<BBH", last_fixed, last_variable, end_of_fixed)
    return header + bytes(fixed_data) + bitmap + bytes(offsets) + bytes(variable_data) + tagged_part


# --- nodes and pages -----------------------------------------------------------------

def node_size(key_length: int, data_length: int) -> int:
    """Bytes a node occupies on a page, including its tag entry."""
    return NODE_KEY_LENGTH_SIZE + key_length + data_length + TAG_SIZE


def encode_node(key: bytes, data: bytes) -> bytes:
    return struct.pack("<H", len(key)) + key + data


def page_capacity(page_size: int, external_header_length: int) -> int:
    """Bytes available for nodes (with their tags) once header and tag 0 are placed."""
    return page_size - LARGE_PAGE_HEADER_SIZE - TAG_SIZE - external_header_length


def encode_space_header(primary_pages: int, parent_pgno: int, pgno_owned_extents: int | None) -> bytes:
    """SPACE_HEADER: multi-extent trees name their OE tree root (AE is the next page)."""
    if pgno_owned_extents is None:
        return struct.pack("<IIII", primary_pages, parent_pgno, 0, 0)
    return struct.pack("<IIII", primary_pages, parent_pgno, SPACE_MULTIPLE_EXTENT, pgno_owned_extents)


def build_page(
    page_size: int,
    pgno: int,
    objid: int,
    flags: int,
    external_header: bytes,
    nodes: list[bytes],
    *,
    prev_pgno: int = 0,
    next_pgno: int = 0,
    dbtime: int = 1,
    slack_filler: bytes | None = None,
) -> tuple[bytearray, int]:
    """Lay out one large page and seal its checksums.

    Returns the page and the offset (within the page) where free space starts, so
    callers can plant bytes in the unused gap before sealing (``slack_filler``).
    """
    page = bytearray(page_size)
    data_start = LARGE_PAGE_HEADER_SIZE
    tag_count = 1 + len(nodes)
    cursor = 0
    entries = [external_header, *nodes]
    for index, blob in enumerate(entries):
        start = data_start + cursor
        page[start : start + len(blob)] = blob
        struct.pack_into("<HH", page, page_size - TAG_SIZE * (index + 1), len(blob), cursor if blob else 0)
        cursor += len(blob)
    free_bytes = page_size - data_start - cursor - TAG_SIZE * tag_count
    if free_bytes < 0:
        raise ValueError(f"page {pgno} overflows by {-free_bytes} bytes")
    PAGE_HEADER.pack_into(
        page,
        0,
        0,  # the checksum, sealed below
        dbtime,
        prev_pgno,
        next_pgno,
        objid,
        free_bytes,
        0,
        cursor,
        tag_count,
        flags,
    )
    struct.pack_into("<I", page, PAGE_PGNO_OFFSET, pgno)
    free_start = data_start + cursor
    if slack_filler:
        if len(slack_filler) > free_bytes:
            raise ValueError("slack filler does not fit in the page's free space")
        page[free_start : free_start + len(slack_filler)] = slack_filler
    from .ese_checksum import seal_large_page   # writer only: the parser never imports it

    seal_large_page(page, pgno)
    return page, free_start


# --- database header -------------------------------------------------------------------

DB_MAGIC = 0x89ABCDEF
DB_STATE_CLEAN_SHUTDOWN = 3
FORMAT_VERSION = 0x620


@dataclass(frozen=True)
class HeaderFields:
    """Values for DBFILEHDR; defaults mirror a Windows 11 ``qmgr.db``."""

    page_size: int = 16384
    dbtime: int = 1
    objid_last: int = 11
    random_signature: int = 0x5B175DB0
    log_signature: int = 0x7B175DB1
    create_time: bytes = bytes([0x3B, 0x23, 0x02, 0x19, 0x0B, 0x7A, 0x85, 0x02])  # LOGTIME
    consistent_time: bytes = bytes([0x34, 0x29, 0x04, 0x0C, 0x03, 0x7B, 0x41, 0x0C])
    format_revision: int = 0xC8  # ulDaeUpdateMajor of Windows 11's ESE
    format_update_minor: int = 0x1B8
    create_revision: int = 0x14
    engine_version: int = 0x24B8  # efvMaxBinAttachDiagnostic
    os_major: int = 10
    os_minor: int = 0
    os_build: int = 22000


def build_database_header(fields: HeaderFields) -> bytes:
    """DBFILEHDR in a clean-shutdown state; the shadow header is an identical copy."""
    page = bytearray(fields.page_size)
    pack = struct.pack_into
    pack("<III", page, 4, DB_MAGIC, FORMAT_VERSION, 0)
    pack("<q", page, 16, fields.dbtime)
    pack("<I", page, 24, fields.random_signature)
    page[28:36] = fields.create_time
    pack("<I", page, 52, DB_STATE_CLEAN_SHUTDOWN)
    pack("<HHi", page, 56, 0x36, 0x13A, 1)  # lgposConsistent
    page[64:72] = fields.consistent_time
    page[72:80] = fields.consistent_time  # logtimeAttach
    pack("<HHi", page, 80, 0x268, 0x13C, 1)  # lgposAttach
    page[88:96] = fields.consistent_time  # logtimeDetach (clean detach)
    pack("<HHi", page, 96, 0x36, 0x13A, 1)  # lgposDetach
    pack("<I", page, 104, 1)  # dbid
    pack("<I", page, 108, fields.log_signature)
    page[112:120] = fields.create_time
    pack("<II", page, 212, fields.objid_last, fields.os_major)
    pack("<IIIII", page, 220, fields.os_minor, fields.os_build, 0, fields.format_revision, fields.page_size)
    pack("<II", page, 340, FORMAT_VERSION, fields.create_revision)
    pack("<Q", page, 508, 0xFFFFFFFFFFFFFFFF)  # qwSortVersion (new-style sort versioning)
    pack("<I", page, 644, fields.format_update_minor)
    pack("<I", page, 648, fields.engine_version)
    pack("<HHi", page, 656, 0x36, 0x13A, 1)  # lgposLastResize = lgposConsistent on clean detach
    pack("<I", page, 667, 1)  # filetype: JET_filetypeDatabase
    from .ese_checksum import checksum_old_format

    pack("<I", page, 0, checksum_old_format(bytes(page)))
    return bytes(page)
