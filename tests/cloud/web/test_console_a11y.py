# mypy: allow-untyped-defs
"""Accessibility in headless Chromium: button text meets WCAG AA contrast (4.5:1) on the login
page and the console, and the pages work with the browser zoomed to 200 %."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page

from tests.support.console import PASSWORD, LiveConsole, browser_login, browser_page

AA_NORMAL_TEXT = 4.5

# [text colour, the background behind it] of the element and of every element inside it with
# text of its own; a transparent background is the first painted one of its ancestors.
COLOURS_JS = """(root) => {
  const painted = (e) => {
    for (; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      if (bg !== "transparent" && !/rgba\\(.*, 0\\)$/.test(bg)) return bg;
    }
    return "rgb(255, 255, 255)";
  };
  const owns = (e) => Array.from(e.childNodes)
    .some((n) => n.nodeType === 3 && n.textContent.trim());
  return [root, ...root.querySelectorAll("*")].filter(owns)
    .map((e) => [getComputedStyle(e).color, painted(e)]);
}"""


def _rgb(css: str) -> tuple[float, float, float]:
    parts = [float(x) for x in re.findall(r"[\d.]+", css)]
    assert len(parts) == 3 or parts[3] == 1.0, f"translucent text colour {css}"
    return parts[0], parts[1], parts[2]


def luminance(css: str) -> float:
    """WCAG 2 relative luminance of an rgb() colour."""

    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_matches_wcag_reference_values() -> None:
    assert round(contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)"), 1) == 21.0
    assert round(contrast("rgb(118, 118, 118)", "rgb(255, 255, 255)"), 2) == 4.54
    assert round(contrast("rgb(85, 85, 85)", "rgb(181, 81, 42)"), 1) == 1.5  # the old login


def worst_contrast(page: Page, selector: str) -> float:
    pairs = page.locator(selector).first.evaluate(COLOURS_JS)
    assert pairs, f"{selector}: no text"
    return min(contrast(fg, bg) for fg, bg in pairs)


def test_login_and_console_buttons_meet_wcag_aa(browser: Browser, console: LiveConsole) -> None:
    page = browser_page(browser)
    page.goto(console.url + "/login")
    assert worst_contrast(page, "button[type=submit]") >= AA_NORMAL_TEXT
    page.context.close()

    page = browser_login(browser, console.url, "mgr-a", path="/registry/people")
    for selector in ("main form button", ".who button"):
        assert worst_contrast(page, selector) >= AA_NORMAL_TEXT, selector
    page.goto(console.url + f"/registry/devices/{console.ids['gate_a']}/enrol")
    assert worst_contrast(page, "#enrol-start button") >= AA_NORMAL_TEXT
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def fits_at_200_percent(page: Page, where: str) -> None:
    """No sideways scrolling; the nav links and main's buttons are shown inside the viewport."""
    width = page.evaluate("window.innerWidth")
    assert width == 640
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{where}: {scroll} px wide in a {width} px viewport"
    for control in page.locator("header nav a, main button, button[type=submit]").all():
        if not control.is_visible():
            continue  # e.g. a pager's button hidden while there is one page
        box = control.bounding_box()
        assert box is not None and box["width"] > 0, where
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{where}: {control} cut off"


def test_pages_work_zoomed_to_200_percent(browser: Browser, console: LiveConsole) -> None:
    # Browser zoom shrinks the CSS viewport and doubles the pixels per CSS pixel: a 1280 × 860
    # window at 200 % is a 640 × 430 CSS viewport at device scale factor 2.
    context = browser.new_context(
        viewport={"width": 640, "height": 430}, device_scale_factor=2, locale="zh-CN"
    )
    page = context.new_page()
    page.goto(console.url + "/registry/people")
    page.wait_for_url(re.compile(r"/login"))
    fits_at_200_percent(page, "/login")
    assert page.locator("button[type=submit]").is_visible()
    page.fill("#username", "mgr-a")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(console.url + "/registry/people")
    for path in ("/registry/people", "/", "/alerts"):
        if path != "/registry/people":
            page.goto(console.url + path)
        page.wait_for_load_state("networkidle")
        fits_at_200_percent(page, path)
        nav = page.locator("header nav a")
        assert nav.count() >= 4 and all(a.is_visible() for a in nav.all()), path
        assert page.locator("main button").first.is_visible(), path
    context.close()
