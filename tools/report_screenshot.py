"""Write docs/report-demo.png: the demo report (`bitsdb report --recover samples/demo`) in headless
Debian chromium, as README shows it. Needs the report and test extras and /usr/bin/chromium.

    python tools/report_screenshot.py [--out docs/report-demo.png] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-demo.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--height", type=int, default=1250)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        page_path = Path(work) / "report.html"
        # run from the project root with a relative path, so the host label reads "samples/demo"
        subprocess.run([sys.executable, "-m", "bitsdb", "report", "--recover", "--no-progress", "-o", str(page_path),
                        "samples/demo"], cwd=ROOT, check=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": args.height})
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-ready=true]")
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
