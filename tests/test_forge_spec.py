"""`bitsdb forge`: spec -> qmgr.db that parses back to the spec, planted history at known offsets,
two independent ESE readers agreeing, and clear one-line errors for bad specs."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb import api
from bitsdb.carve.recover import recover_source
from bitsdb.decode import encode_file, encode_job
from bitsdb.cli.forge import command as forge_command
from bitsdb.forge.spec import (
    SpecError,
    forge,
    load_spec,
    parse_spec,
    reader_safe_chunk_size,
    spec_from_jobs,
)
from bitsdb.model import Job, JobFile

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "samples" / "demo" / "demo.yaml"
REAL = ROOT.parent / "shared" / "samples" / "real" / "artemis"

JOB_A = "11111111-2222-4333-8444-555555555501"
JOB_B = "11111111-2222-4333-8444-555555555502"
GONE = "99999999-2222-4333-8444-555555555503"


def small_spec() -> dict:
    return {
        "bitsdb_forge": 1,
        "jobs": [
            {"job_id": JOB_A, "display_name": "Chrome Component Updater", "state": "TRANSFERRED",
             "priority": "FOREGROUND", "owner_sid": "S-1-5-21-1-2-3-1001",
             "security": {"owner_integrity_rid": 0x2000},
             "creation_time": "2025-01-02T03:04:05.1234567+00:00",
             "modification_time": "2025-01-02T03:05:05.0000000+00:00",
             "notify_flags": ["JOB_TRANSFERRED", "JOB_ERROR"], "cost_flags": "TRANSFER_STANDARD",
             "creator_image": r"C:\Program Files\Google\Chrome\Application\chrome.exe",
             "errors": [{"hresult": 0x80190194, "context": "REMOTE_FILE", "form": 21}],
             "timers": [{"slot": "retry", "start": "2025-01-02T03:05:05+00:00", "end": "2025-01-02T03:15:05+00:00"}],
             "proxy_usage": "OVERRIDE", "proxy_list": "http://proxy.example:8080", "proxy_bypass": "<local>",
             "files": [{"file_id": "aaaaaaaa-2222-4333-8444-555555555501", "local_name": r"C:\Users\bob\x.bin",
                        "remote_name": "https://dl.google.com/x.bin", "bytes_total": 100,
                        "bytes_transferred": 100, "ranges": [{"offset": 0, "length": 100}],
                        "remote_last_modified": "2024-12-31T00:00:00+00:00"}],
             "history": [{"stored_in": "log", "state": "TRANSFERRING",
                          "modification_time": "2025-01-02T03:04:30+00:00"},
                         {"stored_in": "db", "state": "QUEUED", "modification_time": "2025-01-02T03:04:06+00:00"}]},
            {"job_id": JOB_B, "display_name": "up", "type": "UPLOAD", "state": "QUEUED", "http_method": "BITS_POST",
             "creation_time": "2025-01-03T00:00:00+00:00", "modification_time": "2025-01-03T00:00:01+00:00",
             "files": [{"file_id": "aaaaaaaa-2222-4333-8444-555555555502", "local_name": r"C:\Users\bob\doc.xlsx",
                        "remote_name": "https://203.0.113.5/u", "bytes_total": 9, "bytes_transferred": 0,
                        "local_file_mtime": "2025-01-01T00:00:00+00:00"}]},
        ],
        "deleted": [
            {"stored_in": "db", "job_id": GONE, "display_name": "Gone", "state": "CANCELLED",
             "modification_time": "2025-01-01T00:00:00+00:00", "creation_time": "2025-01-01T00:00:00+00:00",
             "files": [{"file_id": "bbbbbbbb-2222-4333-8444-555555555503", "local_name": r"C:\Users\Public\e.exe",
                        "remote_name": "http://192.0.2.9/e", "bytes_total": 5, "bytes_transferred": 5}]},
        ],
    }


def _same_on_given_keys(given, wanted, got, where: str) -> None:
    """Recursively: each key the spec gives must have the parsed value (lists element by element)."""
    if isinstance(given, dict):
        for key in given:
            if key in ("files", "history", "stored_in"):
                continue
            assert key in got, f"{where}.{key} missing from the parse"
            _same_on_given_keys(given[key], wanted[key], got[key], f"{where}.{key}")
            twin = f"{key}_filetime"
            if twin in wanted:
                assert got[twin] == wanted[twin], f"{where}.{twin}"
    elif isinstance(given, list) and len(given) == len(got) and given and isinstance(given[0], dict):
        for index, (g, w, r) in enumerate(zip(given, wanted, got)):
            _same_on_given_keys(g, w, r, f"{where}[{index}]")
    else:
        assert got == wanted, f"{where}: parsed {got!r}, spec {wanted!r}"


def assert_matches_spec(given: dict, parsed: dict, where: str = "job") -> None:
    """Every field the spec states has that value in the parse (short forms normalised by from_dict)."""
    wanted = Job.from_dict({k: v for k, v in given.items() if k not in ("files", "history", "stored_in")}).to_dict()
    _same_on_given_keys(given, wanted, parsed, where)
    for index, file_spec in enumerate(given.get("files", [])):
        wanted_file = JobFile.from_dict(file_spec).to_dict()
        _same_on_given_keys(file_spec, wanted_file, parsed["files"][index], f"{where}.files[{index}]")


@pytest.fixture()
def forged(tmp_path: Path):
    spec = small_spec()
    report = forge(spec, tmp_path / "qmgr.db")
    return spec, report


def test_parse_of_forged_database_equals_spec(forged) -> None:
    spec, report = forged
    result = api.read(report.database)
    assert result.errors == [] and result.warnings == []
    assert result.orphan_files == []
    parsed = {job.job_id: job.to_dict() for job in result.jobs}
    assert list(parsed) == [JOB_A, JOB_B]
    for given in spec["jobs"]:
        job = parsed[given["job_id"]]
        assert not job["partial"] and job["missing_file_ids"] == []
        assert [f["file_id"] for f in job["files"]] == [f["file_id"] for f in given["files"]]
        assert_matches_spec(given, job)
    assert parsed[JOB_B]["files"][0]["layout"] == "upload"


def test_spec_in_parser_output_shape_round_trips(tmp_path: Path) -> None:
    """Output of `bitsdb parse` (minus provenance) is itself a spec, and forging it is lossless."""
    first = forge(small_spec(), tmp_path / "a.db")
    jobs = list(api.read(first.database).jobs)
    spec = json.loads(json.dumps(spec_from_jobs(jobs)))
    second = forge(spec, tmp_path / "b.db")
    again = api.read(second.database)
    strip = lambda d: {k: v for k, v in d.items() if k != "provenance"}  # noqa: E731
    for before, after in zip(jobs, again.jobs):
        a, b = before.to_dict(), after.to_dict()
        a["files"] = [strip(f) for f in a["files"]]
        b["files"] = [strip(f) for f in b["files"]]
        assert strip(a) == strip(b)


def test_parse_jsonl_lines_are_a_spec(tmp_path: Path) -> None:
    """Lines of `bitsdb parse -f jsonl` (the demo's expected output) forge back to the same lines."""
    rows = [json.loads(line) for line in (ROOT / "samples" / "demo" / "expected.parse.jsonl").read_text().splitlines()]
    live = [row for row in rows if not row["provenance"]["recovered"]]
    report = forge({"jobs": live}, tmp_path / "qmgr.db")
    again = [job.to_dict() for job in api.read(report.database).jobs]
    for before, after in zip(live, again):
        for data in (before, after):
            data.pop("provenance")
            data.pop("record_type", None)
            for f in data["files"]:
                f.pop("provenance")
        assert before == after
    assert len(again) == len(live) == 8


def test_real_sample_jobs_reforge_field_for_field(tmp_path: Path) -> None:
    path = REAL / "win11_qmgr.db"
    if not path.is_file():
        pytest.skip(f"real sample {path} is not available")
    jobs = list(api.read(path).jobs)
    report = forge(json.loads(json.dumps(spec_from_jobs(jobs))), tmp_path / "qmgr.db")
    again = api.read(report.database)
    assert again.errors == [] and len(again.jobs) == len(jobs)
    for before, after in zip(jobs, again.jobs):
        a, b = before.to_dict(), after.to_dict()
        for data in (a, b):
            data.pop("provenance")
            for f in data["files"]:
                f.pop("provenance")
        assert a == b


def test_planted_versions_are_exactly_what_recovery_finds(forged) -> None:
    spec, report = forged
    planted_jobs = {(p.record_id, p.modification_time, str(p.path), p.offset)
                    for p in report.planted if p.kind == "job"}
    assert {p.stored_in for p in report.planted} == {"db", "log"}
    assert report.log is not None and report.log.name == "edb.log"
    recovered = [job for job in api.parse(report.database, recover=True) if job.provenance.recovered]
    found = {(j.job_id, j.modification_time, j.provenance.source_path, j.provenance.offset) for j in recovered}
    assert found == planted_jobs
    assert len(recovered) == 3
    by_id = {(j.job_id, j.modification_time): j for j in recovered}
    for item in report.planted:
        if item.kind == "job":
            job = by_id[(item.record_id, item.modification_time)]
            assert encode_job(job) == encode_job(item.record)   # the whole record, not only the key
            assert job.provenance.recovered_from == ("db page" if item.stored_in == "db" else "log file")
    gone = by_id[(GONE, next(p.modification_time for p in report.planted if p.record_id == GONE))]
    planted_file = next(p for p in report.planted if p.kind == "file")
    assert [(f.file_id, f.provenance.offset) for f in gone.files] == [(planted_file.record_id, planted_file.offset)]
    assert encode_file(gone.files[0]) == encode_file(planted_file.record)
    # the same through the carving entry point, with the live rows as reference
    live = api.read(report.database)
    recovery = recover_source(report.database, live)
    assert {(j.job_id, j.provenance.offset) for j in recovery.jobs} == {(p[0], p[3]) for p in planted_jobs}
    assert recovery.history.orphan_files == []


def test_planted_bytes_sit_at_the_reported_offsets(forged) -> None:
    _, report = forged
    for item in report.planted:
        data = item.path.read_bytes()
        blob = encode_job(item.record) if item.kind == "job" else encode_file(item.record)
        assert data[item.offset:item.offset + len(blob)] == blob
        assert data[item.offset - 26:item.offset - 22] == b"\x01\x7f\x15\x00"
        assert data[item.offset - 22:item.offset - 6] == uuid.UUID(item.record_id).bytes_le


def test_forge_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = forge(small_spec(), tmp_path / "one" / "qmgr.db")
    second = forge(small_spec(), tmp_path / "two" / "qmgr.db")
    assert first.database.read_bytes() == second.database.read_bytes()
    assert first.log.read_bytes() == second.log.read_bytes()


# --------------------------------------------------------------------------- independent readers

pyesedb = pytest.importorskip("pyesedb")


def _tables_with_pyesedb(path: Path) -> dict:
    db = pyesedb.file()
    db.open(str(path))
    try:
        out = {}
        for table in db.tables:
            rows = {}
            if table.name in ("Jobs", "Files"):
                for index in range(table.number_of_records):
                    record = table.get_record(index)
                    rows[bytes(record.get_value_data(0))] = record.get_value_data_as_long_value(1).get_data()
            out[table.name] = ([(c.name, c.type, c.identifier) for c in table.columns], table.number_of_records,
                               rows)
        return out
    finally:
        db.close()


def _tables_with_dissect(path: Path) -> dict:
    ese = pytest.importorskip("dissect.database.ese")
    with path.open("rb") as handle:
        db = ese.ESE(handle)
        out = {}
        for table in db.tables():
            records = list(table.records())
            rows = {}
            if table.name in ("Jobs", "Files"):
                rows = {record.get("Id", raw=True): record.get("Blob") for record in records}
            out[table.name] = ([(c.name, c.type.value, c.identifier) for c in table.columns], len(records), rows)
        return out


def _assert_readers_agree(path: Path, jobs: list[Job]) -> None:
    via_libesedb = _tables_with_pyesedb(path)
    via_dissect = _tables_with_dissect(path)
    assert via_libesedb == via_dissect
    expected_jobs = {uuid.UUID(j.job_id).bytes_le: encode_job(j) for j in jobs}
    expected_files = {uuid.UUID(f.file_id).bytes_le: encode_file(f) for j in jobs for f in j.files}
    assert via_libesedb["Jobs"][2] == expected_jobs
    assert via_libesedb["Files"][2] == expected_files


def test_independent_readers_agree_on_forged_database(forged) -> None:
    spec, report = forged
    _assert_readers_agree(report.database, parse_spec(spec).jobs)


def test_long_blobs_get_a_chunk_size_both_readers_survive(tmp_path: Path) -> None:
    """Blobs spanning several LV chunks whose default chunk starts hit the risky bytes."""
    spec = small_spec()
    del spec["deleted"], spec["jobs"][0]["history"]
    # Custom-header bytes put 0x18 (pyesedb) and 0x10 (dissect, third chunk) at offsets 4050 and 8100.
    blob = bytearray(b"\x41" * 9000)
    spec["jobs"][0]["custom_headers"] = {"plain_length": 10, "blob_length": len(blob), "dpapi_blob": blob.hex()}
    job = parse_spec(copy.deepcopy(spec)).jobs[0]
    encoded = bytearray(encode_job(job))
    where = encoded.find(bytes(blob))
    for offset in (4050, 8100):
        blob[offset - where] = 0x18 if offset == 4050 else 0x10
    spec["jobs"][0]["custom_headers"]["dpapi_blob"] = blob.hex()
    parsed = parse_spec(spec)
    encoded = encode_job(parsed.jobs[0])
    assert encoded[4050] == 0x18 and encoded[8100] == 0x10
    assert reader_safe_chunk_size([encoded]) != 4050
    # The hazard is real: at Windows' 4050 both readers fail on this blob.
    risky = parse_spec(copy.deepcopy(spec))
    risky.lv_chunk_size = 4050
    forge(risky, tmp_path / "risky.db")
    with pytest.raises(OSError):
        _tables_with_pyesedb(tmp_path / "risky.db")
    try:
        wrong = _tables_with_dissect(tmp_path / "risky.db")["Jobs"][2] != {uuid.UUID(JOB_A).bytes_le: encoded}
    except Exception:  # noqa: BLE001 - a failed "decompression" is the other way it goes wrong
        wrong = True
    assert wrong
    report = forge(parsed, tmp_path / "qmgr.db")
    assert report.lv_chunk_size == reader_safe_chunk_size([encoded])
    _assert_readers_agree(report.database, parsed.jobs)
    assert api.read(report.database).jobs[0].custom_headers.dpapi_blob == bytes(blob)


def test_demo_spec_readers_agree(tmp_path: Path) -> None:
    spec = parse_spec(load_spec(DEMO_SPEC))
    report = forge(spec, tmp_path / "qmgr.db")
    _assert_readers_agree(report.database, spec.jobs)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("change, message", [
    (lambda s: s["jobs"][0].update(job_id="not-a-guid"), "jobs[0].job_id: 'not-a-guid' is not a GUID"),
    (lambda s: s["jobs"][0]["files"][0].update(file_id="1234"), "jobs[0].files[0].file_id: '1234' is not a GUID"),
    (lambda s: s["jobs"][0].update(state="RUNNING"), "jobs[0].state: unknown JobState name 'RUNNING'"),
    (lambda s: s["jobs"][0].update(priority="URGENT"), "jobs[0].priority: unknown JobPriority name 'URGENT'"),
    (lambda s: s["jobs"][0].update(priority=-1), "jobs[0].priority: -1 does not fit the field"),
    (lambda s: s["jobs"][0]["files"][0].update(bytes_total=2**70), "jobs[0].files[0].bytes_total: "),
    (lambda s: s["jobs"][0].update(min_retry_delay="soon"), "jobs[0].min_retry_delay: expected an integer"),
    (lambda s: s["jobs"][0].update(display_name="x" * 40000), "jobs[0].display_name: 40000 characters is too long"),
    (lambda s: s["jobs"][0].update(notify_flags=["NOPE"]), "jobs[0].notify_flags: unknown NotifyFlags name 'NOPE'"),
    (lambda s: s["jobs"][0].update(colour="red"), "jobs[0].colour: unknown field of Job"),
    (lambda s: s["jobs"][0].update(owner_sid="bob"), "jobs[0].owner_sid: 'bob' is not a SID"),
    (lambda s: s["jobs"][0].update(creation_time="yesterday"), "jobs[0].creation_time: 'yesterday' is not an ISO"),
    (lambda s: s["jobs"][0].update(owner_name="Bob"), "jobs[0].owner_name: the format cannot hold"),
    (lambda s: s["jobs"][0]["history"][0].update(stored_in="tape"), "jobs[0].history[0].stored_in"),
    (lambda s: s["jobs"][0]["history"][0].update(modification_time="2025-01-02T03:05:05+00:00",
                                                 state="TRANSFERRED"), "identical to the live row"),
    (lambda s: s["deleted"][0].update(job_id=JOB_A), "deleted[0].job_id: " + JOB_A + " is a live job"),
    (lambda s: s.update(extra=1), "extra: unknown top-level key"),
    (lambda s: s["deleted"][0]["files"][0].update(file_id="aaaaaaaa-2222-4333-8444-555555555501"),
     "deleted[0].files[0].file_id: aaaaaaaa-2222-4333-8444-555555555501 is already used by jobs[0].files[0]"),
    (lambda s: s.update(database={"lv_chunk_size": 9000}), "database.lv_chunk_size: expected an integer"),
    (lambda s: s["deleted"][0].update(type="UPLOAD"), "deleted[0].files[0]: upload-layout file records cannot"),
    (lambda s: s["jobs"][0]["history"][0].update(files=[]), "jobs[0].history[0].files: a history version cannot"),
    (lambda s: s["jobs"][1]["files"][0].update(layout="download"), "jobs[1].files[0].layout: 'download' file in"),
])
def test_invalid_specs_are_rejected_naming_the_field(change, message) -> None:
    spec = small_spec()
    change(spec)
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def _write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_cli_writes_database_and_reports_planted_offsets(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, small_spec())
    out = tmp_path / "out" / "qmgr.db"
    out.parent.mkdir()
    result = CliRunner().invoke(forge_command, [str(spec_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (out.parent / "edb.log").is_file()
    assert result.output.count("planted job") == 3 and "[deleted]" in result.output
    assert len(api.read(out).jobs) == 2


def test_cli_bad_spec_exits_2_with_one_line(tmp_path: Path) -> None:
    spec = small_spec()
    spec["jobs"][1]["type"] = "SIDEWAYS"
    spec_path = _write_spec(tmp_path, spec)
    result = CliRunner().invoke(forge_command, [str(spec_path), "-o", str(tmp_path / "qmgr.db")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "jobs[1].type: unknown JobType name 'SIDEWAYS'" in lines[0]
    assert not (tmp_path / "qmgr.db").exists()


def test_cli_refuses_to_overwrite(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, small_spec())
    runner = CliRunner()
    result = runner.invoke(forge_command, [str(spec_path), "-o", str(spec_path)])
    assert result.exit_code == 2 and "refusing to overwrite the spec itself" in result.output
    assert json.loads(spec_path.read_text()) == small_spec()
    evidence = tmp_path / "qmgr.db"
    evidence.write_bytes(b"evidence")
    result = runner.invoke(forge_command, [str(spec_path), "-o", str(evidence)])
    assert result.exit_code == 2 and "already exists (use --force" in result.output
    assert evidence.read_bytes() == b"evidence"
    result = runner.invoke(forge_command, [str(spec_path), "-o", str(evidence), "--force"])
    assert result.exit_code == 0 and len(api.read(evidence).jobs) == 2


def test_cli_folder_it_cannot_write_in_is_one_line(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    spec_path = _write_spec(tmp_path, small_spec())
    monkeypatch.setattr(tempfile, "mkdtemp", refused)       # a read-only folder, even for root
    result = CliRunner().invoke(forge_command, [str(spec_path), "-o", str(tmp_path / "q.db")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"bitsdb: error: {tmp_path / 'q.db'}: cannot write (Permission denied)"]


def test_cli_unreadable_or_malformed_spec(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(forge_command, [str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "q.db")])
    assert result.exit_code == 2 and "cannot read the spec" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs: [\n")
    result = runner.invoke(forge_command, [str(bad), "-o", str(tmp_path / "q.db")])
    assert result.exit_code == 2 and "not valid YAML/JSON" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_a_fifo_named_as_spec_or_rule_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Configuration is read only from regular files: opening a FIFO for reading would block for ever."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    demo = Path(__file__).resolve().parents[1] / "samples" / "demo"
    for args in (["forge", str(fifo), "-o", str(tmp_path / "q.db")], ["scan", "--rules", str(fifo), str(demo)]):
        done = subprocess.run([sys.executable, "-m", "bitsdb", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert "not a regular file (FIFO)" in line


def test_yaml_times_keep_seven_digits(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"jobs:\n  - job_id: {JOB_A}\n    creation_time: 2025-01-02T03:04:05.1234567+00:00\n")
    assert parse_spec(load_spec(path)).jobs[0].creation_time % 10_000_000 == 1234567
