"""Screenshot of the web page for the README: serve a checkpoint, draw a 7 in headless Chromium, save a PNG.

    python scripts/screenshot_page.py CHECKPOINT [--out docs/images/serve_page.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_helpers import CHROMIUM_FLAGS, SEVEN, draw_strokes, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images/serve_page.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with running_server(args.checkpoint) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1180, "height": 700})
        page.goto(base + "/")
        page.wait_for_function("document.getElementById('model-info').textContent.includes('parameters')")
        draw_strokes(page, SEVEN)
        page.wait_for_selector("#bars li")
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
