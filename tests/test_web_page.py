"""End to end in a real headless Chromium (Debian's `chromium`, driven by Playwright): draw, read, upload."""

from __future__ import annotations

import os
import shutil

import pytest

from serve_helpers import CHROMIUM_FLAGS, SEVEN, digit_png, draw_strokes, running_server
from vitlens.inference import load, predict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Chromium: apt-get install chromium (.ci/run installs it; under CI=true this test runs and fails "
           "without it)")

@pytest.fixture(scope="module")
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


def test_draw_a_digit_then_upload_one(trained, browser_page, tmp_path):
    page = browser_page
    model = load(trained[0])
    # a bundled test digit this model classifies correctly, saved as a PNG file
    for index in range(50):
        png, label = digit_png(index)
        path = tmp_path / f"digit_{index}.png"
        path.write_bytes(png)
        if predict(model, [path])[0].label == str(label):
            break
    with running_server(trained[0]) as base:
        page.goto(base + "/")
        page.wait_for_function(f"document.getElementById('model-info').textContent.includes('{model.num_parameters():,}')")
        draw_strokes(page, SEVEN)
        page.wait_for_selector("#bars li", timeout=15_000)
        page.wait_for_function("!document.getElementById('heatmap').hidden")
        bars = page.locator("#bars li")
        assert bars.count() == 10
        shown = [float(v.replace("%", "").strip()) for v in page.locator("#bars .value").all_inner_texts()]
        assert shown == sorted(shown, reverse=True) and 99.0 <= sum(shown) <= 101.0
        assert page.locator("#heatmap").get_attribute("src").startswith("data:image/png;base64,")
        assert page.locator("#prediction strong").inner_text() in [str(i) for i in range(10)]
        # the canvas holds white ink now
        ink = page.evaluate("""() => { const c = document.getElementById('canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }""")
        assert ink > 1000
        page.screenshot(path=str(tmp_path / "drawn.png"), full_page=True)

        page.locator('input[value="last_layer_png"]').check()
        assert "last layer" in page.locator("#heatmap").get_attribute("alt")

        page.click("#clear")
        assert page.locator("#bars li").count() == 0
        # Clear pressed while answers to the strokes are still on their way: they must not paint the page again
        draw_strokes(page, SEVEN)
        page.click("#clear")
        page.wait_for_load_state("networkidle")
        assert page.locator("#bars li").count() == 0
        assert page.locator("#heatmap").is_hidden()
        assert page.locator("#prediction").inner_text().startswith("Draw something")
        page.set_input_files("#file", str(path))
        page.wait_for_function(f"document.querySelector('#prediction strong')?.textContent === '{label}'",
                               timeout=15_000)
        assert page.locator("#bars li").count() == 10
        page.screenshot(path=str(tmp_path / "uploaded.png"), full_page=True)
        assert (tmp_path / "uploaded.png").stat().st_size > 10_000
