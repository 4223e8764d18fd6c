"""`bitsdb report`: the view-model, the data block, the page's safety (escaping, CSP, no external
references) and the command. The page in a real browser: tests/test_report_browser.py."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.forge.fleet import (
    HOSTILE_HOST,
    HOSTILE_JOB_NAME,
    HOSTILE_LOCAL,
    HOSTILE_URL,
    fleet,
    forge_fleet_stores,
)
from conftest import report_data

pytest.importorskip("jinja2", reason="the report extra is not installed: pip install '.[report]'")
pytest.importorskip("plotly", reason="the report extra is not installed: pip install '.[report]'")

from bitsdb.report import render as render_module  # noqa: E402
from bitsdb.report import read_data_block  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo"
SCRIPT = re.compile(r"<script([^>]*)>(.*?)</script>", re.S)


def report(tmp_path: Path, *args: str, name: str = "report.html") -> tuple[object, Path]:
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["report", "--no-progress", "-o", str(out), *args])
    return result, out


def without_library(page: str) -> str:
    """The page less the inlined plotly.min.js, after checking it is the installed package's file
    byte for byte (its code holds URLs of map tiles and fonts for trace types the report never
    draws; the CSP forbids every fetch and the browser tests see no request)."""
    library, _ = render_module.plotly_js()
    assert page.count(f"<script>{library}</script>") == 1
    return page.replace(f"<script>{library}</script>", "")


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> tuple[str, dict]:
    result, out = report(tmp_path_factory.mktemp("demo"), "--recover", str(DEMO))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    return page, report_data(page)


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory) -> tuple[str, dict]:
    base = tmp_path_factory.mktemp("hostile")
    stores = forge_fleet_stores(base / "stores", scale_stores=1, jobs_per_store=3)
    root = fleet(base / "hosts", 4, stores, hostile_host=0)
    result, out = report(base, str(root))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    return page, report_data(page)


def test_demo_report_has_every_job_with_its_verdict_and_history(demo_page):
    _, data = demo_page
    overview, jobs = data["overview"], data["jobs"]
    scan = [json.loads(line) for line in CliRunner().invoke(cli, ["scan", "--recover", "-f", "jsonl",
                                                                   str(DEMO)]).output.splitlines()]
    parsed = [json.loads(line) for line in CliRunner().invoke(cli, ["parse", "--recover", str(DEMO)]).output.splitlines()]
    live = [r for r in parsed if not r["provenance"]["recovered"]]
    assert overview["records"] == {"live": len(live), "recovered": len(parsed) - len(live), "log": 0}
    assert overview["cards"] == len({r["job_id"] for r in parsed}) == len(jobs)
    assert overview["hosts"] == 1 and overview["failures"] == []
    # the card's verdict is scan's verdict (the worst of its records')
    rank = {name: i for i, name in enumerate(data["levels"])}
    assert len(scan) == len(parsed) and all(v["record_type"] == "verdict" for v in scan)
    for card in jobs:
        worst = max((v["severity"] for v in scan if v["subject"]["job_id"] == card["job_id"]), key=rank.get)
        assert card["severity"] == worst, card["name"]
        ours = next(v for v in scan if v["subject"]["job_id"] == card["job_id"] and v["severity"] == worst)
        assert card["reasons"] == [r["text"] for r in ours["reasons"]]
    assert [rank[j["severity"]] for j in jobs] == sorted((rank[j["severity"]] for j in jobs), reverse=True)
    first = jobs[0]
    assert first["severity"] == "critical" and first["notify"] and first["reasons"]
    persistence = next(j for j in jobs if j["name"] == "WindowsUpdateCheck")     # the demo's SYSTEM cmd.exe job
    assert persistence["severity"] == "critical" and persistence["owner"]["sid"] == "S-1-5-18"
    assert persistence["notify"]["program"].lower().endswith("cmd.exe")
    # recovered versions are in their job's card and on its timeline row
    by_id = {j["job_id"]: j for j in jobs}
    recovered_ids = {r["job_id"] for r in parsed if r["provenance"]["recovered"]}
    for job_id in recovered_ids:
        card = by_id[job_id]
        assert "recovered" in card["origins"]
        assert any(m["kind"] == "bits-job-version-recovered" for m in card["marks"])
    both = [by_id[i] for i in recovered_ids if any(r["job_id"] == i and not r["provenance"]["recovered"] for r in parsed)]
    assert both and all(card["origin"] == "live" and card["versions"] for card in both)
    # provenance reads as text: other places an identical copy was found say only how they differ
    pairs = [pair for card in jobs for pair in card["provenance"]]
    assert not any("{'" in value or "[{" in value for _, value in pairs)
    also = [value for key, value in pairs if key == "also found at"]
    assert also and all(value.startswith("(this record); ") and "recovered from db page" in value for value in also)
    upload = [j for j in jobs if j["type"] == "UPLOAD"]
    assert upload and any(f["url"].startswith("http") for j in upload for f in j["files"])
    for card in jobs:
        assert card["start"] <= card["end"]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00", t) for _, t in card["times"])


def test_hostile_strings_stay_data(hostile_page):
    page, data = hostile_page
    names = {j["name"] for j in data["jobs"]}
    assert HOSTILE_JOB_NAME in names                                        # the data is intact ...
    card = next(j for j in data["jobs"] if j["name"] == HOSTILE_JOB_NAME)
    assert card["files"][0]["url"] == HOSTILE_URL and card["files"][0]["local"] == HOSTILE_LOCAL
    assert HOSTILE_HOST in {h["name"] for h in data["hosts"]}
    ours = without_library(page)
    for text in (HOSTILE_JOB_NAME, HOSTILE_URL, HOSTILE_HOST, "</script><script>alert(5)</script>",
                 "<img", "<svg", "<b onmouseover"):
        assert text not in ours, text                                       # ... and never markup
    scripts = SCRIPT.findall(page)
    assert len(scripts) == 3, "exactly the data block, the chart library and the report's script"
    # the host name is also in the server-rendered part (title, worst hosts), escaped by Jinja2
    assert "&#34;&gt;&lt;img src=x onerror=alert(4)&gt;" in page


def test_content_security_policy_allows_only_the_inline_scripts(demo_page):
    page, _ = demo_page
    csp = html.unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1))
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    assert "connect-src" not in directives and "http" not in csp       # default 'none': no fetch of any kind
    code = [body for attrs, body in SCRIPT.findall(page) if "application/json" not in attrs]
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
              for body in code}
    assert set(directives["script-src"].split()) == hashes
    assert page.index("Content-Security-Policy") < page.index("<script") and page.index("<style")


def test_no_external_references(demo_page, hostile_page):
    for full, _ in (demo_page, hostile_page):
        page = without_library(full)
        outside_data = re.sub(r'<script type="application/json" id="bitsdb-data">.*?</script>', "", page, flags=re.S)
        markup = SCRIPT.sub("", outside_data)
        assert not re.search(r"https?://", markup, re.I)                   # server-rendered HTML
        assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:|//|ftp:|file:)""", page, re.I)
        assert not re.search(r"@import|url\(\s*['\"]?(?:https?:|//)", page, re.I)
        own = (render_module.STATIC / "report.js").read_text(encoding="utf-8")
        assert not re.search(r"https?://|fetch\(|XMLHttpRequest|WebSocket|importScripts", own)
        # the only http(s) text in the data block comes from evidence (job URLs, commands, names), shown as text
        data = report_data(full)
        urls = re.compile(r"https?://[^\s'\"]+")
        evidence = set()
        for job in data["jobs"]:                # evidence, and rules text quoting it or citing sources
            for text in [job["name"], job["description"], *(f["url"] for f in job["files"]),
                         *((job["notify"] or {}).values()), job["allowlist"], *job["reasons"],
                         *(line for hit in job["hits"] for line in [hit["title"], *hit["evidence"]])]:
                evidence.update(urls.findall(text or ""))
        block = json.loads(re.search(r'id="bitsdb-data">(.*?)</script>', page, re.S).group(1))
        found = {u for entry in block["table"] if isinstance(entry, str) for u in urls.findall(entry)}
        assert found and found <= evidence


def test_the_page_is_deterministic(tmp_path):
    first, a = report(tmp_path, "--recover", str(DEMO), name="a.html")
    second, b = report(tmp_path, "--recover", str(DEMO), name="b.html")
    assert first.exit_code == second.exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def test_packer_round_trips_and_shares_values():
    packer = render_module._Packer()
    value = [{"a": "x", "b": None, "c": True, "d": False, "e": ["x", "y", [], {}]},
             {"a": "x", "b": None, "c": True, "d": False, "e": ["x", "y", [], {}]},
             [True, False, None, "1", "0"], ["x", "y", [], {}]]
    ref = packer.pack(value)
    assert render_module.unpack(packer.table, [list(k) for k in packer.shapes], ref) == value
    assert packer.pack(value[0]) == packer.pack(value[1])          # equal values are stored once
    for flag in (True, False):                                     # a boolean is never taken for a reference
        assert render_module.unpack(packer.table, [], packer.pack([flag])) == [flag]
    with pytest.raises(TypeError):
        packer.pack({"n": 3})


def test_data_block_cannot_end_its_script_element():
    view = {"overview": {"n": "</script><!--"}, "levels": [], "hosts": [{"name": "</SCRIPT>\u2028"}],
            "jobs": [{"name": "</script><script>alert(1)</script>", "s": "\ud800 lone surrogate"}]}
    text = render_module.data_block(view)
    assert "<" not in text and ">" not in text and "&" not in text and text.isascii()
    assert read_data_block(text)["jobs"][0]["name"] == view["jobs"][0]["name"]


def test_fail_on_uses_the_verdict_and_failures_are_in_the_report(tmp_path):
    result, _ = report(tmp_path, "--fail-on", "critical", str(DEMO))
    assert result.exit_code == 3
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\0" * 100)
    result, out = report(tmp_path, str(DEMO), str(bad))
    assert result.exit_code == 1
    assert "bitsdb: error:" in result.output and "Traceback" not in result.output
    data = report_data(out.read_text(encoding="utf-8"))
    assert len(data["overview"]["failures"]) == 1 and str(bad) in data["overview"]["failures"][0]
    assert data["overview"]["cards"] > 0                                    # the good input is still there


def test_fail_on_counts_records_of_no_job_as_scan_does(tmp_path):
    """A host whose jobs are harmless but whose BITS service loads another DLL (a high verdict of no
    job): report --fail-on high exits 3, as scan does on the same evidence."""
    from bitsdb.forge.evidence import REG_DWORD, REG_EXPAND_SZ, REG_SZ, build_hive, numbered_jobs_spec, write_volume
    from bitsdb.forge.spec import forge

    (tmp_path / "store").mkdir()
    store = forge(numbered_jobs_spec(1, first=1), tmp_path / "store" / "qmgr.db").database
    bits = {"values": {"Start": (REG_DWORD, 2), "ObjectName": (REG_SZ, "LocalSystem"),
                       "ImagePath": (REG_EXPAND_SZ, r"%SystemRoot%\System32\svchost.exe -k netsvcs -p")},
            "keys": {"Parameters": {"values": {"ServiceDll": (REG_EXPAND_SZ, r"C:\Users\Public\evil.dll")}}}}
    system = {"keys": {"Select": {"values": {"Current": (REG_DWORD, 1)}}, "ControlSet001": {"keys": {
        "Control": {"keys": {"ComputerName": {"keys": {"ComputerName": {"values": {"ComputerName": (REG_SZ, "HOST1")}}}}}},
        "Services": {"keys": {"BITS": bits}}}}}}
    volume = tmp_path / "C"
    write_volume(volume, store, hives={"SYSTEM": build_hive(system, "SYSTEM")})
    scan = CliRunner().invoke(cli, ["scan", "--no-progress", "-f", "jsonl", "--fail-on", "high", str(volume)])
    assert scan.exit_code == 3, scan.output
    result, out = report(tmp_path, "--fail-on", "high", str(volume))
    assert result.exit_code == 3, result.output
    data = report_data(out.read_text(encoding="utf-8"))
    assert max(job["severity"] for job in data["jobs"]) != "high"           # no job is high ...
    (host,) = data["hosts"]
    assert host["worst"] == "high" and [r["kind"] for r in host["records"] if r["severity"] == "high"] == ["service"]


def test_output_is_required_and_never_an_input(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(DEMO)])
    assert result.exit_code == 2
    copy = tmp_path / "qmgr.db"
    shutil.copyfile(DEMO / "qmgr.db", copy)
    before = copy.read_bytes()
    result = CliRunner().invoke(cli, ["report", str(copy), "-o", str(copy)])
    assert result.exit_code == 2 and "one of the inputs" in result.output
    assert copy.read_bytes() == before


def test_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch):
    real = render_module.importlib.util.find_spec
    monkeypatch.setattr(render_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "plotly" else real(name, *a))
    result, out = report(tmp_path, str(DEMO))
    assert result.exit_code == 2 and not out.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "bitsdb[report]" in lines[0] and lines[0].startswith("bitsdb: error:")
