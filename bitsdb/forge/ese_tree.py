"""Bulk-loading of ESE B+-trees.

Entries arrive sorted; they are packed into leaf pages, then branch levels are
built until one page (the root, which lives on the tree's FDP page) remains.
Page numbers are only needed when pages are serialized, so a tree is first
*planned* (how many pages, which entries go where) and then *emitted*.

Branch nodes follow ESE's convention: each node holds an exclusive upper bound
of its child's keys (the first key of the next subtree) and the child page
number; the right-most node of the right-most page at every level has an empty
key meaning "everything else".
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..formats.ese import (
    PAGE_BASE_FLAGS,
    PAGE_LEAF,
    PAGE_PARENT_OF_LEAF,
    PAGE_ROOT,
    build_page,
    encode_node,
    node_size,
    page_capacity,
)

Entry = tuple[bytes, bytes]  # (key, data); data may be a memoryview slice
PageSink = Callable[[int, bytearray], None]


@dataclass
class _Level:
    keys: list[bytes]
    payloads: list  # leaf: data bytes; branch: index of the child group one level down
    groups: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class PlannedTree:
    """Shape of a tree: its levels (0 = leaves) and the page groups on each."""

    levels: list[_Level]

    @property
    def page_count(self) -> int:
        return sum(len(level.groups) for level in self.levels)


def _pack(sizes: Sequence[int], limit: int) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    start = 0
    used = 0
    for index, size in enumerate(sizes):
        if size > limit:
            raise ValueError(f"node of {size} bytes cannot fit in a page ({limit} available)")
        if used + size > limit and index > start:
            groups.append((start, index))
            start, used = index, 0
        used += size
    if start < len(sizes) or not groups:
        groups.append((start, len(sizes)))
    return groups


def _split_in_two(sizes: Sequence[int], group: tuple[int, int]) -> list[tuple[int, int]]:
    start, end = group
    if end - start < 2:
        raise ValueError("a single node does not fit in a root page")
    total = sum(sizes[start:end])
    running = 0
    for index in range(start, end - 1):
        running += sizes[index]
        if running >= total / 2:
            return [(start, index + 1), (index + 1, end)]
    return [(start, end - 1), (end - 1, end)]


def plan_tree(entries: Sequence[Entry], page_size: int, root_header_length: int, fill_percent: int = 100) -> PlannedTree:
    """Decide how sorted entries spread over leaf and branch pages."""
    root_capacity = page_capacity(page_size, root_header_length)
    other_capacity = page_capacity(page_size, 0)
    keys = [key for key, _ in entries]
    payloads = [data for _, data in entries]
    sizes = [node_size(len(key), len(data)) for key, data in entries]
    leaf = _Level(keys, payloads)
    if sum(sizes) <= root_capacity:
        leaf.groups = [(0, len(entries))]
        return PlannedTree([leaf])

    leaf.groups = _pack(sizes, max(other_capacity * fill_percent // 100, 1))
    levels = [leaf]
    while True:
        level = levels[-1]
        level_sizes = sizes
        if len(level.groups) == 1:
            if sum(level_sizes) <= root_capacity:
                return PlannedTree(levels)
            level.groups = _split_in_two(level_sizes, level.groups[0])
        parent_keys: list[bytes] = []
        for group_index in range(len(level.groups)):
            parent_keys.append(_upper_bound(levels, len(levels) - 1, group_index))
        parent = _Level(parent_keys, list(range(len(level.groups))))
        sizes = [node_size(len(key), 4) for key in parent_keys]
        parent.groups = _pack(sizes, other_capacity)
        levels.append(parent)
        if len(parent.groups) == 1 and sum(sizes) <= root_capacity:
            return PlannedTree(levels)


def _upper_bound(levels: list[_Level], level_index: int, group_index: int) -> bytes:
    """Exclusive upper bound of a page: first key of the next page's subtree, or b''."""
    level = levels[level_index]
    if group_index == len(level.groups) - 1:
        return b""
    if level_index == 0:
        next_start = level.groups[group_index + 1][0]
        return level.keys[next_start]
    # For a branch page the bound is the key of its last node.
    _, end = level.groups[group_index]
    return level.keys[end - 1]


def emit_tree(
    plan: PlannedTree,
    root_pgno: int,
    other_pgnos: Sequence[int],
    *,
    page_size: int,
    objid: int,
    tree_flags: int,
    root_header: bytes,
    sink: PageSink,
    dbtime: int,
) -> None:
    """Serialize a planned tree; ``other_pgnos`` lists pages for non-root pages, leaves first."""
    needed = plan.page_count - 1
    if len(other_pgnos) != needed:
        raise ValueError(f"tree needs {needed} non-root pages, got {len(other_pgnos)}")
    cursor = 0
    pgnos_per_level: list[list[int]] = []
    top = len(plan.levels) - 1
    for level_index, level in enumerate(plan.levels):
        if level_index == top:
            pgnos_per_level.append([root_pgno])
        else:
            pgnos_per_level.append(list(other_pgnos[cursor : cursor + len(level.groups)]))
            cursor += len(level.groups)

    for level_index, level in enumerate(plan.levels):
        pgnos = pgnos_per_level[level_index]
        is_leaf = level_index == 0
        for group_index, (start, end) in enumerate(level.groups):
            is_root = level_index == top
            flags = PAGE_BASE_FLAGS | tree_flags
            if is_leaf:
                flags |= PAGE_LEAF
                nodes = [encode_node(level.keys[i], bytes(level.payloads[i])) for i in range(start, end)]
            else:
                if level_index == 1:
                    flags |= PAGE_PARENT_OF_LEAF
                children = pgnos_per_level[level_index - 1]
                nodes = []
                for i in range(start, end):
                    child = children[level.payloads[i]]
                    nodes.append(encode_node(level.keys[i], struct.pack("<I", child)))
            if is_root:
                flags |= PAGE_ROOT
            # Only leaf pages are chained; ESE leaves sibling links of branch pages empty.
            linked = is_leaf and not is_root
            prev_pgno = pgnos[group_index - 1] if linked and group_index > 0 else 0
            next_pgno = pgnos[group_index + 1] if linked and group_index + 1 < len(pgnos) else 0
            page, _ = build_page(
                page_size,
                pgnos[group_index],
                objid,
                flags,
                root_header if is_root else b"",
                nodes,
                prev_pgno=prev_pgno,
                next_pgno=next_pgno,
                dbtime=dbtime,
            )
            sink(pgnos[group_index], page)
