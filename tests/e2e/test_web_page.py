"""The web chat page in headless Chromium, against the real API on loopback.

Uses Debian's Chromium (`/usr/bin/chromium`) through Playwright; no browser is
downloaded. Without it the tests are skipped locally and fail in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as redis
from playwright.async_api import Browser, Locator, Page, ViewportSize, async_playwright, expect
from standins import serving

from api.app import create_app
from tools.settings import LimitSettings, Settings

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ACCORD = "1HGCM82633A004352"
PAGE_REDIS_DB = 6  # this module's own index, flushed when its server starts
PHONE: ViewportSize = {"width": 390, "height": 844}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[str]:
    """Serve the real app (start-up and shut-down included) on a free loopback port."""
    async with serving(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
async def base_url(
    pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    url = f"{redis_url}?db={PAGE_REDIS_DB}"
    client = redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=pg_url,
        redis_url=url,
        data_dir=tmp_path_factory.mktemp("page-data"),
        openai_api_key=None,
        openai_base_url=None,
        limits=LimitSettings(anonymous_requests_per_minute=1_000, messages_per_minute=1_000),
    )
    async with running(settings) as served:
        yield served


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@asynccontextmanager
async def phone_page(browser: Browser, base_url: str, locale: str = "en-US") -> AsyncIterator[Page]:
    context = await browser.new_context(locale=locale, viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(base_url)
    yield page
    await context.close()
    assert errors == [], errors


async def send(page: Page, text: str) -> None:
    await page.locator("#message").fill(text)
    async with page.expect_response("**/ask") as response_info:
        await page.locator("#send").click()
    response = await response_info.value
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.request.headers["accept"] == "text/event-stream"


def answers(page: Page) -> Locator:
    return page.locator("li.msg.assistant")


async def test_streamed_answer_shows_sources_and_survives_a_reload_when_asked_on_a_phone(
    browser: Browser, base_url: str
) -> None:
    async with phone_page(browser, base_url) as page:
        await expect(page.get_by_label("Your message")).to_be_visible()
        await send(page, f"what car is {ACCORD}?")
        answer = answers(page).last
        await expect(answer).to_have_attribute("data-state", "done", timeout=30_000)
        await expect(answer.locator(".text")).to_contain_text("Honda Accord")
        await answer.locator("summary").click()
        await expect(answer.locator(".sources")).to_contain_text("NHTSA vPIC (offline copy)")
        await expect(answer.locator(".sources")).to_contain_text(ACCORD)
        await expect(answer.locator(".tools")).to_contain_text("decode_vin")
        await expect(answer.locator(".tools")).to_contain_text(" ms")

        await page.reload()
        await expect(page.locator("li.msg")).to_have_count(2)
        await expect(page.locator("li.msg.user .text")).to_have_text(f"what car is {ACCORD}?")
        await expect(answers(page).last.locator(".text")).to_contain_text("Honda Accord")

        # The conversation id was kept too: a follow-up is answered from memory.
        await send(page, "and its engine?")
        await expect(answers(page).last).to_have_attribute("data-state", "done", timeout=30_000)
        await expect(answers(page).last.locator(".text")).to_contain_text("3.0 L V6")

        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the page scrolls sideways on a phone"

        await page.get_by_role("button", name="New conversation").click()
        await expect(page.locator("li.msg")).to_have_count(0)
        await page.reload()
        await expect(page.locator("li.msg")).to_have_count(0)


async def test_switching_language_relabels_the_page_and_asks_in_that_language(
    browser: Browser, base_url: str
) -> None:
    async with phone_page(browser, base_url) as page:
        await expect(page.locator("#send")).to_have_text("Send")
        await page.get_by_label("Language").select_option("de")
        await expect(page.locator("html")).to_have_attribute("lang", "de")
        await expect(page.locator("#send")).to_have_text("Senden")
        await expect(page.get_by_label("Ihre Nachricht")).to_be_visible()
        async with page.expect_request("**/ask") as request_info:
            await page.locator("#message").fill(f"welches Auto ist {ACCORD}?")
            await page.locator("#send").click()
        assert json.loads((await request_info.value).post_data or "{}")["language"] == "de"
        await expect(answers(page).last).to_have_attribute("data-state", "done", timeout=30_000)
        await expect(answers(page).last.locator(".who")).to_have_text("vinbot")
        await answers(page).last.locator("summary").click()
        await expect(answers(page).last.locator(".meta")).to_contain_text("Quellen")

        await page.reload()  # the choice is remembered
        await expect(page.locator("#send")).to_have_text("Senden")


@pytest.mark.parametrize(
    ("locale", "send_label"), [("es-ES", "Enviar"), ("fr-FR", "Envoyer"), ("de-AT", "Senden")]
)
async def test_page_speaks_the_browser_language_when_opened(
    browser: Browser, base_url: str, locale: str, send_label: str
) -> None:
    async with phone_page(browser, base_url, locale=locale) as page:
        await expect(page.locator("#send")).to_have_text(send_label)
        await expect(page.locator("html")).to_have_attribute("lang", locale[:2])


async def test_markup_in_messages_is_shown_as_text_when_sent(browser: Browser, base_url: str) -> None:
    async with phone_page(browser, base_url) as page:
        attack = '<img src=x onerror="document.body.dataset.pwned=1"> hello'
        await send(page, attack)
        await expect(answers(page).last).to_have_attribute("data-state", "done", timeout=30_000)
        await expect(page.locator("li.msg.user .text")).to_have_text(attack)
        assert await page.locator("#transcript img").count() == 0
        assert await page.evaluate("document.body.dataset.pwned") is None
