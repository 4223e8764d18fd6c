"""Hostile evidence (issue 12): every test builds its own crafted input.

Classes: values that are not valid Unicode, zip members, evidence trees (links, FIFOs), the
output path, messages, signals. Each test checks that the evidence is unchanged and that
nothing is left in a private $TMPDIR.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.forge.spec import forge

PROJECT = Path(__file__).resolve().parents[1]
DEMO_DB = PROJECT / "samples" / "demo" / "qmgr.db"
DOWNLOADER = ("C", "ProgramData", "Microsoft", "Network", "Downloader")
EVIL_NAME = "evil\ud800name\x1b[31m\nbitsdb: error: forged"
JOB_ID = "11111111-2222-4333-8444-555555555555"


# ----------------------------------------------------------------------------- helpers

@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A private $TMPDIR for this test (also for in-process runs: tempfile reads it again)."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("bitsdb-"))


def tree_state(root: Path) -> dict[str, str]:
    """Every entry below root (links not followed): content hash, link target or kind."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                state[os.fsdecode(path)] = "link:" + os.fsdecode(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                state[os.fsdecode(path)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
            else:
                state[os.fsdecode(path)] = f"mode:{st.st_mode:o}"
    return state


def report_available() -> bool:
    """`bitsdb report` needs its extra (Jinja2, plotly)."""
    from bitsdb.report import MissingExtra, check_dependencies

    try:
        check_dependencies()
    except MissingExtra:
        return False
    return True


def demo_jobs() -> int:
    """How many jobs the demo store holds (read through the API, not assumed)."""
    import bitsdb

    return len(bitsdb.read(DEMO_DB).jobs)


def run(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout_bytes, result.stderr


def run_process(*args: str, tmpdir: Path, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "bitsdb", *map(str, args)], capture_output=True, env=env,
                          timeout=timeout, **kwargs)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("bitsdb: error:")]


def downloader(root: Path, host: str) -> Path:
    folder = root.joinpath(host, *DOWNLOADER)
    folder.mkdir(parents=True)
    return folder


def evil_spec() -> dict:
    """A job whose strings an attacker chose: lone surrogates, a terminal escape, a forged message line."""
    return {"bitsdb_forge": 1, "jobs": [{
        "job_id": JOB_ID, "display_name": EVIL_NAME, "owner_sid": "S-1-5-18", "state": "TRANSFERRED",
        "notify_program": "C:\\Windows\\System32\\cmd\udc00.exe", "notify_parameters": "/c x\u2028y",
        "creation_time": "2025-01-02T03:04:05+00:00", "modification_time": "2025-01-02T03:05:05+00:00",
        "files": [{"file_id": "11111111-2222-4333-8444-555555555556", "local_name": "C:\\Users\\Public\\a\udfff.exe",
                   "remote_name": "http://203.0.113.5/\ud83d", "bytes_total": 1, "bytes_transferred": 1}]}]}


@pytest.fixture
def evil_db(tmp_path) -> Path:
    folder = tmp_path / "evil"
    folder.mkdir()
    forge(evil_spec(), folder / "qmgr.db")
    return folder / "qmgr.db"


def utf16_hex(text: str) -> str:
    return text.encode("utf-16-le", "surrogatepass").hex()


# ----------------------------------------------------------------------------- 1. values

def test_lone_surrogates_never_stop_a_writer_and_the_raw_bytes_are_kept(evil_db, private_tmp):
    before = tree_state(evil_db.parent)
    outputs = {}
    for command, formats in (("parse", ("jsonl", "json", "csv", "table")),
                             ("timeline", ("timesketch", "timesketch-csv", "bodyfile", "ecs", "csv")),
                             ("scan", ("jsonl", "csv", "table"))):
        for fmt in formats:
            status, out, err = run(command, "-f", fmt, evil_db)
            assert status == 0, (command, fmt, err)
            outputs[command, fmt] = out.decode("utf-8")             # strict: valid UTF-8 or this raises
    job = json.loads(outputs["parse", "jsonl"])
    assert job["display_name"] == EVIL_NAME.replace("\ud800", "\ufffd")
    assert job["raw_strings"]["display_name"] == utf16_hex(EVIL_NAME)
    assert job["files"][0]["raw_strings"] == {"local_name": utf16_hex("C:\\Users\\Public\\a\udfff.exe"),
                                              "remote_name": utf16_hex("http://203.0.113.5/\ud83d")}
    assert json.loads(outputs["parse", "json"])[0]["raw_strings"] == job["raw_strings"]
    row = next(csv.DictReader(io.StringIO(outputs["parse", "csv"])))
    assert f"display_name={utf16_hex(EVIL_NAME)}" in row["RawStrings"]
    assert "file.local_name=" in row["RawStrings"]
    for fmt in ("timesketch", "ecs"):
        for line in outputs["timeline", fmt].splitlines():
            json.loads(line)
    assert "\x1b" not in outputs["parse", "table"] and "\x1b" not in outputs["scan", "table"]
    assert "raw bytes     display_name = " + utf16_hex(EVIL_NAME) in outputs["parse", "table"]
    if report_available():
        page = evil_db.parent.parent / "report.html"
        status, _, err = run("report", "-o", page, evil_db)
        assert status == 0, err
        text = page.read_bytes().decode("utf-8")                            # the HTML report too: valid UTF-8
        assert "evil\\ufffdname" in text                                   # its JSON data block is ASCII
    assert tree_state(evil_db.parent) == before and leftovers(private_tmp) == []


def test_legacy_state_file_with_an_inserted_byte_still_gives_valid_output(tmp_path, private_tmp):
    from bitsdb.forge.legacy import legacy_samples

    for name, data in legacy_samples("win10").items():
        (tmp_path / name).write_bytes(data)
    target = tmp_path / "qmgr0.dat"
    data = bytearray(target.read_bytes())
    at = data.find("WindowsUpdateCheck".encode("utf-16-le"))
    assert at > 0
    data.insert(at + 3, 0xD8)                       # one byte: the name's units shift into lone surrogates
    target.write_bytes(bytes(data))
    outputs = {}
    for fmt in ("jsonl", "csv", "table"):
        status, out, err = run("parse", "-f", fmt, "--recover", tmp_path / "qmgr0.dat", tmp_path / "qmgr1.dat")
        assert status in (0, 1) and "internal error" not in err
        outputs[fmt] = out.decode("utf-8")
    hit = [r for r in map(json.loads, outputs["jsonl"].splitlines()) if "display_name" in r.get("raw_strings", {})]
    assert hit and all("\ufffd" in r["display_name"] for r in hit)
    assert any("raw bytes     display_name" in line for line in outputs["table"].splitlines())


def test_legacy_encoder_rebuilds_a_lone_surrogate_exactly():
    from bitsdb.decode.legacy import decode_legacy_record
    from bitsdb.forge.legacy import encode_legacy_job
    from bitsdb.model import Job, JobFile

    job = Job(job_id=JOB_ID, display_name="a\udc80b", owner_sid="S-1-5-18", file_ids=[],
              files=[JobFile(file_id=None, local_name="C:\\\ud800.exe", remote_name="http://x/", temp_name="")])
    blob = encode_legacy_job(job)
    again, _ = decode_legacy_record(blob)
    assert again.display_name == "a\ufffdb" and again.raw_strings == {"display_name": utf16_hex("a\udc80b")}
    assert again.files[0].local_name == "C:\\\ufffd.exe"
    assert encode_legacy_job(again) == blob


def test_folder_names_that_are_not_utf8_give_valid_output_with_their_bytes(tmp_path, private_tmp):
    root = tmp_path / "case"
    bad_host = os.fsencode(root) + b"/host\xff\xfe"
    folder = os.path.join(bad_host, *[os.fsencode(p) for p in DOWNLOADER])
    os.makedirs(folder)
    with open(os.path.join(folder, b"qmgr.db"), "wb") as handle:
        handle.write(DEMO_DB.read_bytes())
    before = tree_state(root)
    status, out, err = run("parse", root)
    assert status == 0, err
    first = json.loads(out.decode("utf-8").splitlines()[0])
    provenance = first["provenance"]
    assert "\ufffd\ufffd" in provenance["source_path"] and provenance["host"] == "host\ufffd\ufffd"
    assert bytes.fromhex(provenance["raw_strings"]["source_path"]) == os.path.join(folder, b"qmgr.db")
    assert provenance["source_sha256"] == hashlib.sha256(DEMO_DB.read_bytes()).hexdigest()
    out_file = tmp_path / "out.csv"
    status, _, err = run("parse", "-f", "csv", "-o", out_file, root)
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out_file.read_bytes().decode("utf-8"))))
    assert rows and all("provenance.source_path=" in r["RawStrings"] for r in rows)
    for fmt in ("table", "jsonl"):
        run("timeline", "-f", "bodyfile", root)[1].decode("utf-8")
        run("parse", "-f", fmt, root)[1].decode("utf-8")
    assert tree_state(root) == before and leftovers(private_tmp) == []


def test_a_record_that_cannot_be_written_is_one_line_and_the_run_goes_on(evil_db, tmp_path, monkeypatch):
    from bitsdb.output.jsonout import JsonLinesWriter

    original = JsonLinesWriter._job

    def refuse_one(self, job):
        if job.job_id == "0b4d6a1e-5c3f-4e2a-9a71-1c2d3e4f5a01":
            self.stream.write('{"half": ')            # a record cut short must never reach the output
            raise ValueError("cannot format this record")
        original(self, job)

    monkeypatch.setattr(JsonLinesWriter, "_job", refuse_one)
    out = tmp_path / "out.jsonl"
    status, _, err = run("parse", "-o", out, DEMO_DB, evil_db)
    assert status == 1
    errors = error_lines(err)
    assert len(errors) == 1 and str(DEMO_DB) in errors[0] and "0b4d6a1e-5c3f-4e2a-9a71-1c2d3e4f5a01" in errors[0]
    assert "not written (ValueError: cannot format this record)" in errors[0]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert JOB_ID in {r["job_id"] for r in records}                     # the next input is still there
    assert "0b4d6a1e-5c3f-4e2a-9a71-1c2d3e4f5a01" not in {r["job_id"] for r in records}
    assert len(records) == demo_jobs() - 1 + 1                          # demo: one refused; evil: 1


# ----------------------------------------------------------------------------- 2. archives

def zip_with(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def test_zip_member_names_never_become_paths(tmp_path, private_tmp):
    escape = f"bitsdb-escape-{os.getpid()}-{time.monotonic_ns()}"
    inside = "host1/" + "/".join(DOWNLOADER) + "/"
    members = {
        inside + "qmgr.db": DEMO_DB.read_bytes(),
        inside + f"..%2F..%2F..%2F..%2F..%2F..%2F{escape}a.jrs": b"x" * 64,
        inside + f"%2Ftmp%2F{escape}b.jrs": b"x" * 64,
        inside + f"..\\..\\..\\..\\{escape}c.jrs": b"x" * 64,
        f"/tmp/{escape}d/" + "/".join(DOWNLOADER) + "/qmgr.db": DEMO_DB.read_bytes(),
        "C:\\" + "\\".join(DOWNLOADER[1:]) + "\\edb.log": b"x" * 64,
        "../../../../" + "/".join(DOWNLOADER) + "/qmgr.db": DEMO_DB.read_bytes(),
        inside + "A" * 300 + ".jrs": b"x" * 64,
        inside + "nulXname.jrs": b"x" * 64,
    }
    archive = zip_with(tmp_path / "traversal.zip", members)
    data = archive.read_bytes().replace(b"nulXname", b"nul\x00name")   # a NUL inside a member name
    archive.write_bytes(data)
    before = tree_state(tmp_path)
    status, out, err = run("parse", archive)
    records = [json.loads(line) for line in out.decode("utf-8").splitlines()]
    assert len({r["provenance"]["source_path"] for r in records}) == 3      # the three qmgr.db members
    assert all(r["provenance"]["container"] == str(archive) for r in records)
    assert f"{escape}a.jrs: not a plain file name: not extracted" in err
    assert f"{escape}b.jrs: not a plain file name" in err and f"{escape}c.jrs" in err
    assert "names with '..', absolute or drive components" in err
    assert not list(Path("/tmp").glob(f"{escape}*")) and not list(tmp_path.rglob(f"{escape}*"))
    assert status == 0, err
    assert tree_state(tmp_path) == before and leftovers(private_tmp) == []


def bomb(path: Path, name: str, size: int, extra: dict[str, bytes] | None = None) -> Path:
    """A member of `size` zero bytes (deflate packs them about 1:1000), written in chunks."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(info, "w", force_zip64=size > 0x7FFFFFFF) as member:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                member.write(chunk)
        for member_name, data in (extra or {}).items():
            archive.writestr(member_name, data)
    return path


def test_a_zip_bomb_is_refused_and_the_rest_of_the_zip_is_read(tmp_path, private_tmp):
    archive = bomb(tmp_path / "bomb.zip", "h1/" + "/".join(DOWNLOADER) + "/qmgr.db", 300 << 20,
                   {"h2/" + "/".join(DOWNLOADER) + "/qmgr.db": DEMO_DB.read_bytes()})
    before = tree_state(tmp_path)
    status, out, err = run("parse", archive)
    assert status == 1
    errors = error_lines(err)
    assert len(errors) == 1 and "h1/" in errors[0] and "refused: expands 1:" in errors[0]
    assert "BITSDB_MAX_RATIO" in errors[0]
    assert len(out.decode().splitlines()) == demo_jobs()             # h2's jobs are still read
    assert tree_state(tmp_path) == before and leftovers(private_tmp) == []


@pytest.mark.slow
def test_the_3_gb_bomb_is_refused_before_anything_is_written(tmp_path, private_tmp):
    archive = bomb(tmp_path / "big.zip", "host/" + "/".join(DOWNLOADER) + "/qmgr.db", 3 << 30)
    assert archive.stat().st_size < 4 << 20
    started = time.monotonic()
    status, _, err = run("parse", archive)
    assert status == 1 and "refused: expands 1:10" in err and time.monotonic() - started < 20
    assert leftovers(private_tmp) == []


def test_the_total_extraction_limit_and_its_setting(tmp_path, private_tmp, monkeypatch):
    archive = zip_with(tmp_path / "t.zip", {"h/" + "/".join(DOWNLOADER) + "/qmgr.db": DEMO_DB.read_bytes()})
    monkeypatch.setenv("BITSDB_MAX_EXTRACT", "100K")
    status, out, err = run("parse", archive)
    assert status == 1 and out == b"" and "BITSDB_MAX_EXTRACT" in error_lines(err)[0]
    monkeypatch.setenv("BITSDB_MAX_EXTRACT", "2M")
    assert run("parse", archive)[0] == 0
    monkeypatch.setenv("BITSDB_MAX_EXTRACT", "lots")
    status, _, err = run("parse", archive)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "BITSDB_MAX_EXTRACT" in err
    assert leftovers(private_tmp) == []


def set_encrypted_flag(archive: Path, names: set[str]) -> None:
    """Mark members as encrypted (bit 0 of the flags in the local and the central header)."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if info.filename in names:
                data[info.header_offset + 6] |= 1
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (name_length,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46:at + 46 + name_length].decode() in names:
            data[at + 8] |= 1
        at = data.find(b"PK\x01\x02", at + 46)
    archive.write_bytes(bytes(data))


def test_encrypted_and_nested_members_are_named(tmp_path, private_tmp):
    inside = "h/" + "/".join(DOWNLOADER) + "/"
    archive = zip_with(tmp_path / "e.zip", {inside + "qmgr.db": DEMO_DB.read_bytes(), inside + "edb.log": b"L" * 99,
                                            "other/inner.zip": b"PK\x05\x06" + bytes(18),
                                            "disks/disk.E01": b"EVF", "secret.txt": b"s"},
                       compression=zipfile.ZIP_STORED)
    set_encrypted_flag(archive, {inside + "edb.log", "secret.txt"})
    status, out, err = run("parse", archive)
    assert "nested archives or images are not opened" in err and "other/inner.zip" in err and "disks/disk.E01" in err
    assert "encrypted members cannot be read" in err and "secret.txt" in err and "edb.log" in err
    assert status == 0 and len(out.decode().splitlines()) == demo_jobs()
    assert leftovers(private_tmp) == []


# ----------------------------------------------------------------------------- 3. evidence trees

def test_links_and_special_files_inside_a_tree_are_never_followed_or_opened(tmp_path, private_tmp):
    outside = tmp_path / "outside"
    forge(evil_spec(), downloader(outside, "victim") / "qmgr.db")
    root = tmp_path / "collection"
    good = downloader(root, "good")
    good.joinpath("qmgr.db").write_bytes(DEMO_DB.read_bytes())
    downloader(root, "linked").joinpath("qmgr.db").symlink_to(outside / "victim" / Path(*DOWNLOADER) / "qmgr.db")
    (root / "dirlink").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "disk.raw")                                     # named like an image: opening it blocks
    os.mkfifo(good / "edb.log")
    sock_path = root / "s.sock"
    sock = socket.socket(socket.AF_UNIX) if len(os.fsencode(sock_path)) < 100 else None
    if sock:
        sock.bind(str(sock_path))
    try:
        before = tree_state(tmp_path)
        done = run_process("parse", "--recover", root, tmpdir=private_tmp, timeout=60)
    finally:
        if sock:
            sock.close()
    err = done.stderr.decode()
    records = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert done.returncode == 0, err
    assert len(records) >= demo_jobs() and JOB_ID not in {r["job_id"] for r in records}     # only the collection's own store
    assert {r["provenance"]["host"] for r in records} == {"good"}
    warnings = [line for line in err.splitlines() if line.startswith("bitsdb: warning:")]
    for name, kind in (("linked", "symbolic link"), ("dirlink", "symbolic link"), ("disk.raw", "FIFO"),
                       ("edb.log", "FIFO")) + ((("s.sock", "socket"),) if sock else ()):
        assert any(name in w and kind in w for w in warnings), (name, warnings)
    assert tree_state(tmp_path) == before and leftovers(private_tmp) == []


def test_inputs_named_on_the_command_line(tmp_path, private_tmp):
    link = tmp_path / "named-link.db"
    link.symlink_to(DEMO_DB)
    fifo = tmp_path / "disk.raw"
    os.mkfifo(fifo)
    status, out, err = run("parse", link)                         # a link the user names is followed
    assert status == 0 and len(out.decode().splitlines()) == demo_jobs()
    done = run_process("parse", fifo, tmpdir=private_tmp, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [f"bitsdb: error: {fifo}: not a regular file or folder (FIFO): not read"]
    done = run_process("carve", fifo, tmpdir=private_tmp, timeout=60)
    assert done.returncode == 1 and "FIFO" in done.stderr.decode()
    beside = tmp_path / "named"
    beside.mkdir()
    (beside / "qmgr.db").write_bytes(DEMO_DB.read_bytes())
    (beside / "edb.log").symlink_to(tmp_path / "outside.log")      # a log beside a named database: not read
    (tmp_path / "outside.log").write_bytes(b"x" * 4096)
    for command in (("parse", "--recover", beside / "qmgr.db"), ("carve", beside)):
        done = run_process(*command, tmpdir=private_tmp, timeout=60)
        warnings = [line for line in done.stderr.decode().splitlines() if "edb.log" in line]
        assert done.returncode == 0 and warnings == [f"bitsdb: warning: {beside / 'edb.log'}: symbolic link not "
                                                     "followed or opened (evidence links and special files are "
                                                     "skipped)"], done.stderr
    import bitsdb
    from bitsdb.sources.result import SourceError

    with pytest.raises(SourceError, match=r"not a regular file \(FIFO\)"):
        bitsdb.read(fifo)                             # the API never opens it either


# ----------------------------------------------------------------------------- 4. output path

def test_output_is_never_written_into_the_evidence(tmp_path, private_tmp):
    root = tmp_path / "case"
    folder = downloader(root, "h")
    folder.joinpath("qmgr.db").write_bytes(DEMO_DB.read_bytes())
    folder.joinpath("edb.log").write_bytes(b"log" * 100)
    (tmp_path / "into").symlink_to(folder, target_is_directory=True)
    before = tree_state(root)
    refused = [("parse", folder / "out.jsonl", root), ("timeline", folder / "deep.csv", root),
               ("scan", root / "h" / "x.txt", root), ("carve", folder / "c.jsonl", root),
               ("parse", tmp_path / "into" / "via-link.jsonl", root),
               ("parse", folder / "qmgr.db", folder / "qmgr.db"),
               ("parse", folder / "edb.log", folder / "qmgr.db"),          # a log beside a named database
               ("parse", tmp_path / "into" / "qmgr.db", folder / "qmgr.db")]
    if report_available():
        refused.append(("report", folder / "r.html", root))
    for command, target, evidence in refused:
        status, out, err = run(command, "-o", target, evidence)
        assert status == 2, (command, target, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("bitsdb: error: ")
        assert "refusing to write the output here" in err
    assert tree_state(root) == before
    assert not [p for p in tmp_path.rglob("*bitsdb-tmp")] and leftovers(private_tmp) == []


def test_output_appears_only_when_complete(tmp_path, private_tmp):
    out = tmp_path / "out.json"
    out.write_text("previous run\n")
    status, _, err = run("parse", "-f", "json", "-o", out, DEMO_DB)
    assert status == 0, err
    assert len(json.loads(out.read_text())) == demo_jobs()
    assert [p.name for p in tmp_path.iterdir() if p.name != "tmpdir"] == ["out.json"]    # no temporary file left
    assert run("parse", "-o", os.devnull, DEMO_DB)[0] == 0                              # a device: written in place
    assert os.path.exists(os.devnull) and not stat.S_ISREG(os.stat(os.devnull).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_an_output_that_fills_is_one_line_also_when_it_fills_at_the_end(tmp_path, private_tmp):
    """A small output is buffered and reaches the disk only when the writer closes: that failure is the
    same one line and status 1 as one in the middle of the run, never an internal error."""
    commands = [["parse"], ["parse", "-f", "csv"], ["timeline", "-f", "bodyfile"], ["scan"], ["carve", "-f", "csv"]]
    if report_available():
        commands.append(["report"])
    for command in commands:
        status, _, err = run(*command, "-o", "/dev/full", DEMO_DB)
        assert status == 1, (command, err)
        assert len(error_lines(err)) == 1 and "internal error" not in err, (command, err)
        assert error_lines(err)[0].endswith(": cannot write (No space left on device)"), command
        assert error_lines(err) == ["bitsdb: error: /dev/full: cannot write (No space left on device)"], command


# ----------------------------------------------------------------------------- 5. messages

def test_each_problem_is_one_line_and_a_name_cannot_forge_one(tmp_path, private_tmp):
    names = ["nl\nbitsdb: error: forged", "cr\rbitsdb: error: forged", "esc\x1b[2Jclear", "sep\u2028line",
             "bidi\u202eexe.txt"]
    inputs = []
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "qmgr.db").write_bytes(b"not a database" * 10)
        inputs.append(folder / "qmgr.db")
    status, _, err = run("parse", *inputs)
    assert status == 1
    lines = err.splitlines()
    assert not any(line.startswith("bitsdb: error: forged") for line in lines)
    assert len(error_lines(err)) == len(names)
    for line in lines:
        assert not any(ch in line for ch in "\r\x1b\u2028\u202e"), repr(line)
    assert "nl\\x0abitsdb: error: forged" in err and "esc\\x1b[2Jclear" in err and "sep\\u2028line" in err
    bad = os.fsencode(tmp_path) + b"/bytes\xff"
    os.mkdir(bad)
    with open(bad + b"/qmgr.db", "wb") as handle:
        handle.write(b"junk" * 10)
    status, _, err = run("parse", os.fsdecode(bad))
    assert err.splitlines() == [f"bitsdb: error: {tmp_path}/bytes\\xff/qmgr.db: not a BITS database, state file "
                                "or job/file record (unrecognised content)"]


def test_one_bad_input_is_one_line_several_get_a_summary(tmp_path, private_tmp):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"x" * 100)
    status, _, err = run("parse", bad)
    assert status == 1 and len(err.splitlines()) == 1
    status, _, err = run("parse", bad, DEMO_DB)
    assert status == 1 and len(error_lines(err)) == 1 and "1 item(s) with failures" in err
    status, _, err = run("parse", "--progress", DEMO_DB)
    assert status == 0 and "1 evidence item(s)" in err


def test_the_api_raises_only_source_errors_for_paths_it_cannot_look_at(tmp_path):
    import bitsdb
    from bitsdb.sources.result import SourceError

    loop = tmp_path / "loop.db"
    loop.symlink_to(loop)
    for path, reason in ((tmp_path / ("x" * 5000), "cannot read (File name too long)"),
                         (loop, "cannot read (Too many levels of symbolic links)"),
                         (tmp_path / "missing.db", "no such file or directory"),
                         (tmp_path, "is a directory")):
        with pytest.raises(SourceError) as raised:          # never a bare OSError
            bitsdb.read(path)
        assert str(raised.value).startswith(reason)


# ----------------------------------------------------------------------------- 6. signals

def _wait_for(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before it could be interrupted: make it slower"
        assert time.monotonic() < deadline, "timed out waiting for the run to reach the point of interruption"
        time.sleep(0.02)


def _interrupt(args: list, private_tmp: Path, condition, signum: int, whole_group: bool):
    """Run bitsdb, wait until `condition()` holds, send the signal; (status, stderr lines)."""
    env = {**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen([sys.executable, "-m", "bitsdb", *map(str, args)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        _wait_for(condition, process)
        if whole_group:
            os.killpg(process.pid, signum)              # Ctrl-C on a terminal: every process of the group
        else:
            os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)                     # no worker process outlives the run
    err = stderr.decode()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    return process.returncode, err.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("signum, jobs, whole_group", [(signal.SIGTERM, 2, False), (signal.SIGINT, 2, True),
                                                       (signal.SIGTERM, 1, False)])
def test_an_interrupted_read_removes_every_copy_and_leaves_no_output(tmp_path, private_tmp, signum, jobs,
                                                                     whole_group):
    evidence = tmp_path / "zips"
    evidence.mkdir()
    db = DEMO_DB.read_bytes()
    for index in range(80):                           # many inputs, each copied out and carved: seconds of work
        zip_with(evidence / f"host{index:03}.zip", {f"host{index}/" + "/".join(DOWNLOADER) + "/qmgr.db": db},
                 compression=zipfile.ZIP_STORED)
    before = tree_state(evidence)
    out = tmp_path / "out.jsonl"
    # Interrupt while a worker holds a copy in the run's private folder.
    status, lines = _interrupt(["parse", "--recover", "--jobs", jobs, "-o", out, evidence], private_tmp,
                               lambda: list(private_tmp.glob("bitsdb-run-*/bitsdb-evidence-*")), signum, whole_group)
    assert status == 128 + signum
    assert lines == [f"bitsdb: interrupted by {signal.Signals(signum).name}; {out} was not written"]
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*")) and not list(tmp_path.glob(".out.jsonl.*"))
    assert leftovers(private_tmp) == [] and tree_state(evidence) == before


@pytest.mark.slow
def test_an_interrupted_write_keeps_the_complete_records_apart(tmp_path, private_tmp):
    inputs = []
    for index in range(150):                          # carve writes each input's records as it goes
        inputs.append(tmp_path / f"copy{index:03}.db")
        inputs[-1].write_bytes(DEMO_DB.read_bytes())
    out = tmp_path / "out.json"
    status, lines = _interrupt(["carve", "-f", "json", "-o", out, *inputs], private_tmp,
                               lambda: any(p.stat().st_size for p in tmp_path.glob(".out.json.*.bitsdb-tmp")),
                               signal.SIGTERM, False)
    assert status == 143
    assert lines[-1].startswith("bitsdb: interrupted by SIGTERM; ") and lines[-1].endswith(f"kept in {out}.partial")
    assert not [line for line in lines if line.startswith("bitsdb: interrupted") and line != lines[-1]]
    partial = json.loads((tmp_path / "out.json.partial").read_text(encoding="utf-8"))   # a closed JSON array
    kept = int(lines[-1].split("; ")[1].split()[0])
    assert len(partial) == kept > 0 and not out.exists() and not list(tmp_path.glob(".out.json.*"))
    assert leftovers(private_tmp) == []


def test_files_an_image_library_would_open_beside_an_image_must_be_plain(tmp_path, private_tmp):
    pytest.importorskip("dfvfs", reason="disk images need the optional extra: pip install 'bitsdb[images]'")
    split = tmp_path / "split"
    split.mkdir()
    (split / "disk.E01").write_bytes(b"EVF\x09\x0d\x0a\xff\x00" + bytes(600))
    os.mkfifo(split / "disk.E02")                    # the EWF library would open (and block on) this segment
    vmdk = tmp_path / "vmdk"
    vmdk.mkdir()
    (vmdk / "disk.vmdk").write_text('# Disk DescriptorFile\nversion=1\nRW 2048 FLAT "../../../etc/passwd" 0\n')
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "disk.vmdk").write_text('# Disk DescriptorFile\nversion=1\nRW 2048 FLAT "disk-flat.vmdk" 0\n')
    (linked / "disk-flat.vmdk").symlink_to("/etc/hostname")
    before = tree_state(tmp_path)
    done = run_process("parse", split / "disk.E01", vmdk / "disk.vmdk", linked / "disk.vmdk", tmpdir=private_tmp,
                       timeout=60)
    errors = error_lines(done.stderr.decode())
    assert done.returncode == 1 and len(errors) == 3, done.stderr
    assert "disk image not opened: disk.E02 beside it is a FIFO" in errors[0]
    assert "names extent '../../../etc/passwd', not a file of its folder" in errors[1]
    assert "disk-flat.vmdk beside it is a symbolic link" in errors[2]
    done = run_process("carve", split / "disk.E01", tmpdir=private_tmp, timeout=60)       # carving opens it too
    assert done.returncode == 1 and "disk.E02 beside it is a FIFO" in done.stderr.decode()
    assert tree_state(tmp_path) == before and leftovers(private_tmp) == []
