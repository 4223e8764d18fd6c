"""ESE page checksums.

Two schemes are needed to write a database that ESE-aware readers accept:

* the *old* XOR checksum, used for the database header and its shadow copy:
  ``0x89ABCDEF`` XOR every little-endian dword of the page except the first;
* the *new* ECC+XOR checksum (``ChecksumNewFormat`` in Microsoft's ESE sources),
  used by every data page that carries ``fPageNewChecksumFormat``.  A 16 KiB page
  is split into four 4 KiB blocks; the first block's checksum lives in the page
  header's first 8 bytes, the other three in ``PGHDR2.rgChecksum[0..2]`` (which sit
  inside the first block, so they are written before the first block is summed).

Each 64-bit new-format checksum is ``(ecc << 32) | (xor ^ pgno)``.  The ECC part
is a Hsiao-style code: every 16-byte row of the block contributes a row-specific
pattern when its 128 bits have odd parity, plus four bits from column parities
and a 32-bit pattern derived from the overall XOR.

The per-row loop is done with big-integer bit tricks instead of a Python loop
over dwords, so summing a 16 KiB page costs a few dozen big-int operations.
"""

from __future__ import annotations

import struct
from functools import lru_cache, reduce
from itertools import compress
from operator import xor

DB_HEADER_MAGIC = 0x89ABCDEF
_ROW_BYTES = 16
_ONLY_LOW_BIT = bytes(b & 1 for b in range(256))


def _parity32(value: int) -> int:
    return bin(value).count("1") & 1


@lru_cache(maxsize=4)
def _row_patterns(block_size: int) -> tuple[int, ...]:
    """ECC contribution of each 16-byte row (0xff800000, then +0xff800080 per row)."""
    patterns = []
    pattern = 0xFF800000
    for _ in range(block_size // _ROW_BYTES):
        patterns.append(pattern)
        pattern = (pattern + 0xFF800080) & 0xFFFFFFFF
    return tuple(patterns)


@lru_cache(maxsize=4)
def _row_parity_shifts(block_size: int) -> tuple[int, int]:
    """Mask selecting bit 0 of every 16-byte row, and the block bit length."""
    bits = block_size * 8
    return bits, (1 << bits) - 1


_XOR_BIT_PATTERNS = tuple((0xFFFF0000 + i * 0xFFFF0001) & 0xFFFFFFFF for i in range(32))


def _xor_fold_columns(block: bytes) -> tuple[int, int, int, int]:
    """XOR of all dwords at offsets 0, 4, 8, 12 (mod 16) of the block."""
    value = int.from_bytes(block, "little")
    width = len(block) * 8
    while width > 128:
        width //= 2
        value = (value >> width) ^ (value & ((1 << width) - 1))
    folded = value.to_bytes(16, "little")
    return struct.unpack("<4I", folded)


def _row_parities(block: bytes) -> bytes:
    """One byte (0 or 1) per 16-byte row: the parity of that row's 128 bits."""
    bits, _ = _row_parity_shifts(len(block))
    value = int.from_bytes(block, "little")
    # After this cascade bit j holds the XOR of bits j..j+127, so bit 128*i is
    # the parity of row i.
    for shift in (64, 32, 16, 8, 4, 2, 1):
        value ^= value >> shift
    value &= (1 << bits) - 1
    return value.to_bytes(len(block), "little")[::_ROW_BYTES].translate(_ONLY_LOW_BIT)


def checksum_new_format(block: bytes, pgno: int, is_header_block: bool) -> int:
    """64-bit ECC/XOR checksum of one block (``ChecksumNewFormat``)."""
    if is_header_block:
        block = b"\x00" * 8 + block[8:]
    p0, p1, p2, p3 = _xor_fold_columns(block)
    flags = _row_parities(block)
    ecc = reduce(xor, compress(_row_patterns(len(block)), flags), 0)

    if _parity32(p0 ^ p1):
        ecc |= 0x00400000
    if _parity32(p2 ^ p3):
        ecc |= 0x00000040
    r0 = p0 ^ p2
    r1 = p1 ^ p3
    if _parity32(r0):
        ecc |= 0x00200000
    if _parity32(r1):
        ecc |= 0x00000020
    overall_xor = r0 ^ r1
    xor_pattern = 0
    for bit in range(32):
        if overall_xor >> bit & 1:
            xor_pattern ^= _XOR_BIT_PATTERNS[bit]
    size_mask = ((len(block) << 19) - 1) & 0xFFFFFFFF
    ecc = (ecc & 0xFFE0FFE0 & size_mask) | (xor_pattern & 0x001F001F)
    return (ecc << 32) | ((overall_xor ^ pgno) & 0xFFFFFFFF)


def large_page_block_size(page_size: int) -> int:
    """16 KiB pages use 4 KiB checksum blocks, 32 KiB pages 8 KiB ones."""
    if page_size <= 8192:
        return page_size
    if page_size <= 16384:
        return 4096
    return 8192


def seal_large_page(page: bytearray, pgno: int) -> None:
    """Compute and store the four checksums of a large (>8 KiB) data page in place.

    PGHDR is 40 bytes; PGHDR2 follows with rgChecksum[3] at offset 40.
    """
    page_size = len(page)
    block_size = large_page_block_size(page_size)
    trailing = []
    offset = block_size
    while offset < page_size:
        size = min(block_size, page_size - offset)
        trailing.append(checksum_new_format(bytes(page[offset : offset + size]), pgno, False))
        offset += size
    trailing += [0] * (3 - len(trailing))
    struct.pack_into("<3Q", page, 40, *trailing)
    head = checksum_new_format(bytes(page[:block_size]), pgno, True)
    struct.pack_into("<Q", page, 0, head)


def page_checksums(page: bytes, pgno: int) -> tuple[int, int, int, int]:
    """Recompute the four checksums of a large page (for verification)."""
    block_size = large_page_block_size(len(page))
    sums = [checksum_new_format(page[:block_size], pgno, True)]
    for offset in range(block_size, len(page), block_size):
        sums.append(checksum_new_format(page[offset : offset + block_size], pgno, False))
    return tuple(sums)  # type: ignore[return-value]


def stored_page_checksums(page: bytes) -> tuple[int, int, int, int]:
    """The four checksums a large page claims for itself."""
    head = struct.unpack_from("<Q", page, 0)[0]
    rest = struct.unpack_from("<3Q", page, 40)
    return (head, *rest)


def checksum_old_format(page: bytes) -> int:
    """XOR checksum of the database header page (``ChecksumOldFormat``)."""
    value = int.from_bytes(page[4:], "little")
    width = (len(page) - 4) * 8
    while width > 32:
        half = width // 2
        if half % 32:
            half += 32 - half % 32
        value = (value >> half) ^ (value & ((1 << half) - 1))
        width = half
    return (value ^ DB_HEADER_MAGIC) & 0xFFFFFFFF
