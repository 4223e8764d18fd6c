"""The HTML report in a real browser: Debian's chromium, headless, driven by Playwright (no browser
download: executable_path=/usr/bin/chromium). The demo report and a 1,000-host report are opened;
no console error, no network request, no dialog; the DOM shows the counts of the data, the worst
job first and hostile names as text; a screenshot is not blank."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.forge.fleet import HOSTILE_HOST, HOSTILE_JOB_NAME, fleet, forge_fleet_stores

pytestmark = [pytest.mark.tool, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (test extra)")
Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (test extra)")
pytest.importorskip("plotly", reason="the report extra is not installed: pip install '.[report]'")

CHROMIUM = os.environ.get("BITSDB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Headless on a closed network: no background connections, no component updates, no sandbox as root.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions"]
DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo"
HOSTS = 1000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (CI installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Opened:
    """A report open in a fresh browser context, with everything the page did recorded."""

    def __init__(self, browser, path: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.url = path.resolve().as_uri()
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready=true]", timeout=60_000)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).first.text_content()

    def search(self, selector: str, value: str) -> str:
        before = self.text("#f-status")
        self.page.fill(selector, value)
        self.page.wait_for_function("before => document.getElementById('f-status').textContent !== before",
                                    arg=before, timeout=30_000)
        return self.text("#f-status")

    def check_quiet(self) -> None:
        assert self.errors == []
        assert self.requests == [self.url], "the report fetched something"
        assert self.dialogs == [] and self.page.evaluate("document.querySelectorAll('img, iframe, object').length") == 0

    def screenshot_is_not_blank(self, path: Path) -> None:
        png = self.page.screenshot(path=str(path), full_page=False)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import ImageStat

        grey = Image.open(io.BytesIO(png)).convert("L")
        assert grey.size == (1400, 1000)
        assert ImageStat.Stat(grey).stddev[0] > 20, "the screenshot is (nearly) one colour"


def write_report(out: Path, *args: str) -> Path:
    result = CliRunner().invoke(cli, ["report", "--no-progress", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def expected(paths: list[str], recover: bool) -> tuple[int, int, dict[str, int]]:
    """Hosts, jobs (host + job id) and per-host job counts, straight from the evidence layer."""
    from bitsdb.evidence import run_batch

    cards: set[tuple[str, str]] = set()
    for result in run_batch(paths, jobs=2, progress=False, recover=recover).results:
        for job in result.jobs:
            prov = job.provenance
            cards.add((prov.host or prov.container, job.job_id))
    per_host: dict[str, int] = {}
    for host, _ in cards:
        per_host[host] = per_host.get(host, 0) + 1
    return len(per_host), len(cards), per_host


def test_demo_report_in_chromium(browser, tmp_path):
    report = write_report(tmp_path / "demo.html", "--recover", str(DEMO))
    hosts, jobs, _ = expected([str(DEMO)], recover=True)
    opened = Opened(browser, report)
    assert opened.text("#ov-hosts") == str(hosts) == "1"
    assert opened.text("#ov-jobs") == str(jobs)
    assert opened.text("#f-status") == f"1 of 1 hosts, {jobs} of {jobs} jobs match"
    cards = opened.page.locator("details.host[open] article.job")
    assert cards.count() == jobs                                  # the worst host opens by itself
    severities = cards.evaluate_all("nodes => nodes.map(n => n.dataset.severity)")
    order = ["none", "info", "low", "medium", "high", "critical"]
    assert severities[0] == "critical" and severities == sorted(severities, key=order.index, reverse=True)
    scan = [json.loads(line) for line in
            CliRunner().invoke(cli, ["scan", "--recover", "-f", "jsonl", str(DEMO)]).output.splitlines()]
    critical = {v["subject"]["job_name"] for v in scan if v["severity"] == "critical"}
    assert opened.text("details.host[open] article.job .jname") in critical
    assert opened.text("details.host[open] article.job .notify")
    # the host timeline: one labelled row per job, bars and marks drawn by plotly.js
    labels = opened.page.locator("details.host[open] .timeline .yaxislayer-above text")
    assert labels.count() == jobs
    assert opened.page.locator("details.host[open] .timeline .barlayer path").count() >= jobs
    assert opened.page.locator("details.host[open] .timeline .scatterlayer path.point").count() > jobs
    assert opened.page.locator("#fleet-chart .barlayer path").count() > 0
    # the text filter runs over names, commands, paths, reasons …
    status = opened.search("#f-text", "bitsadmin")
    assert re.fullmatch(r"1 of 1 hosts, \d+ of \d+ jobs match", status)
    opened.screenshot_is_not_blank(tmp_path / "demo.png")
    opened.check_quiet()
    # --min-severity: the page opens filtered, every job still in the file
    narrow = Opened(browser, write_report(tmp_path / "high.html", "--recover", "--min-severity", "high", str(DEMO)))
    high = sum(1 for s in severities if s in ("high", "critical"))
    assert narrow.text("#f-status") == f"1 of 1 hosts, {high} of {jobs} jobs match"
    assert narrow.page.locator("#f-level").input_value() == "high"
    narrow.check_quiet()


@pytest.fixture(scope="module")
def fleet_report(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("fleet")
    stores = forge_fleet_stores(base / "stores", scale_stores=3, jobs_per_store=8)
    demo = base / "stores" / "demo"
    demo.mkdir()
    for name in ("qmgr.db", "edb.log"):
        shutil.copyfile(DEMO / name, demo / name)
    root = fleet(base / "hosts", HOSTS, stores + [demo / "qmgr.db"], hostile_host=7)
    return root, write_report(base / "fleet.html", str(root))


def test_thousand_host_report_in_chromium(browser, fleet_report, tmp_path):
    root, report = fleet_report
    hosts, jobs, per_host = expected([str(root)], recover=False)
    assert hosts == HOSTS
    opened = Opened(browser, report)
    assert opened.text("#ov-hosts") == str(HOSTS)
    assert opened.text("#f-status") == f"{HOSTS} of {HOSTS} hosts, {jobs} of {jobs} jobs match"
    # lazily drawn: 50 hosts on the page, one of them open with its cards
    assert opened.page.locator("details.host").count() == 50
    assert opened.page.locator("article.job").count() < 100
    first = opened.page.locator("details.host").first
    assert first.get_attribute("data-worst") == "critical"
    name = first.get_attribute("data-host")
    assert opened.page.locator("details.host[open] article.job").count() == per_host[name]
    assert opened.page.locator("details.host[open] article.job").first.get_attribute("data-severity") == "critical"
    worsts = opened.page.locator("details.host").evaluate_all("nodes => nodes.map(n => n.dataset.worst)")
    order = ["none", "info", "low", "medium", "high", "critical"]
    assert [order.index(w) for w in worsts] == sorted((order.index(w) for w in worsts), reverse=True)
    # search the hostile job: it is found on every host that holds its store, and shown as text
    stores_with_it = sum(1 for index in range(HOSTS) if index % 5 == 0)
    status = opened.search("#f-text", "alert(1)")
    assert status == f"{stores_with_it} of {HOSTS} hosts, {stores_with_it} of {jobs} jobs match"
    card_name = opened.page.locator("details.host[open] article.job .jname").first
    assert card_name.text_content() == HOSTILE_JOB_NAME
    assert card_name.evaluate("n => n.children.length") == 0
    assert opened.page.locator("script").count() == 3                  # nothing was injected
    # the hostile host name: a filter by host finds it, its summary shows it as text
    opened.search("#f-text", "")
    status = opened.search("#f-host", "onerror")
    assert status.startswith(f"1 of {HOSTS} hosts")
    assert opened.text("details.host .hname") == HOSTILE_HOST
    # paging: the next 50 hosts on demand
    opened.search("#f-host", "")
    opened.page.click("#more-hosts")
    assert opened.page.locator("details.host").count() == 100
    opened.screenshot_is_not_blank(tmp_path / "fleet.png")
    opened.check_quiet()


def test_notify_runs_from_the_logs_are_highlighted(browser, tmp_path):
    from test_report_logs import HOSTILE_COMMAND, no_verdict, persistence_job_with_history

    from bitsdb.report import ReportBuilder, write_report as write_page

    builder = ReportBuilder(no_verdict)
    builder.add_job(persistence_job_with_history())
    page = tmp_path / "notify.html"
    write_page(builder.build(), page)
    opened = Opened(browser, page)
    runs = opened.page.locator("details.host[open] article.job .notify-run code")
    assert runs.count() == 1 and HOSTILE_COMMAND in runs.first.text_content()
    assert "notify command ran" in opened.text("details.host[open] article.job .jmeta")
    legend = opened.page.locator("details.host[open] .timeline .legendtext").all_text_contents()
    assert "notify command ran" in legend and "event log" in legend
    opened.check_quiet()
