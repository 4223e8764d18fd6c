"""The ESE writer must produce databases two independent readers agree on.

Every generated database is opened with pyesedb (libesedb) and with
dissect.database's ESE reader; both must report the written tables, columns,
record Ids and blob bytes.  Tests that compare against real Windows samples skip
when the samples are not present.
"""

from __future__ import annotations

import random
import struct
import uuid
from pathlib import Path

import pytest

from bitsdb.forge.ese import DEFAULT_LV_CHUNK_SIZE, write_qmgr_database
from bitsdb.formats.ese_checksum import checksum_old_format, page_checksums, stored_page_checksums
from bitsdb.formats.ese import key_binary, key_guid

pyesedb = pytest.importorskip("pyesedb")
dissect_ese = pytest.importorskip("dissect.database.ese")

SAMPLES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "real" / "artemis"
PAGE_SIZE = 16384
EXPECTED_TABLES = ["MSysObjects", "MSysObjectsShadow", "MSysObjids", "MSysLocales", "Jobs", "Files"]


def _real_sample(name: str) -> Path:
    path = SAMPLES_DIR / name
    if not path.is_file():
        pytest.skip(f"real sample {path} is not available")
    return path


def _reader_safe_blob(rng: random.Random, size: int) -> bytes:
    """Random bytes whose LV chunk starts avoid bytes readers mistake for compression headers.

    pyesedb treats an LV chunk starting with 0x18 as XPRESS-compressed, and
    dissect.database mis-tracks chunk offsets from the third chunk on and then
    inspects the first byte (0x08-0x1F, 0x28-0x37) for a compression scheme.
    Real data hits these too; here we keep the readers on the happy path.
    """
    data = bytearray(rng.randbytes(size))
    for offset in range(0, size, DEFAULT_LV_CHUNK_SIZE):
        if data[offset] >> 3 in (1, 2, 3, 5, 6):
            data[offset] = 0x41
    return bytes(data)


def _records(rng: random.Random, count: int, low: int, high: int) -> list[tuple[bytes, bytes]]:
    return [
        (uuid.UUID(int=rng.getrandbits(128)).bytes_le, _reader_safe_blob(rng, rng.randint(low, high)))
        for _ in range(count)
    ]


def _read_with_pyesedb(path: Path) -> dict:
    db = pyesedb.file()
    db.open(str(path))
    try:
        result = {}
        for table in db.tables:
            columns = [(c.name, c.type, c.identifier) for c in table.columns]
            rows = {}
            if table.name in ("Jobs", "Files"):
                for index in range(table.number_of_records):
                    record = table.get_record(index)
                    blob = record.get_value_data_as_long_value(1).get_data()
                    rows[record.get_value_data(0)] = blob
            result[table.name] = (columns, table.number_of_records, rows)
        return result
    finally:
        db.close()


def _read_with_dissect(path: Path) -> dict:
    with path.open("rb") as handle:
        db = dissect_ese.ESE(handle)
        result = {}
        for table in db.tables():
            columns = [(c.name, c.type.value, c.identifier) for c in table.columns]
            records = list(table.records())
            rows = {}
            if table.name in ("Jobs", "Files"):
                rows = {record.get("Id", raw=True): record.get("Blob") for record in records}
            result[table.name] = (columns, len(records), rows)
        return result


def _assert_readers_agree(path: Path, jobs, files) -> None:
    via_libesedb = _read_with_pyesedb(path)
    via_dissect = _read_with_dissect(path)
    assert list(via_libesedb) == EXPECTED_TABLES
    assert list(via_dissect) == EXPECTED_TABLES
    for name in EXPECTED_TABLES:
        assert via_libesedb[name][0] == via_dissect[name][0], name
        assert via_libesedb[name][1] == via_dissect[name][1], name
    assert via_libesedb["Jobs"][0] == [("Id", 16, 1), ("Blob", 11, 256)]
    assert via_libesedb["Files"][0] == [("Id", 16, 1), ("Blob", 11, 256)]
    for name, expected in (("Jobs", jobs), ("Files", files)):
        assert via_libesedb[name][2] == dict(expected)
        assert via_dissect[name][2] == dict(expected)


def _page_count(path: Path) -> int:
    return path.stat().st_size // PAGE_SIZE - 2


def _root_and_lv_pages(path: Path, table_name: str):
    handle = path.open("rb")
    db = dissect_ese.ESE(handle)
    table = db.table(table_name)
    lv_root = table._long_value_record.get("ColtypOrPgnoFDP")
    return handle, db, db.page(table.root_page), db.page(lv_root)


def test_single_job_and_file(tmp_path: Path) -> None:
    rng = random.Random(7)
    jobs = _records(rng, 1, 1800, 2000)
    files = _records(rng, 1, 1000, 1100)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, jobs, files)
    _assert_readers_agree(path, jobs, files)


def test_empty_tables(tmp_path: Path) -> None:
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, [], [])
    _assert_readers_agree(path, [], [])


def test_hundreds_of_records_span_branch_and_leaf_pages(tmp_path: Path) -> None:
    rng = random.Random(11)
    jobs = _records(rng, 400, 1500, 3000)
    files = _records(rng, 600, 800, 1300)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, list(reversed(jobs)), files)  # input order must not matter
    _assert_readers_agree(path, jobs, files)

    handle, db, root, lv_root = _root_and_lv_pages(path, "Files")
    with handle:
        assert not root.is_leaf and root.is_parent  # Files records need several leaves
        assert not lv_root.is_leaf  # and so do their long values
        leaves = [db.page(node.child) for node in lv_root.nodes()]
        assert all(page.is_leaf and page.is_long_value for page in leaves)
        # Leaves are chained in key order; the last one ends the chain.
        assert [page.next_page for page in leaves[:-1]] == [page.num for page in leaves[1:]]
        assert leaves[-1].next_page == 0


def test_primary_index_lookup_by_guid(tmp_path: Path) -> None:
    rng = random.Random(5)
    jobs = _records(rng, 300, 400, 600)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, jobs, [])
    with path.open("rb") as handle:
        table = dissect_ese.ESE(handle).table("Jobs")
        for guid, blob in jobs[::37]:
            record = table.search(Id=uuid.UUID(bytes_le=guid))
            assert record is not None and record.get("Blob") == blob


def test_blobs_larger_than_one_lv_chunk(tmp_path: Path) -> None:
    rng = random.Random(3)
    two_chunks = _reader_safe_blob(rng, DEFAULT_LV_CHUNK_SIZE + 123)
    many_chunks = _reader_safe_blob(rng, 5 * DEFAULT_LV_CHUNK_SIZE + 17)
    exact_chunk = _reader_safe_blob(rng, DEFAULT_LV_CHUNK_SIZE)
    jobs = [(uuid.uuid4().bytes_le, two_chunks), (uuid.uuid4().bytes_le, many_chunks)]
    files = [(uuid.uuid4().bytes_le, exact_chunk)]
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, jobs, files)
    _assert_readers_agree(path, jobs, files)

    handle, db, _, lv_root = _root_and_lv_pages(path, "Jobs")
    with handle:
        nodes = list(lv_root.iter_leaf_nodes())
        chunk_offsets = [struct.unpack(">I", bytes(node.key)[8:])[0] for node in nodes if len(node.key) == 12]
        assert chunk_offsets == [0, DEFAULT_LV_CHUNK_SIZE] + [i * DEFAULT_LV_CHUNK_SIZE for i in range(6)]
        roots = [bytes(node.data) for node in nodes if len(node.key) == 8]
        assert roots == [struct.pack("<II", 1, len(two_chunks)), struct.pack("<II", 1, len(many_chunks))]


def test_record_references_separated_long_value(tmp_path: Path) -> None:
    """Blob column 256 holds a 64-bit LID with the LongValue|Separated tag flags, as Windows writes."""
    path = tmp_path / "qmgr.db"
    guid = uuid.uuid4().bytes_le
    write_qmgr_database(path, [(guid, b"B" * 50)], [])
    handle, db, root, lv_root = _root_and_lv_pages(path, "Jobs")
    with handle:
        record = bytes(root.node(0).data)
        assert bytes(root.node(0).key) == key_guid(guid)
        assert record[:4] == bytes([1, 0x7F, 0x15, 0x00])  # fixed up to Id, no variable columns
        assert record[4:20] == guid
        tag_id, tag_offset = struct.unpack("<HH", record[21:25])
        assert (tag_id, tag_offset) == (256, 4)
        assert record[25] == 0x05  # TAGFLD LongValue | Separated
        lid = struct.unpack("<Q", record[26:34])[0]
        assert lid >> 63 == 1  # 64-bit LID flag
        assert bytes(lv_root.node(0).key) == struct.pack(">Q", lid)


def test_every_page_checksum_and_header(tmp_path: Path) -> None:
    rng = random.Random(1)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, _records(rng, 50, 1000, 9000), _records(rng, 50, 500, 900))
    data = path.read_bytes()
    header = data[:PAGE_SIZE]
    assert data[PAGE_SIZE : 2 * PAGE_SIZE] == header  # shadow header is an exact copy
    assert struct.unpack_from("<I", header, 0)[0] == checksum_old_format(header)
    magic, version = struct.unpack_from("<II", header, 4)
    assert (magic, version) == (0x89ABCDEF, 0x620)
    assert struct.unpack_from("<I", header, 52)[0] == 3  # clean shutdown
    assert struct.unpack_from("<II", header, 232) == (0xC8, PAGE_SIZE)
    checked = 0
    for pgno in range(1, _page_count(path) + 1):
        page = data[(pgno + 1) * PAGE_SIZE : (pgno + 2) * PAGE_SIZE]
        if page.count(0) == PAGE_SIZE:
            continue  # never-used page inside a system extent, as in real files
        assert page_checksums(page, pgno) == stored_page_checksums(page), pgno
        checked += 1
    assert checked > 20


def test_remnants_left_in_free_pages(tmp_path: Path) -> None:
    rng = random.Random(9)
    jobs = _records(rng, 3, 500, 900)
    stale = [b"OLD-JOB-" + rng.randbytes(1200), b"OLD-FILE-" + rng.randbytes(20000)]
    path = tmp_path / "qmgr.db"
    report = write_qmgr_database(path, jobs, [], remnants=stale)
    data = path.read_bytes()
    assert len(report.remnants) == 2
    first = report.remnants[0]
    assert data[first.file_offset : first.file_offset + len(stale[0])] == stale[0]
    # A remnant spilling over several free pages is still found piece by piece at page data starts.
    second = report.remnants[1]
    usable = PAGE_SIZE - 80
    assert data[second.file_offset : second.file_offset + usable] == stale[1][:usable]
    next_page_data = second.file_offset + PAGE_SIZE
    assert data[next_page_data : next_page_data + len(stale[1]) - usable] == stale[1][usable:]
    _assert_readers_agree(path, jobs, [])


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    guid = uuid.uuid4().bytes_le
    with pytest.raises(ValueError, match="duplicate"):
        write_qmgr_database(tmp_path / "qmgr.db", [(guid, b"a"), (guid, b"b")], [])


def test_binary_key_normalization_matches_real_locale_keys() -> None:
    key = key_binary(".Schema\\External\\Major\x00".encode("utf-16-le"))
    assert key.hex().endswith("6f0072000000000006")
    assert len(key) == 1 + 6 * 9


@pytest.mark.parametrize("sample", ["win10_qmgr.db", "win11_qmgr.db"])
def test_real_sample_checksums_match_our_algorithm(sample: str) -> None:
    data = _real_sample(sample).read_bytes()
    assert struct.unpack_from("<I", data, 0)[0] == checksum_old_format(data[:PAGE_SIZE])
    for pgno in range(1, len(data) // PAGE_SIZE - 1):
        page = data[(pgno + 1) * PAGE_SIZE : (pgno + 2) * PAGE_SIZE]
        if page.count(0) != PAGE_SIZE:
            assert page_checksums(page, pgno) == stored_page_checksums(page), pgno


@pytest.mark.parametrize("sample", ["win10_qmgr.db", "win11_qmgr.db"])
def test_schema_mirrors_real_sample(tmp_path: Path, sample: str) -> None:
    real = _real_sample(sample)
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, [(uuid.uuid4().bytes_le, b"x" * 100)], [(uuid.uuid4().bytes_le, b"y" * 100)])
    ours = _read_with_pyesedb(path)
    theirs = _read_with_pyesedb(real)
    assert list(ours) == list(theirs)
    for name in ours:
        assert ours[name][0] == theirs[name][0], name
        if name.startswith("MSys"):
            assert ours[name][1] == theirs[name][1], name


def test_catalog_records_mirror_win11(tmp_path: Path) -> None:
    """Every catalog record equals Windows 11's, except page numbers of user objects."""
    real = _real_sample("win11_qmgr.db")
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, [(uuid.uuid4().bytes_le, b"x")], [(uuid.uuid4().bytes_le, b"y")])

    def catalog(db_path: Path) -> list[dict]:
        with db_path.open("rb") as handle:
            db = dissect_ese.ESE(handle)
            rows = []
            for record in db.catalog._ctable.records():
                row = record.as_dict()
                if row["ObjidTable"] >= 8 and row["Type"] in (1, 3, 4):
                    row.pop("ColtypOrPgnoFDP")
                rows.append(row)
            return rows

    assert catalog(path) == catalog(real)
    with path.open("rb") as ours_handle, real.open("rb") as real_handle:
        ours_db, real_db = dissect_ese.ESE(ours_handle), dissect_ese.ESE(real_handle)
        for name in ("MSysObjids", "MSysLocales"):
            ours_rows = [r.as_dict() for r in ours_db.table(name).records()]
            real_rows = [r.as_dict() for r in real_db.table(name).records()]
            assert ours_rows == real_rows, name
