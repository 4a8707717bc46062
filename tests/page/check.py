"""`make page-check`: the status pages `make demo` wrote, opened in a real headless browser.

For each page (before and after the demo's failover): a screenshot at a phone's width (390 CSS
pixels) and at a laptop's (1280), saved under target/page-check/, and the DOM the browser built
compared with the file (the verdict, every resource row, every sparkline line and timeline step
survive the browser's HTML parser, SVG included). Not part of `make test`: it needs Chromium
(e.g. `apt-get install chromium`; CHROMIUM=/path/to/it picks another).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = os.path.join(REPO, "target", "drpilot-demo")
OUT = os.path.join(REPO, "target", "page-check")


def browser():
    for name in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]:
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("page-check: no Chromium found (apt-get install chromium, or CHROMIUM=/path/to/chrome)")


def run(chrome, args, url):
    # a profile of its own each time: nothing carried over, no first-run prompts
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", *args, url],
            capture_output=True, text=True, timeout=120,
        )
    if out.returncode != 0:
        sys.exit(f"page-check: {chrome} failed: {out.stderr[-2000:]}")
    return out.stdout


def counts(html):
    return {
        "verdict": (re.findall(r'DR status: <span class="word">([A-Z ]+)</span>', html) or [None])[0],
        "resources": len(re.findall(r'<tr id="resource-', html)),
        "sparkline lines": len(re.findall(r"<polyline ", html)),
        "timeline steps": len(re.findall(r"<li><time ", html)),
        "databases": len(re.findall(r'<section id="database-', html)),
    }


def main():
    chrome = browser()
    os.makedirs(OUT, exist_ok=True)
    pages = sorted(f for f in os.listdir(PAGES) if f.endswith(".html")) if os.path.isdir(PAGES) else []
    if not pages:
        sys.exit(f"page-check: no pages in {PAGES}: run `make demo` first (make page-check does)")
    failed = False
    for page in pages:
        path = os.path.join(PAGES, page)
        url = "file://" + path
        with open(path, encoding="utf-8") as f:
            written = counts(f.read())
        built = counts(run(chrome, ["--dump-dom"], url))
        same = written == built and written["verdict"] is not None
        failed |= not same
        print(f"{page}: {'OK' if same else 'DIFFERS'}: file {written}" + ("" if same else f", browser {built}"))
        for width, height in [(390, 2600), (1280, 1400)]:
            shot = os.path.join(OUT, f"{page[:-5]}-{width}.png")
            run(chrome, [f"--window-size={width},{height}", f"--screenshot={shot}"], url)
            print(f"  screenshot at {width} px: {os.path.relpath(shot, REPO)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
