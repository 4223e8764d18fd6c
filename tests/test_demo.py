"""samples/demo/ must be exactly what its spec and the current code produce.

The store is rebuilt from demo.yaml and compared byte for byte; `bitsdb parse --recover`
and `bitsdb scan` are run on it (from the project root, relative paths) and compared
with the expected outputs beside it. Regenerate with `python tools/make_demo.py`.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bitsdb import api
from bitsdb.forge.spec import forge, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samples" / "demo"


def _make_demo():
    spec = importlib.util.spec_from_file_location("make_demo", ROOT / "tools" / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_demo():
    return _make_demo()


def test_store_rebuilds_byte_identically(tmp_path: Path, make_demo) -> None:
    built = make_demo.build_store(tmp_path)
    assert sorted(p.name for p in built) == ["edb.log", "qmgr.db"]
    for path in built:
        assert path.read_bytes() == (DEMO / path.name).read_bytes(), f"{path.name} differs: run tools/make_demo.py"


def test_expected_outputs_are_current(make_demo) -> None:
    outputs = make_demo.run_outputs()
    for name, text in outputs.items():
        assert text == (DEMO / name).read_text(encoding="utf-8"), f"{name} differs: run tools/make_demo.py"


def test_demo_reads_cleanly_and_jobs_join_their_files() -> None:
    result = api.read(DEMO / "qmgr.db")
    assert result.errors == [] and result.warnings == [] and result.orphan_files == []
    assert len(result.jobs) == 8
    packaged = [job for job in result.jobs if job.package_family_name]
    assert [(j.package_family_name, j.application_id, j.creator_image.rsplit("\\", 1)[-1]) for j in packaged] == [
        ("Microsoft.OutlookForWindows_8wekyb3d8bbwe", "!Microsoft.OutlookforWindows", "msedgewebview2.exe")]
    for job in result.jobs:
        assert not job.partial and job.missing_file_ids == []
        assert [f.file_id for f in job.files] == job.file_ids and job.files
        assert all(not f.partial for f in job.files)
        assert job.owner_sid == job.security.owner == job.security.group
        assert job.security.integrity_label == f"S-1-16-{job.security.owner_integrity_rid}"
        assert [a.ace_type_name for a in job.security.dacl][:2] == ["ACCESS_DENIED", "ACCESS_ALLOWED"]
        assert job.provenance.table == "Jobs" and job.provenance.source_sha256 == result.sha256
        assert all(f.provenance.table == "Files" for f in job.files)


def test_recovered_records_are_the_planted_ones(tmp_path: Path) -> None:
    report = forge(parse_spec(load_spec(DEMO / "demo.yaml")), tmp_path / "qmgr.db")
    planted = {(p.record_id, p.modification_time, p.path.name, p.offset) for p in report.planted if p.kind == "job"}
    rows = [json.loads(line) for line in (DEMO / "expected.parse.jsonl").read_text().splitlines()]
    recovered = {(r["job_id"], r["modification_time_filetime"], Path(r["provenance"]["source_path"]).name,
                  r["provenance"]["offset"]) for r in rows if r["provenance"]["recovered"]}
    assert recovered == planted and len(planted) == 4
    assert {r["provenance"]["recovered_from"] for r in rows if r["provenance"]["recovered"]} == {"db page", "log file"}


def test_scan_verdicts_cover_the_story() -> None:
    verdicts = [json.loads(line) for line in (DEMO / "expected.scan.jsonl").read_text().splitlines()]
    by_job = {v["subject"]["job_name"]: v for v in verdicts}
    rules = {name: {h["rule_id"] for h in v["hits"]} for name, v in by_job.items()}
    assert by_job["WindowsUpdateCheck"]["severity"] == "critical"
    assert {"notify-command", "notify-rearm", "payload-drop"} <= rules["WindowsUpdateCheck"]
    assert "upload-job" in rules["SyncUpload"] and by_job["SyncUpload"]["severity"] in ("high", "critical")
    assert "payload-drop" in rules["BITS Transfer"] and by_job["BITS Transfer"]["severity"] == "high"
    # the updaters are recognised as benign: nothing above info
    benign = {"Chrome Component Updater", "MicrosoftEdgeUpdate", "MozillaUpdate 308046B0AF4A39CB",
              "UpdateDescriptionXml"}
    assert all(by_job[name]["severity"] == "info" for name in benign)
