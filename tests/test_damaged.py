"""Damaged and hostile stores (issue 12, classes 6 and 7): never an internal error, nothing read is
dropped, every problem one line naming file and table, rows of an unreadable table recovered from its
pages; and the work spent on any content is bounded. Every input is built here, in tmp_path."""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.decode import encode_job
from bitsdb.decode import legacy as legacy_decode
from bitsdb.decode.sections import ATTEMPT_COST, BUDGET_PER_BYTE, MIN_BUDGET
from bitsdb.forge import hostile
from bitsdb.forge.ese import write_qmgr_database
from bitsdb.forge.legacy import build_state_file, legacy_samples
from bitsdb.forge.scale import scale_jobs, write_scale_database
from bitsdb.formats.ese import PAGE_LEAF, PAGE_LONG_VALUE, PAGE_SPACE_TREE
from bitsdb.sources import legacy as legacy_source
from bitsdb.sources.result import MESSAGE_CAP, SourceError
from bitsdb.stores import read

JOBS = 300


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def jobs_of(out: str) -> list[dict]:
    return [r for r in records(out) if r["record_type"] == "job"]


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("bitsdb: error:")]


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("bitsdb: warning:")]


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> tuple[bytes, set[str]]:
    """A qmgr.db of JOBS jobs (a Jobs tree with branch and leaf pages), and its job ids."""
    path = tmp_path_factory.mktemp("forged") / "qmgr.db"
    write_scale_database(path, jobs=JOBS, files_per_job=1, seed=3)
    return path.read_bytes(), {job.job_id for job in scale_jobs(JOBS, 1, seed=3)}


def damaged(tmp_path: Path, data: bytes, name: str = "qmgr.db") -> Path:
    folder = tmp_path / "Downloader"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _jobs_tree(data: bytes, path: Path) -> tuple[int, int, list[int]]:
    """(objid, root page, leaf pages in order) of the Jobs data tree."""
    objid, root = hostile.catalog(str(path))["Jobs"]
    leaves = [p for p in hostile.pages(data) if p.objid == objid and p.flags & PAGE_LEAF
              and not p.flags & (PAGE_LONG_VALUE | PAGE_SPACE_TREE) and p.pgno != root]
    assert len(leaves) >= 2, "the forged Jobs tree has a branch root and several leaves"
    return objid, root, [p.pgno for p in sorted(leaves, key=lambda p: p.prev)]


def test_the_forged_store_reads_clean(tmp_path, forged):
    data, ids = forged
    code, out, err = run("parse", str(damaged(tmp_path, data)))
    assert code == 0 and err == "" and {j["job_id"] for j in jobs_of(out)} == ids


# --------------------------------------------------------------------------- unreadable tables


def test_zeroed_jobs_root_is_an_error_and_its_rows_come_back_from_the_tables_pages(tmp_path, forged):
    data, ids = forged
    source = damaged(tmp_path, data, "good.db")
    _, root, _ = _jobs_tree(data, source)
    path = damaged(tmp_path, hostile.zero_page(data, root))
    code, out, err = run("parse", str(path))
    lines = errors(err)
    assert code == 1, "a zeroed Jobs root is never '0 jobs, exit 0, no message'"
    assert lines[0].startswith(f"bitsdb: error: {path}: table Jobs: tree damaged (page {root}")
    assert f"{JOBS} job record(s)" in lines[0] and "recovered from its pages" in lines[0]
    found = jobs_of(out)
    assert {j["job_id"] for j in found} == ids and len(found) == JOBS
    assert {j["provenance"]["recovered_from"] for j in found} == {"damaged table"}
    assert all(j["provenance"]["recovered"] and j["files"] for j in found), "files link to the live Files rows"
    assert not [r for r in records(out) if r["record_type"] == "orphan_file"]
    assert "internal error" not in err


@pytest.mark.parametrize("damage", ["sibling", "child", "leaf"])
def test_broken_tree_links_keep_what_was_read_and_never_repeat_a_row(tmp_path, forged, damage):
    data, ids = forged
    source = damaged(tmp_path, data, "good.db")
    _, root, leaves = _jobs_tree(data, source)
    broken = {"sibling": lambda: hostile.break_sibling(data, leaves[0], 0xFFFF),
              "child": lambda: hostile.break_child(data, root, 1, 0xFFFF),
              "leaf": lambda: hostile.zero_page(data, leaves[-1])}[damage]()
    path = damaged(tmp_path, broken)
    code, out, err = run("parse", str(path))
    lines = errors(err)
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"bitsdb: error: {path}: table Jobs: ")
    found = jobs_of(out)
    assert {j["job_id"] for j in found} == ids
    assert len(found) == JOBS, "rows recovered from pages are de-duplicated against rows that were read"


def test_missing_long_value_is_one_error_and_the_other_rows_are_kept(tmp_path, forged):
    data, ids = forged
    source = damaged(tmp_path, data, "good.db")
    lv_objid, lv_root = hostile.lv_tree(str(source), "Jobs")
    lv_leaves = [p.pgno for p in hostile.pages(data) if p.objid == lv_objid and p.flags & PAGE_LEAF
                 and not p.flags & PAGE_SPACE_TREE]
    path = damaged(tmp_path, hostile.zero_page(data, lv_leaves[1]))
    code, out, err = run("parse", str(path))
    lines = errors(err)
    assert code == 1 and len(lines) == 1
    assert f"{path}: table Jobs: " in lines[0] and "row(s) whose blob cannot be read" in lines[0]
    found = jobs_of(out)
    whole = [j for j in found if j["display_name"]]
    stubs = [j for j in found if not j["display_name"]]
    assert whole and stubs and {j["job_id"] for j in found} == ids
    assert all(j["partial"] and "blob unreadable" in j["partial_reason"] for j in stubs)
    assert {j["provenance"]["recovered_from"] for j in whole} == {"live table", "damaged table"}
    assert len(found) == len(ids), "a stub goes once its job is recovered: no job twice"
    partial_lines = [w for w in warnings(err) if "is partial" in w]
    assert len(partial_lines) == min(len(stubs), MESSAGE_CAP)


def test_truncated_store_keeps_the_rows_before_the_cut(tmp_path, forged):
    data, ids = forged
    for cut in (len(data) * 3 // 4, len(data) // 2 + 12345):
        path = damaged(tmp_path, hostile.truncate(data, cut))
        code, out, err = run("parse", str(path))
        assert code == 1 and "internal error" not in err and "Traceback" not in err
        assert errors(err) and all(line.startswith(f"bitsdb: error: {path}: ") for line in errors(err))
        found = {j["job_id"] for j in jobs_of(out)}
        assert found and found <= ids


def test_truncated_at_every_page_never_an_internal_error(tmp_path, forged):
    data, _ = forged
    size = hostile.page_size_of(data)
    for pages in range(1, len(data) // size, 8):
        path = damaged(tmp_path, hostile.truncate(data, pages * size + 100))
        try:
            result = read(path)
        except SourceError:
            continue
        assert result.errors and all("internal error" not in e for e in result.errors)


def test_catalog_without_jobs_recovers_from_every_page(tmp_path, forged):
    data, ids = forged
    path = damaged(tmp_path, hostile.zero_page(data, 4))
    code, out, err = run("parse", str(path))
    lines = errors(err)
    assert code == 1 and len(lines) == 1 and "recovered from the whole file" in lines[0]
    assert {j["job_id"] for j in jobs_of(out)} == ids


def test_an_ese_file_with_no_bits_record_is_still_not_a_bits_store(tmp_path, forged):
    data, _ = forged
    header = data[:hostile.page_size_of(data) * 2]
    path = damaged(tmp_path, header + bytes(len(data) - len(header)))
    code, out, err = run("parse", str(path))
    assert code == 1 and out == "" and len(errors(err)) == 1
    assert "not a BITS qmgr.db" in errors(err)[0] or "not a readable ESE database" in errors(err)[0]


def test_recover_does_not_repeat_what_the_damaged_table_gave(tmp_path, forged):
    data, ids = forged
    source = damaged(tmp_path, data, "good.db")
    _, root, _ = _jobs_tree(data, source)
    path = damaged(tmp_path, hostile.zero_page(data, root))
    code, out, _ = run("parse", "--recover", str(path))
    assert code == 1 and len(jobs_of(out)) == JOBS


# --------------------------------------------------------------------------- partial live records


def test_partial_live_records_are_one_warning_each_capped_and_exit_1(tmp_path):
    jobs = scale_jobs(MESSAGE_CAP + 5, 0, seed=4)
    rows = [(uuid.UUID(job.job_id).bytes_le, encode_job(job) + b"trailing junk") for job in jobs]
    path = tmp_path / "qmgr.db"
    write_qmgr_database(path, rows, [])
    code, out, err = run("parse", str(path))
    lines = [w for w in warnings(err) if "is partial" in w]
    assert code == 1 and errors(err) == []
    assert len(lines) == MESSAGE_CAP and warnings(err)[-1].endswith("... and 5 more partial record(s)")
    first = jobs[0].job_id if rows[0][0] < rows[1][0] else None
    assert all(line.startswith(f"bitsdb: warning: {path}: job ") and "(Jobs record " in line
               and "bytes after the footer" in line for line in lines)
    assert first is None or first in " ".join(lines)
    assert len(jobs_of(out)) == len(jobs) and all(j["partial"] for j in jobs_of(out))


def test_partial_raw_record_is_a_warning_and_exit_1(tmp_path):
    job = scale_jobs(1, 0, seed=6)[0]
    blob = encode_job(job)
    path = tmp_path / "job.bin"
    path.write_bytes(blob[:len(blob) - 40])
    code, out, err = run("parse", str(path))
    assert code == 1 and errors(err) == []
    assert [w for w in warnings(err) if f"job {job.job_id}" in w and "is partial" in w]
    assert jobs_of(out)[0]["partial"]


# --------------------------------------------------------------------------- legacy state files


def test_legacy_partial_job_is_a_warning_the_others_are_kept(tmp_path):
    data = bytearray(legacy_samples("win10")["qmgr1.dat"])
    state = legacy_source.parse_state_file(bytes(data))
    first = state.records[0]
    struct.pack_into("<I", data, first.offset + 0x30, 30000)          # display name runs past the end
    path = damaged(tmp_path, bytes(data), "qmgr1.dat")
    code, out, err = run("parse", str(path))
    found = jobs_of(out)
    assert code == 1 and len(found) == len(state.records)
    assert [w for w in warnings(err) if f"job {first.job.job_id}" in w and "is partial" in w]
    assert "internal error" not in err


def test_legacy_truncated_at_every_offset_never_an_internal_error(tmp_path):
    data = legacy_samples("win10")["qmgr1.dat"]
    complete = len(legacy_source.parse_state_file(data).records)
    for cut in range(16, len(data), 97):
        path = damaged(tmp_path, data[:cut], "qmgr1.dat")
        try:
            result = read(path)
        except SourceError:
            continue
        assert len(result.jobs) <= complete


# --------------------------------------------------------------------------- bounded cost


def _count_decodes(monkeypatch) -> list[int]:
    calls = [0]
    original = legacy_decode.decode_legacy_record

    def counting(data, offset=0):
        calls[0] += 1
        return original(data, offset)

    monkeypatch.setattr(legacy_source, "decode_legacy_record", counting)
    return calls


def test_dense_markers_are_skipped_before_decoding(monkeypatch):
    calls = _count_decodes(monkeypatch)
    data = hostile.dense_markers(256 * 1024)
    state = legacy_source.parse_state_file(data)
    assert calls[0] <= 2, "no marker in a run of markers has a plausible head: none is decoded"
    assert state.errors and not state.records


@pytest.mark.parametrize("shape", ["legacy plausible heads", "legacy heads + strings", "legacy huge counts"])
def test_decoding_attempts_are_bounded_per_byte(monkeypatch, shape):
    calls = _count_decodes(monkeypatch)
    data = hostile.COSTLY_SHAPES[shape](512 * 1024)
    state = legacy_source.parse_state_file(data)
    failed = calls[0] - sum(1 for r in state.records if not r.job.partial)
    assert failed <= (MIN_BUDGET + BUDGET_PER_BYTE * len(data)) // ATTEMPT_COST + 2
    if failed > MIN_BUDGET // ATTEMPT_COST:
        assert any("decoding stopped at" in e for e in state.errors) or calls[0] < len(data) // 64


def test_marker_search_is_not_quadratic(monkeypatch):
    """Each marker is searched for once per occurrence, not once per resync."""
    searched = []

    class Counting(bytes):
        def find(self, *args):
            searched.append(args[0])
            return bytes.find(self, *args)

    data = hostile.dense_markers(64 * 1024)
    finder = legacy_source._MarkerFinder(Counting(data))
    position, steps = 0, 0
    markers = [hostile.LEGACY_QUEUE_MARKER, *legacy_source.LEGACY_JOB_MARKERS]
    while True:
        at, _ = finder.next(position, markers)
        steps += 1
        if at < 0 or steps > 2000:
            break
        position = at + 1
    absent = len(markers) - 1
    assert len(searched) <= steps + absent * 2


def test_carving_hostile_shapes_reports_when_the_budget_stops_it(monkeypatch):
    from bitsdb.carve import scanner
    from bitsdb.decode import sections

    monkeypatch.setattr(sections, "MIN_BUDGET", 0)
    monkeypatch.setattr(sections, "BUDGET_PER_BYTE", 1)
    data = hostile.plausible_heads(256 * 1024)
    import io

    scan = scanner.Scanner(hash_input=False)
    list(scan.records(io.BytesIO(data)))
    assert scan.stats.stopped and "decoding stopped at 0x" in scan.stats.stopped


def test_state_file_with_many_small_valid_jobs_is_read_whole():
    """The budget pays only for failed attempts: a file dense with real records loses none."""
    record = hostile.legacy_job_record()
    count = (MIN_BUDGET // ATTEMPT_COST) * 3
    data = build_state_file([record] * count, "win10", size=None)
    state = legacy_source.parse_state_file(data)
    assert len(state.records) == count and not any("decoding stopped" in e for e in state.errors)


# --------------------------------------------------------------------------- the real samples, damaged


def test_real_win10_truncated_keeps_its_live_job(tmp_path, artemis):
    """Cut inside the long values: was `internal error: AttributeError` with every row dropped."""
    data = artemis("win10_qmgr.db").read_bytes()
    path = damaged(tmp_path, data[:700000])
    code, out, err = run("parse", str(path))
    assert code == 1 and "internal error" not in err
    assert all(line.startswith(f"bitsdb: error: {path}: table ") for line in errors(err))
    chrome = [j for j in jobs_of(out) if j["job_id"] == "266504ac-d974-446c-96ad-2be13a5665b0"]
    assert chrome and all(j["display_name"] == "Chrome Component Updater" for j in chrome)
    assert {j["provenance"]["recovered_from"] for j in chrome} == {"damaged table"}, "its blob was cut off"
    assert any("truncated" in w for w in warnings(err))


def test_real_win11_zeroed_jobs_root_recovers_its_live_jobs(tmp_path, artemis):
    source = artemis("win11_qmgr.db")
    data = source.read_bytes()
    _, root = hostile.catalog(str(source))["Jobs"]
    code, out, err = run("parse", str(damaged(tmp_path, hostile.zero_page(data, root))))
    clean = {j["job_id"] for j in jobs_of(run("parse", str(source))[1])}
    assert code == 1 and len(errors(err)) == 1 and "table Jobs: tree damaged" in errors(err)[0]
    assert clean <= {j["job_id"] for j in jobs_of(out)}


def test_store_whose_header_is_gone_is_carved_whole(tmp_path, forged):
    data, ids = forged
    size = hostile.page_size_of(data)
    path = damaged(tmp_path, bytes(2 * size) + data[2 * size:])          # both database header pages zeroed
    code, out, err = run("parse", str(path.parent))                       # found in a folder by its name
    lines = errors(err)
    assert code == 1 and len(lines) == 1 and "unrecognised content" in lines[0]
    assert "recovered from the whole file" in lines[0]
    assert {j["job_id"] for j in jobs_of(out)} == ids


def test_state_file_whose_header_is_gone_is_carved_whole(tmp_path):
    data = legacy_samples("win10")["qmgr1.dat"]
    live = {r.job.job_id for r in legacy_source.parse_state_file(data).records}
    path = damaged(tmp_path, bytes(0x30) + data[0x30:], "qmgr1.dat")     # prefix and header marker pair
    code, out, err = run("parse", str(path))
    assert code == 1 and len(errors(err)) == 1 and "unrecognised content" in errors(err)[0]
    found = jobs_of(out)
    assert live <= {j["job_id"] for j in found}
    assert {j["provenance"]["recovered_from"] for j in found} == {"damaged table"}


def test_unrecognised_file_with_no_record_is_still_one_error(tmp_path):
    path = damaged(tmp_path, b"not a store " * 1000, "qmgr0.dat")
    code, out, err = run("parse", str(path))
    assert code == 1 and out == "" and len(errors(err)) == 1 and "unrecognised content" in errors(err)[0]
