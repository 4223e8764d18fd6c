"""Timeline outputs checked by their consumers' own rules: mactime itself, the Timesketch
server's import checks, and the published ECS 9.4.0 field definitions."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.decode import decode_job_blob
from bitsdb.forge.samples import persistence_job
from bitsdb.model import Provenance
from bitsdb.output.bodyfile import epoch_seconds
from bitsdb.timeline.jobs import (
    COMPLETED,
    CREATED,
    EVENT_KINDS,
    EXPIRES,
    MODIFIED,
    REMOTE_MODIFIED,
    VERSION_RECOVERED,
    expand_job,
)

from conftest import SHARED_SAMPLES

SAMPLE = "samples/synthetic/persistence_job.blob"
ECS_ALLOWED_EVENT_TYPES = {"creation", "change", "end", "info", "error"}


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def win10(artemis):
    return str(artemis("win10_qmgr.db"))


def test_real_job_gives_the_documented_events(win10):
    import bitsdb

    (job,) = bitsdb.parse(win10)
    events = expand_job(job)
    assert [e.kind for e in events] == [REMOTE_MODIFIED, CREATED, MODIFIED, COMPLETED, EXPIRES]
    assert [e.filetime for e in events] == [job.files[0].remote_last_modified, job.creation_time,
                                            job.modification_time, job.completion_time, job.expiration_time]
    created = events[1]
    assert created.message.startswith("BITS job created: BITS download job 'Chrome Component Updater'")
    assert "created by C:\\Program Files\\Chromium\\Application\\chrome.exe" in created.message
    assert "http://edgedl.me.gvt1.com/" in created.message and "-> C:\\Users\\bob" in created.message


def test_unset_times_give_no_event_and_recovered_versions_are_named():
    job, jf = persistence_job()
    job.files = [jf]
    kinds = [e.kind for e in expand_job(job)]
    assert COMPLETED not in kinds                      # completion_time is 0 for this ERROR job
    assert kinds.count(MODIFIED) == 1
    job.provenance = Provenance(source_path="x", recovered=True, recovered_from="db page", offset=4096)
    events = expand_job(job, ["notify-command"])
    assert VERSION_RECOVERED in [e.kind for e in events] and MODIFIED not in [e.kind for e in events]
    assert all(e.tags == ["notify-command"] for e in events)
    assert "recovered from db page" in events[0].message


def test_vocabulary_is_unique_and_ecs_types_are_allowed():
    assert len({k.timestamp_desc for k in EVENT_KINDS}) == len(EVENT_KINDS)
    assert len({k.action for k in EVENT_KINDS}) == len(EVENT_KINDS)
    assert {k.ecs_type for k in EVENT_KINDS} <= ECS_ALLOWED_EVENT_TYPES


# ------------------------------------------------------------------ Timesketch

def _check_timesketch_row(row: dict) -> None:
    """What timesketch/lib/utils.py requires before it indexes an event."""
    for field in ("message", "datetime", "timestamp_desc"):
        assert row.get(field) not in (None, ""), field
    when = datetime.fromisoformat(row["datetime"])
    assert when.tzinfo is not None and when.utcoffset().total_seconds() == 0
    micros = int(row["timestamp"])
    assert micros == int((when - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 10**6)
    assert micros == (int(row["filetime"]) - 116444736000000000) // 10


@pytest.mark.parametrize("fmt", ["timesketch", "timesketch-csv"])
def test_timesketch_files_pass_the_server_checks(fmt, win10):
    out = run("timeline", "-f", fmt, win10, SAMPLE)
    rows = [json.loads(line) for line in out.splitlines()] if fmt == "timesketch" \
        else list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5 + 4            # Chrome job: 5 events; the sample: created, modified, error, expires
    for row in rows:
        _check_timesketch_row(row)
        assert row["data_type"] in ("windows:bits:job", "windows:bits:file")
    sample = [r for r in rows if r["display_name"] == "WindowsUpdateCheck"]
    tags = sample[0]["tag"] if fmt == "timesketch" else sample[0]["tag"].split(",")
    assert "notify-command" in tags
    assert {r["timestamp_desc"] for r in sample} == {"BITS job created", "BITS job modified",
                                                    "BITS transfer error", "BITS job expires"}
    if fmt == "timesketch":
        assert sample[0]["notify_program"] == r"C:\Windows\System32\cmd.exe"
        assert sample[0]["creation_time"] == "2025-03-14T09:26:53.5897932+00:00"   # 7 digits kept here


# ------------------------------------------------------------------ mactime

@pytest.mark.tool
def test_mactime_renders_the_bodyfile(tmp_path, win10):
    if shutil.which("mactime") is None:
        pytest.skip("mactime not installed (Debian package sleuthkit; .ci/run installs it)")
    body = tmp_path / "bits.body"
    body.write_text(run("timeline", "-f", "bodyfile", win10, SAMPLE))
    lines = body.read_text().splitlines()
    assert all(len(line.split("|")) == 11 for line in lines)
    proc = subprocess.run(["mactime", "-b", str(body), "-d", "-y", "-z", "UTC", "1990-01-01..2100-12-31"],
                          capture_output=True, text=True, timeout=60, check=True)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0][:3] == ["Date", "Size", "Type"]
    by_time = {(r[0], r[2]) for r in rows[1:]}
    job, _ = persistence_job()
    for filetime, macb in ((job.creation_time, "...b"), (job.modification_time, "m..."),
                           (job.expiration_time, "m...")):
        when = datetime.fromtimestamp(epoch_seconds(filetime), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (when, macb) in by_time
    assert ("2022-12-21T02:18:43Z", "ma..") in by_time        # Chrome job modified + completed
    assert ("2022-12-19T18:16:35Z", "m...") in by_time        # its file's remote Last-Modified
    assert any("notify: C:\\Windows\\System32\\cmd.exe" in r[-1] for r in rows[1:])


def test_bodyfile_has_no_stray_pipes():
    job, jf = persistence_job()
    job.display_name = "a|b"
    job.files = [jf]
    from bitsdb.output.bodyfile import BodyfileWriter

    stream = io.StringIO()
    BodyfileWriter(stream).write_job(job)
    assert all(len(line.split("|")) == 11 for line in stream.getvalue().splitlines())


# ------------------------------------------------------------------ ECS

@pytest.fixture(scope="module")
def ecs_fields():
    yaml = pytest.importorskip("yaml")
    path = SHARED_SAMPLES / "reference" / "ecs-9.4.0" / "ecs_flat.yml"
    if not path.exists():
        pytest.skip(f"{path} not available")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def _leaves(doc, prefix=""):
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and key != "bits" or isinstance(value, dict) and prefix:
            yield from _leaves(value, name)
        else:
            yield name, value


TYPE_CHECKS = {
    "keyword": lambda v: isinstance(v, str), "constant_keyword": lambda v: isinstance(v, str),
    "wildcard": lambda v: isinstance(v, str), "match_only_text": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str), "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "date": lambda v: isinstance(v, str) and datetime.fromisoformat(v[:26] + v[-6:]).tzinfo is not None,
}


def test_every_ecs_field_exists_with_its_type_and_allowed_values(ecs_fields, win10):
    out = run("timeline", "-f", "ecs", win10, SAMPLE)
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 9
    seen = set()
    for doc in docs:
        assert doc["ecs"]["version"] == "9.4.0"
        for name, value in _leaves(doc):
            if name == "bits" or name.startswith("bits."):
                continue                                   # the custom namespace
            assert name in ecs_fields, f"{name} is not an ECS 9.4.0 field"
            spec = ecs_fields[name]
            values = value if isinstance(value, list) else [value]
            if isinstance(value, list):
                assert "array" in spec.get("normalize", []), f"{name} is not an array field"
            check = TYPE_CHECKS.get(spec["type"])
            assert check is not None, f"{name}: type {spec['type']} not handled by this test"
            assert all(check(v) for v in values), (name, value, spec["type"])
            allowed = {a["name"] for a in spec.get("allowed_values", [])}
            if allowed:
                assert set(values) <= allowed, (name, values)
            seen.add(name)
    assert {"@timestamp", "message", "event.action", "event.type", "url.full", "url.domain", "file.path",
            "user.id", "process.command_line", "related.user", "tags"} <= seen


def test_timeline_output_is_deterministic(win10):
    for fmt in ("timesketch", "timesketch-csv", "bodyfile", "ecs", "csv"):
        assert run("timeline", "-f", fmt, win10, SAMPLE) == run("timeline", "-f", fmt, win10, SAMPLE)


def test_long_csv_for_timeline_explorer(win10):
    rows = list(csv.DictReader(io.StringIO(run("timeline", "-f", "csv", win10))))
    assert [r["TimestampDescription"] for r in rows] == ["Remote file last modified", "BITS job created",
                                                          "BITS job modified", "BITS transfer completed",
                                                          "BITS job expires"]
    assert rows[1]["Timestamp"] == "2022-12-21 02:18:03.1204654"
    assert rows[1]["RemoteName"].startswith("http://edgedl.me.gvt1.com/")


def test_decoded_sample_has_the_error_event():
    from conftest import PROJECT

    job = decode_job_blob((PROJECT / SAMPLE).read_bytes())
    (error,) = [e for e in expand_job(job) if e.kind.timestamp_desc == "BITS transfer error"]
    assert error.filetime == job.modification_time and "no error record kept" in error.message
