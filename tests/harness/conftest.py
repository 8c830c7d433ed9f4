"""Browser fixtures for the harness's unit tests that need a real Chromium on pages they serve themselves.

Each module gets its own Playwright (`with sync_playwright()`), ended with the module: an asyncio loop
must not be alive while the other unit tests run theirs. `page` overrides pytest-playwright's here.
"""
import pytest
from playwright.sync_api import sync_playwright

from core.network import Network
from harness.browser.chromium import launch_args


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_args({"headless": True}, Network(), []))  # the harness's own launch
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    yield context.new_page()
    context.close()
