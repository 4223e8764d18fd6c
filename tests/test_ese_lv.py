"""The one-pass long-value reader must return exactly what libesedb returns, record by record.

Every Jobs/Files record of the real samples, the demo store and forged databases
(multi-chunk blobs, multi-level LV trees, prefix-compressed LV pages, stale copies
in free pages) is read both ways; and `read_ese` must give the same result with and
without the one-pass reader, including on damaged files where it falls back.
"""

from __future__ import annotations

import random
import struct
import uuid
from pathlib import Path

import pytest

from bitsdb.forge.ese import DEFAULT_LV_CHUNK_SIZE, write_qmgr_database
from bitsdb.formats.ese import PAGE_LEAF, build_page
from bitsdb.sources import ese as ese_source
from bitsdb.sources.ese_lv import EseLongValues, LongValueError, lid_from_reference

from conftest import real_sample

pyesedb = pytest.importorskip("pyesedb")

ROOT = Path(__file__).resolve().parents[1]
PAGE = 16384


def _libesedb_blobs(path: Path, table_name: str) -> list[tuple[int | None, bytes | None]]:
    """(LID, blob or None when libesedb cannot read it) of every record, in record order."""
    database = pyesedb.file()
    database.open(str(path))
    try:
        table = database.get_table_by_name(table_name)
        rows = []
        for index in range(table.number_of_records):
            record = table.get_record(index)
            assert record.is_long_value(1)
            lid = lid_from_reference(record.get_value_data(1))
            try:
                rows.append((lid, record.get_value_data_as_long_value(1).get_data()))
            except OSError:
                rows.append((lid, None))
        return rows
    finally:
        database.close()


def _assert_same_blobs_as_libesedb(path: Path, expect_all_read: bool = True) -> dict[str, int]:
    reader = EseLongValues(path)
    counts = {}
    for name in ("Jobs", "Files"):
        blobs = reader.blobs(name)
        rows = _libesedb_blobs(path, name)
        for lid, expected in rows:
            assert lid is not None
            if lid in blobs:
                assert blobs[lid] == expected, (path.name, name, hex(lid))
            else:
                assert not expect_all_read, (path.name, name, hex(lid), "not read in one pass")
        counts[name] = len(rows)
    return counts


def _blob(rng: random.Random, size: int) -> bytes:
    """Random bytes; chunk starts avoid 0x18, which libesedb reads as XPRESS-compressed."""
    data = bytearray(rng.randbytes(size))
    for offset in range(0, size, DEFAULT_LV_CHUNK_SIZE):
        if data[offset] == 0x18:
            data[offset] = 0x41
    return bytes(data)


def _records(rng: random.Random, count: int, low: int, high: int) -> list[tuple[bytes, bytes]]:
    return [(uuid.UUID(int=rng.getrandbits(128)).bytes_le, _blob(rng, rng.randint(low, high))) for _ in range(count)]


def _read_ese_both_ways(path: Path, monkeypatch) -> tuple[dict, dict]:
    fast = ese_source.read_ese(path, None)
    with monkeypatch.context() as patched:
        patched.setattr(ese_source, "_long_value_reader", lambda _path: None)
        slow = ese_source.read_ese(path, None)
    as_dict = lambda result: {  # noqa: E731
        "jobs": [job.to_dict() for job in result.jobs],
        "orphans": [jf.to_dict() for jf in result.orphan_files],
        "errors": result.errors,
        "warnings": result.warnings,
        "damage": [f"{d.table}: {d.problem}" for d in result.damaged_tables],
    }
    return as_dict(fast), as_dict(slow)


def _tree_depth(reader: EseLongValues, table_name: str) -> int:
    lv_objid, pgno = reader.lv_tree(table_name)
    depth = 1
    while True:
        flags, nodes = reader.read_page(pgno, lv_objid, is_root=depth == 1)
        if flags & PAGE_LEAF:
            return depth
        pgno = struct.unpack_from("<I", nodes[0][1])[0]
        depth += 1


# --- real samples and the demo store ---------------------------------------------------


@pytest.mark.parametrize("name", ["win10_qmgr.db", "win11_qmgr.db"])
def test_real_samples_blobs_equal_libesedb(name: str) -> None:
    counts = _assert_same_blobs_as_libesedb(real_sample("artemis", name))
    assert counts["Jobs"] >= 1 and counts["Files"] >= 1


def test_real_win10_lv_tree_has_prefix_compression_and_old_32bit_lids() -> None:
    """Win10's Jobs LV tree: two levels, prefix-compressed keys, stale 4-byte LIDs with refcount 0."""
    reader = EseLongValues(real_sample("artemis", "win10_qmgr.db"))
    blobs = reader.blobs("Jobs")
    assert _tree_depth(reader, "Jobs") == 2
    assert any(lid < 1 << 32 for lid in blobs) and any(lid >> 63 for lid in blobs)


def test_demo_store_blobs_equal_libesedb() -> None:
    _assert_same_blobs_as_libesedb(ROOT / "samples" / "demo" / "qmgr.db")


# --- forged databases ------------------------------------------------------------------


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> tuple[Path, list, list]:
    """Multi-chunk blobs; 220 file blobs of ~15 chunks need a three-level LV tree; stale copies in free pages."""
    rng = random.Random(41)
    jobs = _records(rng, 60, 1500, 4 * DEFAULT_LV_CHUNK_SIZE + 99)
    jobs.append((uuid.UUID(int=1).bytes_le, _blob(rng, DEFAULT_LV_CHUNK_SIZE)))  # exactly one chunk
    files = _records(rng, 220, 15 * DEFAULT_LV_CHUNK_SIZE + 1, 16 * DEFAULT_LV_CHUNK_SIZE)
    path = tmp_path_factory.mktemp("forged") / "qmgr.db"
    write_qmgr_database(path, jobs, files, remnants=[files[0][1][:3000], jobs[0][1][:2000]])
    return path, jobs, files


def test_forged_multi_level_multi_chunk_blobs_equal_libesedb(forged) -> None:
    path, jobs, files = forged
    reader = EseLongValues(path)
    assert _tree_depth(reader, "Files") == 3 and _tree_depth(reader, "Jobs") == 2
    assert sorted(reader.blobs("Files").values()) == sorted(blob for _, blob in files)
    assert sorted(reader.blobs("Jobs").values()) == sorted(blob for _, blob in jobs)
    assert _assert_same_blobs_as_libesedb(path) == {"Jobs": len(jobs), "Files": len(files)}


def test_prefix_compressed_lv_pages(tmp_path: Path) -> None:
    """Rewrite every LV leaf page the way Windows stores it (tag 0 = common key, nodes keep a suffix)."""
    rng = random.Random(8)
    jobs = _records(rng, 40, 2000, 9000)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, jobs, [])
    reader = EseLongValues(path)
    lv_objid, root = reader.lv_tree("Jobs")
    data = bytearray(path.read_bytes())
    _, children = reader.read_page(root, lv_objid, is_root=True)
    for _, child, _ in children:
        pgno = struct.unpack_from("<I", child)[0]
        flags, nodes = reader.read_page(pgno, lv_objid, is_root=False)
        prev_pgno, next_pgno = struct.unpack_from("<II", data, (pgno + 1) * PAGE + 16)
        common = nodes[len(nodes) // 2][0]
        packed = []
        for key, value, _ in nodes:
            shared = next((i for i, (a, b) in enumerate(zip(key, common)) if a != b), min(len(key), len(common)))
            suffix = key[shared:]
            packed.append(struct.pack("<HH", 0x8000 | shared, len(suffix)) + suffix + value)
        page, _ = build_page(PAGE, pgno, lv_objid, flags, common, packed, prev_pgno=prev_pgno, next_pgno=next_pgno)
        data[(pgno + 1) * PAGE:(pgno + 2) * PAGE] = page
    path.write_bytes(bytes(data))
    assert _assert_same_blobs_as_libesedb(path) == {"Jobs": 40, "Files": 0}
    assert sorted(EseLongValues(path).blobs("Jobs").values()) == sorted(blob for _, blob in jobs)


def test_values_libesedb_cannot_read_are_left_to_libesedb(tmp_path: Path, monkeypatch) -> None:
    """A chunk starting 0x18 (libesedb: XPRESS) stays out of the map, so the error is libesedb's as before."""
    rng = random.Random(9)
    jobs = _records(rng, 3, 1500, 2500)
    odd = bytearray(jobs[1][1])
    odd[0] = 0x18
    jobs[1] = (jobs[1][0], bytes(odd))
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, jobs, [])
    blobs = EseLongValues(path).blobs("Jobs")
    assert len(blobs) == 2 and bytes(odd) not in blobs.values()
    assert [blob is None for _, blob in _libesedb_blobs(path, "Jobs")].count(True) == 1
    fast, slow = _read_ese_both_ways(path, monkeypatch)
    assert fast == slow
    assert len(fast["damage"]) == 1 and fast["damage"][0].startswith("Jobs: 1 row(s) whose blob cannot be read")
    assert "record 0" in fast["damage"][0] and "blob unreadable" in fast["damage"][0]


def test_damaged_lv_page_fails_the_table_not_the_parse(tmp_path: Path, monkeypatch, forged) -> None:
    path = tmp_path / "damaged.db"
    data = bytearray(forged[0].read_bytes())
    reader = EseLongValues(forged[0])
    _, jobs_lv_root = reader.lv_tree("Jobs")
    data[(jobs_lv_root + 1) * PAGE:(jobs_lv_root + 2) * PAGE] = bytes(PAGE)
    path.write_bytes(bytes(data))
    damaged = EseLongValues(path)
    with pytest.raises(LongValueError):
        damaged.blobs("Jobs")
    assert len(damaged.blobs("Files")) == len(forged[2])
    fast, slow = _read_ese_both_ways(path, monkeypatch)
    assert fast == slow
    assert fast["damage"] == [fast["damage"][0]]
    assert fast["damage"][0].startswith(f"Jobs: {len(forged[1])} row(s) whose blob cannot be read")


# --- read_ese gives the same answer with and without the one-pass reader ---------------------


def test_read_ese_unchanged_on_samples(monkeypatch, forged) -> None:
    paths = [ROOT / "samples" / "demo" / "qmgr.db", forged[0]]
    for name in ("win10_qmgr.db", "win11_qmgr.db"):
        try:
            paths.append(real_sample("artemis", name))
        except pytest.skip.Exception:
            pass
    for path in paths:
        fast, slow = _read_ese_both_ways(path, monkeypatch)
        assert fast == slow, path.name
        assert fast["jobs"], path.name


def test_real_win11_with_zeroed_lv_pages_still_reports_libesedb_errors(tmp_path: Path, monkeypatch) -> None:
    data = bytearray(real_sample("artemis", "win11_qmgr.db").read_bytes())
    for page in (37, 44):  # file pages of the Jobs LV root and its neighbour (as in test_cli)
        data[page * PAGE:(page + 1) * PAGE] = bytes(PAGE)
    path = tmp_path / "zeroed.db"
    path.write_bytes(bytes(data))
    fast, slow = _read_ese_both_ways(path, monkeypatch)
    assert fast == slow
    assert fast["damage"] and fast["damage"][0].startswith("Jobs: 4 row(s) whose blob cannot be read")
    assert len(fast["jobs"]) == 4 and all(job["partial"] for job in fast["jobs"])


def test_lid_from_reference() -> None:
    assert lid_from_reference(bytes.fromhex("0e000080")) == 0x8000000E
    assert lid_from_reference(bytes.fromhex("0c00008000000080")) == 0x800000008000000C
    assert lid_from_reference(b"\x01\x02") is None and lid_from_reference(None) is None


def test_not_an_ese_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(bytes(4 * PAGE))
    with pytest.raises(LongValueError):
        EseLongValues(path)


# --- rows read from the data tree (blob_rows) -------------------------------------------------


def _libesedb_rows(path: Path, table_name: str) -> list[tuple[bytes, int | None]]:
    database = pyesedb.file()
    database.open(str(path))
    try:
        table = database.get_table_by_name(table_name)
        return [(bytes(table.get_record(i).get_value_data(0)), lid_from_reference(table.get_record(i).get_value_data(1)))
                for i in range(table.number_of_records)]
    finally:
        database.close()


def _every_database(forged, tmp_path: Path) -> list[Path]:
    from bitsdb.forge.scale import write_scale_database

    paths = [ROOT / "samples" / "demo" / "qmgr.db", forged[0]]
    write_scale_database(tmp_path / "scale.db", jobs=150, files_per_job=3, seed=5)
    paths.append(tmp_path / "scale.db")
    for name in ("win10_qmgr.db", "win11_qmgr.db"):
        try:
            paths.append(real_sample("artemis", name))
        except pytest.skip.Exception:
            pass
    return paths


def test_page_rows_equal_libesedb_records_on_every_database(forged, tmp_path: Path) -> None:
    """Index, Id and LID of every row, read from the pages, are libesedb's (real and forged stores)."""
    for path in _every_database(forged, tmp_path):
        reader = EseLongValues(path)
        for name in ("Jobs", "Files"):
            assert reader.blob_rows(name) == _libesedb_rows(path, name), (path.name, name)


def test_read_ese_takes_rows_from_the_pages_and_libesedb_only_counts(forged, tmp_path: Path, monkeypatch) -> None:
    """With the page rows, read_ese asks libesedb for no record (the cost that dominated at scale);
    the result is what the libesedb-only read gives."""
    for path in _every_database(forged, tmp_path):
        calls = []
        real_record_row = ese_source._record_row
        monkeypatch.setattr(ese_source, "_record_row", lambda *args: calls.append(args) or real_record_row(*args))
        fast, slow = _read_ese_both_ways(path, monkeypatch)
        assert fast == slow, path.name
        assert len(calls) == sum(len(_libesedb_rows(path, n)) for n in ("Jobs", "Files")), path.name   # slow only
        monkeypatch.undo()


def test_rows_not_in_the_bits_layout_go_to_libesedb(tmp_path: Path, monkeypatch) -> None:
    """A table whose catalog or rows differ from what BITS writes is read with libesedb (same result)."""
    rng = random.Random(12)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, _records(rng, 5, 1500, 2500), [])
    reader = EseLongValues(path)
    rows = reader.blob_rows("Jobs")
    data = bytearray(path.read_bytes())
    at = data.find(rows[2][0])                      # the third row's Id inside its record
    assert data[at + 16:at + 22] == bytes.fromhex("fe0001040005")
    data[at + 21] = 0x01                            # claims an inline value now
    path.write_bytes(bytes(data))
    with pytest.raises(LongValueError):
        EseLongValues(path).blob_rows("Jobs")
    with pytest.raises(LongValueError):
        EseLongValues(path).blob_rows("MSysObjects")   # not the Jobs/Files columns
    assert ese_source._page_rows(EseLongValues(path), "Jobs") is None
