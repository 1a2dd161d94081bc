"""The local console in headless Chromium (Debian's package, driven by Playwright): find a receipt that
fell back to SES and see its coloured path, switch providers off and on, redrive a parked SMS and see
it delivered. With TIDINGS_SCREENSHOT_DIR set (``make screenshots``), the pages and the timeline chart
are saved there."""

import os
import time
from pathlib import Path

import pytest
from support.e2e import order_body

from tidings_local.console.server import for_local_system

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The state machine's colour for a state that succeeded (tidings_local.console.graph.COLOURS).
SUCCEEDED_FILL = "#a5d6a7"


@pytest.fixture(scope="module")
def console(system):
    server = for_local_system(system)
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (scripts/ensure-chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console):
    context = browser.new_context(base_url=console.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def shoot(page, name):
    folder = os.environ.get("TIDINGS_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=True)


def wait_until(check, timeout=90, what="the condition"):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s")
        time.sleep(0.5)


def test_a_receipt_that_fell_back_to_ses_shows_its_coloured_path(system, saga, page):
    # Given SendGrid switched off in the console
    page.goto("/faults")
    page.click("#outage-sendgrid")
    assert "outage" in page.text_content("#sandbox-sendgrid .faults")
    shoot(page, "faults")
    reference = f"order-console-{time.time_ns()}"
    result = saga.run(order_body(reference))
    assert result["status"] == "delivered_with_fallback"
    page.click("#clear-sendgrid")
    assert page.text_content("#sandbox-sendgrid .faults") == "none"

    # When the operator filters the list by its order reference and opens it
    page.goto("/notifications")
    page.fill("input[name=order_reference]", reference)
    page.click("#filters button")
    row = page.locator("#notifications tbody tr")
    assert row.count() == 1
    assert "(ses)" in row.locator("[data-channel=email]").text_content()
    shoot(page, "notifications")
    row.locator("a").first.click()
    assert page.locator("#timeline tbody tr").count() > 5
    # The chart is drawn from the same timeline when the browser asks for it
    loaded = "() => { const i = document.getElementById('timeline-picture'); return i.naturalWidth > 0; }"
    page.wait_for_function(loaded)
    shoot(page, "notification")
    folder = os.environ.get("TIDINGS_SCREENSHOT_DIR")
    if folder:
        from tidings_ops.operations import Operations
        from tidings_ops.picture import draw
        from tidings_ops.target import Target

        target = Target("tidings-local", "us-east-1", endpoint_url=system.moto_url, local=True)
        timeline = Operations(target).timeline(result["notification_id"])
        draw(timeline, str(Path(folder) / "timeline.png"), "png")
        draw(timeline, str(Path(folder) / "timeline.svg"), "svg")

    # Then its execution's path is coloured: SendGrid caught, SES succeeded, on the ASL's own graph
    page.click("text=state machine path")
    ses = page.locator('#path li[data-state="SendReceiptEmailViaSes"]')
    assert ses.get_attribute("data-status") == "succeeded"
    assert page.locator('#path li[data-state="SendReceiptEmail"]').get_attribute("data-status") == "caught"
    box = page.locator('#graph svg g[id="state-SendReceiptEmailViaSes"] path')
    assert SUCCEEDED_FILL in (box.first.get_attribute("style") or "")
    data = page.text_content("#state-data")
    assert "ada@example.com" not in data
    shoot(page, "execution")


def test_a_parked_sms_is_redriven_from_the_console_and_delivered(system, saga, page):
    # Given Twilio switched off in the console and SNS down: the best-effort SMS ends dead-lettered
    page.goto("/faults")
    page.click("#outage-twilio")
    system.outage["sns"].down = True
    accepted = saga.notify(order_body()).json()
    notification_id = accepted["notification_id"]
    wait_until(
        lambda: saga.status(notification_id)["channels"]["sms"]["status"] == "dead_lettered",
        what="dead-lettered SMS",
    )

    # When both come back and the operator presses the SMS queue's redrive button
    page.goto("/faults")
    page.click("#clear-twilio")
    system.outage["sns"].down = False
    page.goto("/dlq")
    assert notification_id in page.text_content("#queue-sms")
    shoot(page, "dlq")
    page.click("#redrive-sms")
    assert page.text_content("#moved").startswith("moved ")

    # Then the notification page shows the SMS sent and the notification delivered
    def delivered() -> bool:
        page.goto(f"/notifications/{notification_id}")
        sms = page.text_content("#facts [data-channel=sms]")
        return sms.startswith(("sent", "delivered")) and page.get_attribute("#status", "data-status") in (
            "delivered",
            "delivered_with_fallback",
        )

    wait_until(delivered, what="SMS delivered after the redrive")


def test_the_console_answers_bad_addresses_without_a_stack_trace(page):
    for path in ("/notifications/no-such-id", "/executions/no-such-execution", "/nowhere"):
        response = page.goto(path)
        assert response.status == 404
        assert "Traceback" not in page.content()
    response = page.request.post("/dlq/nonsense/redrive")
    assert response.status == 404
    response = page.request.post("/faults/stripe/explode")
    assert response.status == 404
