"""The operator page in a real headless Chromium (Debian's), driven by Playwright, against a real
`street-vision serve`: draw a zone by clicking on the camera's snapshot, save it, read it back from
the API, and see the running pipeline watch it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from .api_support import ADMIN, AS_READER, serve, write_config
from .conftest import need, package
from .dispatch_support import wait_for

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLICKS = [(0.2, 0.3), (0.8, 0.3), (0.8, 0.9), (0.2, 0.9)]  # fractions of the canvas


def sign_in(browser: Any, url: str, token: str, width: int = 1400, height: int = 900) -> Any:
    """A new page of ``browser`` (Playwright's) at ``url``, the token typed into the page's login."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(30_000)
    page.goto(url)
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    return page


def test_draw_a_zone_on_the_page(tmp_path: Path) -> None:
    need(None if CHROMIUM.exists() else f"{CHROMIUM} is missing: apt-get install chromium")
    sync_api = package("playwright.sync_api")
    config = write_config(tmp_path)
    with serve(config) as served, sync_api.sync_playwright() as playwright:
        wait_for(
            lambda: (
                httpx.get(f"{served.url}/api/cameras/plaza/snapshot.jpg", headers=AS_READER).status_code
                == 200
            ),
            "a first frame",
            60,
        )
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, timeout=60_000)
        try:
            page = sign_in(browser, f"{served.url}/#/cameras", ADMIN)
            page.wait_for_selector("[data-camera=plaza] .badge.live")
            page.wait_for_function(
                "document.querySelector('[data-camera=plaza] img').src.startsWith('blob:')"
            )

            page.screenshot(path=str(tmp_path / "cameras.png"))

            page.goto(f"{served.url}/#/zones/plaza")
            page.wait_for_selector("#canvas[data-ready=true]")
            page.wait_for_selector("#zone-list li[data-zone=crossing]")
            page.click("#new-zone")
            page.fill("#zone-name", "drawn")
            page.select_option("#zone-rule", "crowd")
            page.fill("#rule-params input[name=enter_count]", "1")
            page.fill("#rule-params input[name=min_duration]", "0")
            box = page.locator("#canvas").bounding_box()
            assert box is not None
            for fx, fy in CLICKS:
                page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            # drag the last point a little to the left
            x, y = box["x"] + 0.2 * box["width"], box["y"] + 0.9 * box["height"]
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x - 0.1 * box["width"], y, steps=5)
            page.mouse.up()
            page.click("#save-zone")
            page.wait_for_selector("#zone-status.ok")
            page.screenshot(path=str(tmp_path / "zone-editor.png"), full_page=True)

            zones = {
                z["name"]: z
                for z in httpx.get(f"{served.url}/api/cameras/plaza/zones", headers=AS_READER).json()
            }
            polygon = zones["drawn"]["polygon"]
            assert len(polygon) == 4
            for (x, y), (fx, fy) in zip(polygon, [*CLICKS[:3], (0.1, 0.9)], strict=True):
                assert abs(x - fx) < 0.02 and abs(y - fy) < 0.02
            assert zones["drawn"]["rules"]["crowd"]["enter_count"] == 1
            raw = yaml.safe_load(config.read_text())["cameras"]["plaza"]["zones"]["drawn"]
            assert raw["rules"] == {"crowd": {"enter_count": 1, "min_duration": 0.0}}
            wait_for(
                lambda: httpx.get(f"{served.url}/api/events?zone=drawn", headers=AS_READER).json(),
                "a crowd event on the drawn zone",
                60,
            )

            # a second rule on the same zone: the form shows one rule at a time and keeps the other
            page.click("#zone-list li[data-zone=drawn]")
            page.select_option("#zone-rule", "fishing")
            page.wait_for_selector("#other-rules:has-text('crowd')")
            page.click("#save-zone")
            page.wait_for_selector("#zone-status.ok")
            raw = yaml.safe_load(config.read_text())["cameras"]["plaza"]["zones"]["drawn"]
            assert raw["rules"] == {"crowd": {"enter_count": 1, "min_duration": 0.0}, "fishing": {}}

            page.goto(f"{served.url}/#/events?zone=drawn")
            page.wait_for_selector("tr[data-event] td img")
            page.screenshot(path=str(tmp_path / "events.png"))

            page.goto(f"{served.url}/#/heatmap/plaza")
            page.wait_for_function(
                "(document.querySelector('.heatmap img') || {src: ''}).src.startsWith('blob:')"
            )
            page.screenshot(path=str(tmp_path / "heatmap.png"))
        finally:
            browser.close()
