"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the
app served over HTTP on 127.0.0.1 with the demo data set.

`make test` skips these where no Chromium is installed, saying so; `.ci/run` installs
Debian's `chromium` and sets BROWSER_TESTS=required, which turns the skip into a failure.
Screenshots land in test-output/browser/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import API_KEY
from tests.servers import ROOT, serving

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "test-output" / "browser"
ADMIN = "admin@demo.example"
SECRET = "browser-test-session-secret-0123456789abcdef"
REFRESH_MS = 5_000  # dashboard.js reloads the recent check-ins this often
WAIT_MS = 10_000  # how long an expectation polls the page before it fails

pytestmark = pytest.mark.browser


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (requirements-dev.txt has it; run `make test`)"
    if not CHROMIUM.exists():
        return (
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` to run the dashboard's "
            "browser tests (.ci/run does)"
        )
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing_browser()
    if missing:
        if os.environ.get("BROWSER_TESTS") == "required":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def site(make_app) -> Iterator[tuple[Any, str, str]]:
    """What `make run` then `flask demo` gives an operator: the demo data set, served on
    127.0.0.1, and the demo admin's password as the command printed it."""
    app = make_app(SECRET_KEY=SECRET)
    filled = app.test_cli_runner().invoke(args=["demo"])
    assert filled.exit_code == 0, filled.output
    password = re.search(rf"as {re.escape(ADMIN)} with the password (\S+) ", filled.output)[1]
    with serving(app) as base:
        yield app, base, password


def _sign_in(page: Any, base: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/dashboard/")
    expect(page).to_have_url(f"{base}/dashboard/login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/dashboard/")


def _api(base: str, path: str) -> Any:
    answer = requests.get(f"{base}{path}", headers={"x-checkout-key": API_KEY}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def _screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def test_an_operator_signs_in_reads_the_apis_numbers_watches_replays_and_signs_out(browser, site):
    from playwright.sync_api import expect

    app, base, password = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    # The page's clock stands still: its 5 s refresh fires only when the test runs the clock.
    started = datetime.now(UTC)
    context.clock.install(time=started)
    context.clock.pause_at(started + timedelta(seconds=1))
    _sign_in(page, base, password)

    # The numbers on the page are the API's.
    state = _api(base, "/api/v1/state")["data"]
    for name, value in state["counts"].items():
        expect(page.locator(f'[data-count="{name}"]')).to_have_text(str(value))
    expect(page.locator('[data-count="roster"]')).to_have_text(str(state["users_page"]["total"]))
    for job in state["jobs"]:
        expect(page.get_by_role("rowheader", name=job)).to_be_visible()
    running = next(e for e in _api(base, "/events/active") if e["title"] == "Algorithms Seminar")
    attended = len(_api(base, f"/events/{running['id']}/attendees"))
    expect(page.get_by_text(f"{attended} of 40 checked in")).to_be_visible()
    failing = _api(base, "/api/webhook/attendance/status/")["last_24h"]["failed"]
    failed_rows = page.locator('section[aria-labelledby="failed"] tbody tr')
    expect(failed_rows).to_have_count(failing)
    assert API_KEY not in page.content()

    # A scanner checks someone in: the row appears without a reload.
    page.evaluate("window.notReloaded = true")
    with app.app_context():
        from tests.helpers import make_student

        make_student(identifier="LIVE0001", email="zed@example.com", first_name="Zed")
        make_student(identifier="NEWSTUDENT1", email="new1@example.com", first_name="Nia")
    scanned = requests.post(
        f"{base}/api/webhook/attendance/",
        json={"student_identifier": "LIVE0001", "event_identifier": str(running["id"])},
        timeout=10,
    )
    assert scanned.status_code == 201, scanned.text
    recent = page.locator("#recent-table tbody")
    expect(recent).not_to_contain_text("Zed")
    page.clock.run_for(REFRESH_MS)
    expect(recent.locator("tr").first).to_contain_text("Zed")
    assert page.evaluate("window.notReloaded") is True

    # Replay: the unmatched scan of NEWSTUDENT1 goes through now that the student exists.
    with app.app_context():
        from autocheckin.webhooks import request_log

        waiting = next(
            r.id
            for r in request_log.list_requests(outcome="unmatched")
            if "NEWSTUDENT1" in r.body.decode()
        )
    page.get_by_role("button", name=f"Replay request {waiting}").click()
    expect(page.get_by_role("status")).to_have_text(f"Request {waiting} replayed: resolved")
    expect(page.get_by_role("button", name=f"Replay request {waiting}")).to_have_count(0)
    expect(failed_rows).to_have_count(failing - 1)
    expect(recent).to_contain_text("Nia")
    expect(page.get_by_text(f"{attended + 2} of 40 checked in")).to_be_visible()
    assert page.evaluate(CONTRAST) == [], "text below WCAG AA contrast (4.5:1)"
    print(f"screenshot: {_screenshot(page, 'dashboard-laptop.png')}")

    # Signing out ends the session: the page and its live data are closed again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/dashboard/login")
    page.goto(f"{base}/dashboard/")
    expect(page).to_have_url(f"{base}/dashboard/login")
    assert context.request.get(f"{base}/dashboard/recent.json").status == 401
    context.close()


CONTRAST = """() => {
  const channels = (css) => css.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => [r, g, b]
    .map((c) => c / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (element) => {
    for (; element; element = element.parentElement) {
      const rgba = channels(getComputedStyle(element).backgroundColor);
      if (rgba.length < 4 || rgba[3] > 0) return rgba;
    }
    return [255, 255, 255];
  };
  const poor = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const element = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || element.closest("svg")) continue;
    if (!element.getClientRects().length) continue;
    const fg = luminance(channels(getComputedStyle(element).color));
    const bg = luminance(background(element));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) poor.push(`${walker.currentNode.textContent.trim()}: ${ratio.toFixed(2)}`);
  }
  return poor;
}"""

UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter((field) => !field.labels.length && !field.getAttribute("aria-label"))
  .map((field) => field.name)"""


def test_the_pages_read_without_javascript_fit_a_phone_and_keep_their_contrast(browser, site):
    from playwright.sync_api import expect

    _, base, password = site
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, java_script_enabled=False, is_mobile=True
    )
    page = phone.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{base}/dashboard/login")
    assert page.evaluate(UNLABELLED) == []
    _sign_in(page, base, password)
    expect(page.locator("#recent-table tbody tr").first).to_contain_text("Algorithms Seminar")

    for name in ("overview", "event"):
        if name == "event":
            page.get_by_role("link", name="Algorithms Seminar").click()
            expect(page.get_by_role("heading", name="Algorithms Seminar")).to_be_visible()
            expect(page.locator("svg rect")).to_have_count(24)
            tally = page.locator("[data-tally]").inner_text()
            assert re.fullmatch(
                r"\d+ present, \d+ late, 0 excused, 0 absent, \d+ pending", tally
            ), tally
        assert page.evaluate(UNLABELLED) == []
        assert page.evaluate(CONTRAST) == [], "text below WCAG AA contrast (4.5:1)"
        # clientWidth is the layout viewport (390 px); a mobile browser widens innerWidth to
        # fit a page that overflows, so that would hide the very thing looked for.
        wider = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wider <= 0, f"the {name} page scrolls sideways on a phone by {wider}px"
        print(f"screenshot: {_screenshot(page, f'{name}-phone.png')}")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV (Moodle)").click()
    header = Path(download.value.path()).read_text().splitlines()[0]
    assert header == "Student ID,Student Email,Session ID,Status,Timestamp,Method"
    phone.close()
