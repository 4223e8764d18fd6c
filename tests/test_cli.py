"""The `bitsdb parse` command as a user meets it: formats, exit codes, one-line errors."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.output.csvout import COLUMNS


PAGE = 16384
SAMPLE_JOB = str(Path(__file__).resolve().parents[1] / "samples" / "synthetic" / "persistence_job.blob")


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("bitsdb: error:")]


@pytest.fixture
def win10(artemis):
    return artemis("win10_qmgr.db")


@pytest.fixture
def win11(artemis):
    return artemis("win11_qmgr.db")


def test_jsonl_one_object_per_job_with_nested_files(win10, win11):
    code, out, err = run("parse", str(win10), str(win11))
    assert code == 0 and err == ""
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["record_type"] for r in records] == ["job"] * 5
    first = records[0]
    assert first["display_name"] == "Chrome Component Updater"
    assert first["creation_time"] == "2022-12-21T02:18:03.1204654+00:00"
    assert isinstance(first["creation_time_filetime"], int)
    assert first["files"][0]["remote_name"].startswith("http://edgedl.me.gvt1.com/")
    assert first["provenance"]["source_sha256"] == sha(win10)
    assert first["notify_flags"]["names"] == ["JOB_TRANSFERRED", "JOB_ERROR"]


def test_json_is_an_array_and_deterministic(win11):
    code1, out1, _ = run("parse", "-f", "json", str(win11))
    code2, out2, _ = run("parse", "-f", "json", str(win11))
    assert code1 == code2 == 0 and out1 == out2
    data = json.loads(out1)
    assert isinstance(data, list) and len(data) == 4


def test_csv_one_row_per_job_and_file_in_ez_time_format(win10, win11):
    code, out, _ = run("parse", "-f", "csv", str(win10), str(win11))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == COLUMNS and len(rows) == 5
    assert rows[0]["CreationTime"] == "2022-12-21 02:18:03.1204654"
    assert rows[0]["RemoteLastModified"] == "2022-12-19 18:16:35.0000000"
    assert rows[0]["LocalName"].endswith(".crx3") and rows[0]["BytesTotal"] == "4782"
    assert rows[0]["CreatorImage"] == r"C:\Program Files\Chromium\Application\chrome.exe"


def test_table_is_readable(win10):
    code, out, _ = run("parse", "-f", "table", str(win10))
    assert code == 0
    assert "Chrome Component Updater" in out and "TRANSFERRED" in out and "chrome.exe" in out
    assert "-> C:\\Users\\bob\\AppData\\Local\\Temp" in out


def test_output_file_and_never_over_the_evidence(tmp_path, win10):
    target = tmp_path / "out.jsonl"
    code, out, _ = run("parse", str(win10), "-o", str(target))
    assert code == 0 and out == "" and json.loads(target.read_text())["record_type"] == "job"
    copy = tmp_path / "qmgr.db"
    shutil.copy(win10, copy)
    before = sha(copy)
    code, _, err = run("parse", str(copy), "-o", str(copy))
    assert code == 2 and "evidence is never overwritten" in err and sha(copy) == before


def test_folder_input_finds_the_database(tmp_path, win11):
    folder = tmp_path / "C" / "ProgramData" / "Microsoft" / "Network" / "Downloader"
    folder.mkdir(parents=True)
    shutil.copy(win11, folder / "qmgr.db")
    code, out, _ = run("parse", str(tmp_path))
    assert code == 0 and len(out.splitlines()) == 4


def _bad_inputs(tmp_path, win10, win11):
    data = win10.read_bytes()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.db").write_bytes(b"")
    (tmp_path / "truncated.db").write_bytes(data[:64 * 1024])
    (tmp_path / "random.bin").write_bytes(os.urandom(1 << 20))
    zeroed = bytearray(win11.read_bytes())
    for page in (37, 44):             # the pages holding the Jobs long values of the Win11 sample
        zeroed[page * PAGE:(page + 1) * PAGE] = bytes(PAGE)
    (tmp_path / "zeroed.db").write_bytes(bytes(zeroed))
    no_jobs = data.replace(b"Jobs", b"Jxbs")
    (tmp_path / "nojobs.db").write_bytes(no_jobs)
    return {
        "missing": (tmp_path / "missing.db", "no such file or directory"),
        "empty dir": (tmp_path / "empty", "directory holds no BITS files"),
        "empty file": (tmp_path / "empty.db", "empty file"),
        "truncated": (tmp_path / "truncated.db", "not a readable ESE database"),
        "random": (tmp_path / "random.bin", "not a BITS database"),
        "zeroed": (tmp_path / "zeroed.db", "blob unreadable"),
        "no Jobs": (tmp_path / "nojobs.db", "table Jobs: not in the catalog"),
    }


def test_each_bad_input_is_one_line_exit_1_and_good_inputs_still_processed(tmp_path, win10, win11):
    cases = _bad_inputs(tmp_path, win10, win11)
    hashes = {name: sha(path) for name, (path, _) in cases.items() if path.is_file()}
    for name, (path, message) in cases.items():
        code, out, err = run("parse", str(path), str(win10))
        assert code == 1, name
        lines = error_lines(err)
        assert lines and all(str(path) in line for line in lines), (name, err)
        assert message in lines[0], (name, lines)
        assert "Traceback" not in err
        jobs = [json.loads(line) for line in out.splitlines()]
        assert any(j.get("display_name") == "Chrome Component Updater" for j in jobs), name
    for name, digest in hashes.items():
        assert sha(cases[name][0]) == digest, f"{name} was modified"


def test_zeroed_long_value_pages_recover_the_jobs_from_the_tables_pages(tmp_path, win10, win11):
    """The Jobs rows' long values are gone: one error line names the table, and the jobs come back
    from the table's other pages, marked as recovered from a damaged table (the id-only stubs go)."""
    path, _ = _bad_inputs(tmp_path, win10, win11)["zeroed"]
    code, out, err = run("parse", str(path))
    records = [json.loads(line) for line in out.splitlines()]
    jobs = [r for r in records if r["record_type"] == "job"]
    lines = error_lines(err)
    assert code == 1 and len(lines) == 1
    assert "table Jobs: 4 row(s) whose blob cannot be read" in lines[0] and "recovered from its pages" in lines[0]
    live_ids = {"5c26fc39-0647-43cf-bd6b-2ca3125c7fb3", "8e4f897b-f5b3-433e-8864-87c44edaf7d0",
                "364e3f0d-0423-459b-919d-ac6ea17b4101"}
    assert live_ids <= {j["job_id"] for j in jobs}
    assert all(j["provenance"]["recovered_from"] == "damaged table" and j["display_name"] for j in jobs)


def test_usage_errors_exit_2():
    assert run("parse")[0] == 2
    assert run("parse", "-f", "xml", "x")[0] == 2


def test_real_samples_are_not_modified(win10, win11):
    before = [sha(win10), sha(win11)]
    run("parse", "-f", "table", str(win10), str(win11))
    assert [sha(win10), sha(win11)] == before


def test_console_entry_points_work(win10):
    proc = subprocess.run([sys.executable, "-m", "bitsdb", "parse", str(win10), "-f", "table"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Chrome Component Updater" in proc.stdout
    exe = shutil.which("bitsdb")
    if exe:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "bitsdb" in proc.stdout


def test_debug_shows_traceback_only_when_asked(tmp_path, monkeypatch, win10):
    import bitsdb.stores
    from bitsdb.sources.result import DEBUG_ENV

    monkeypatch.delenv(DEBUG_ENV, raising=False)     # --debug sets it; monkeypatch removes it afterwards
    monkeypatch.setenv(DEBUG_ENV, "")

    def boom(path, kind=None):
        raise RuntimeError("simulated decoder bug")

    monkeypatch.setattr(bitsdb.stores, "read", boom)
    code, _, err = run("parse", str(win10))
    assert code == 1 and "simulated decoder bug" in err and "Traceback" not in err and "--debug" in err
    code, _, err = run("parse", "--debug", str(win10))
    assert code == 1 and "Traceback" in err


def test_workers_and_progress_do_not_change_the_output(win10, win11):
    one = CliRunner().invoke(cli, ["parse", "--jobs", "1", "--no-progress", str(win10), str(win11)])
    two = CliRunner().invoke(cli, ["parse", "--jobs", "2", "--progress", str(win10), str(win11)])
    assert one.exit_code == two.exit_code == 0
    assert one.stdout == two.stdout and one.stderr == ""
    assert "2/2 item(s)" in two.stderr                     # the progress line
    assert "2 evidence item(s), 2 BITS store file(s)" in two.stderr and "0 item(s) with failures" in two.stderr


def test_a_rule_file_that_does_not_load_is_a_usage_error(tmp_path, win10):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: broken\n    when: {field: no_such_field, equals: 1}\n")
    for command in (["parse", "--with-findings"], ["timeline"], ["scan"]):
        code, out, err = run(*command, "--rules", str(bad), str(win10))
        assert code == 2 and str(bad) in err and "Traceback" not in err, command


def test_timeline_tags_only_with_findings(win10):
    tagged = [json.loads(line) for line in run("timeline", SAMPLE_JOB)[1].splitlines()]
    untagged = [json.loads(line) for line in run("timeline", "--no-findings", SAMPLE_JOB)[1].splitlines()]
    assert all("notify-command" in e["tag"] for e in tagged)
    assert all(e["tag"] == [] for e in untagged) and len(tagged) == len(untagged)


def test_a_reader_that_goes_away_ends_the_run_quietly(win10):
    """`bitsdb parse … | head`: when the pipe's reader leaves, the run ends with 141 (as SIGPIPE
    would) and no error line per record."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bitsdb", "parse", "--recover", "--jobs", "1", str(win10)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(100)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert b"error" not in err and b"Traceback" not in err


def test_a_closed_standard_output_is_a_usage_error(win10):
    """`bitsdb parse qmgr.db >&-`: one line, status 2, not an internal error."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "bitsdb", "parse", str(win10)], stderr=subprocess.PIPE,
                          preexec_fn=lambda: os.close(1), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == ["bitsdb: error: standard output is closed: give -o FILE"]
