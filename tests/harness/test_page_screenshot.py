"""Screenshots of the pages a flow passes through: Chromium's own capture, the full page (not only the
viewport), a JPEG; None rather than an error when there is nothing to capture."""
from __future__ import annotations

import struct

from harness.browser.evidence import MAX_SCREENSHOT_HEIGHT, page_screenshot


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the JPEG's start-of-frame segment."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise ValueError("no start-of-frame segment")


def test_a_page_longer_than_the_viewport_is_captured_whole(page):
    page.set_viewport_size({"width": 800, "height": 600})
    page.set_content("<body style='margin:0'><div style='height:1500px;background:#639'>tall</div></body>")
    data = page_screenshot(page)
    assert data[:3] == b"\xff\xd8\xff"
    assert jpeg_size(data) == (800, 1500)


def test_a_short_page_is_the_viewport(page):
    page.set_viewport_size({"width": 800, "height": 600})
    page.set_content("<p>short</p>")
    assert jpeg_size(page_screenshot(page)) == (800, 600)


def test_an_endless_page_is_cut(page):
    page.set_viewport_size({"width": 800, "height": 600})
    page.set_content(f"<body style='margin:0'><div style='height:{MAX_SCREENSHOT_HEIGHT * 2}px'>x</div></body>")
    assert jpeg_size(page_screenshot(page))[1] == MAX_SCREENSHOT_HEIGHT


def test_a_closed_page_gives_none(chromium):
    context = chromium.new_context()
    page = context.new_page()
    context.close()
    assert page_screenshot(page) is None
