"""The review page in a real headless Chromium (Debian's), driven by Playwright, against a real
`street-vision serve` on the plaza clip and a real receiver: list and filter events, open one, see its
snapshot and play its clip, mark it a false alarm, close the next by hand with a reason, and watch the
figures follow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from .api_support import ADMIN, AS_READER, serve
from .conftest import need, package
from .dispatch_support import Receiver, wait_for
from .test_api_page import CHROMIUM, FLAGS, sign_in
from .test_review import busy_plaza, sent


def ticket_with_clip(url: str, receiver: Receiver, but: set[str]) -> str:
    """An open event, not in ``but``, whose open the receiver has and whose open clip is written."""

    def found() -> str | None:
        for event in httpx.get(f"{url}/api/events?state=open", headers=AS_READER).json():
            event_id = event["event_id"]
            if event_id in but or not sent(receiver, event_id):
                continue
            detail = httpx.get(f"{url}/api/events/{event_id}", headers=AS_READER).json()
            if any(c["kind"] == "open" for c in detail["clips"]):
                return event_id
        return None

    return wait_for(found, "an open ticket with its clip", 60.0)


def closed_as(data: Path, event_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(data / "street-vision.sqlite") as db:
        return db.execute("SELECT state, close_reason FROM events WHERE event_id = ?", (event_id,)).fetchone()


def test_review_an_event_on_the_page(tmp_path: Path, receiver: Receiver) -> None:
    need(None if CHROMIUM.exists() else "Debian's chromium (apt-get install chromium)")
    sync_api = package("playwright.sync_api")
    with serve(busy_plaza(tmp_path, receiver.url)) as served, sync_api.sync_playwright() as playwright:
        first = ticket_with_clip(served.url, receiver, set())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, timeout=60_000)
        try:
            page = sign_in(browser, f"{served.url}/#/review", ADMIN, 1500, 1000)
            page.wait_for_selector(f"#review-list tr[data-event='{first}']")
            # filter: open events of the plaza only
            page.select_option("#review-filters select[name=camera]", "plaza")
            page.select_option("#review-filters select[name=state]", "open")
            page.click("#review-filters button[type=submit]")
            page.wait_for_function(
                "location.hash.includes('state=open') && location.hash.includes('camera=plaza')"
            )
            page.wait_for_selector(f"#review-list tr[data-event='{first}']")
            states = page.eval_on_selector_all(
                "#review-list tr[data-event]", "rows => rows.map(r => r.dataset.state)"
            )
            assert states and set(states) == {"open"}

            # a time range after everything: nothing listed; the range is kept in the form
            page.goto(f"{served.url}/#/review?since=2100-01-01T12:00:00.000Z")
            page.wait_for_selector("#review-list td:has-text('No events.')")
            assert page.input_value("#review-filters input[name=since]").startswith("2100-01-01")
            page.goto(f"{served.url}/#/review?camera=plaza&state=open")
            page.click(f"#review-list tr[data-event='{first}']")
            page.wait_for_function(
                "(document.querySelector('#event-detail img') || {src: ''}).src.startsWith('blob:')"
            )
            page.wait_for_function(
                "(v => v && v.readyState >= 1 && v.duration > 0)"
                "(document.querySelector('#event-detail video[data-kind=open]'))"
            )
            page.eval_on_selector(
                "#event-detail video[data-kind=open]", "v => { v.muted = true; return v.play(); }"
            )
            page.wait_for_function(
                "document.querySelector('#event-detail video[data-kind=open]').currentTime > 0"
            )
            page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

            page.click("#confirm")
            page.wait_for_selector("#review-status.ok:has-text('confirm: the event is open')")
            page.wait_for_selector("#history td:has-text('confirmed')")

            page.click("#false-alarm")
            page.wait_for_selector("#review-status.ok:has-text('rejected')")
            assert closed_as(tmp_path / "data", first) == ("resolved", "rejected")
            wait_for(
                lambda: sent(receiver, first)[-1]["transition"] == "close", "the close at the receiver", 30
            )
            assert sent(receiver, first)[-1]["event"]["close_reason"] == "rejected"
            page.wait_for_selector("#history td:has-text('false_alarm')")

            second = ticket_with_clip(served.url, receiver, {first})
            page.goto(f"{served.url}/#/review/{second}")
            page.wait_for_selector("#event-detail[data-state=open]")
            page.click("#close-by-hand")  # no reason: refused, and the page says why
            page.wait_for_selector("#review-status.error:has-text('reason')")
            page.fill("#close-reason", "the crowd was a queue for the museum")
            page.click("#close-by-hand")
            page.wait_for_selector("#review-status.ok:has-text('closed_by_operator')")
            assert closed_as(tmp_path / "data", second) == ("resolved", "closed_by_operator")
            wait_for(lambda: sent(receiver, second)[-1]["transition"] == "close", "the second close", 30)
            assert sent(receiver, second)[-1]["note"] == "the crowd was a queue for the museum"

            figure = "#figures tr[data-figure='plaza/crowd']"
            page.wait_for_selector(f"{figure} td[data-key=confirmed]:text-is('1')")
            page.wait_for_selector(f"{figure} td[data-key=rejected]:text-is('1')")
            page.wait_for_selector(f"{figure} td[data-key=closed_by_operator]:text-is('1')")
            page.screenshot(path=str(tmp_path / "review-done.png"), full_page=True)
        finally:
            browser.close()
