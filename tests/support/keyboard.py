"""Moving through a page as a keyboard-only user does: Tab until the element wanted has the
focus, and whether the focus can be seen there."""

from playwright.async_api import Page

FOCUSED = (
    "(selector) => document.activeElement !== null && document.activeElement.matches(selector)"
)
OUTLINE = "() => getComputedStyle(document.activeElement).outlineStyle"


async def tab_to(page: Page, selector: str, *, limit: int = 600) -> None:
    """Presses Tab until the focused element matches the selector (at most `limit` times)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(FOCUSED, selector):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


async def focus_visible(page: Page) -> bool:
    """The focused element draws an outline (the console's :focus-visible style)."""
    style: str = await page.evaluate(OUTLINE)
    return style not in ("", "none")
