"""axe-core accessibility checks for the browser tests.

`tests/e2e/vendor/axe.min.js` is axe-core (npm `axe-core`, MPL-2.0, its licence beside it),
vendored unchanged. The pages under test run with JavaScript off; axe needs it (its checks
wait on timers), so `axe_violations(page)` opens the page's URL again in a context of its own
with JavaScript on, at the same viewport, and injects axe through the DevTools protocol,
which the site's Content-Security-Policy does not govern.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).with_name("vendor") / "axe.min.js"
FAILING_IMPACTS = {"serious", "critical"}
# Rules whose findings axe rates "moderate" but that we hold the pages to all the same.
ALSO_FAILING_RULES = {"heading-order"}


@cache
def axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Any, url: str | None = None) -> list[str]:
    """The violations that fail a test on `url` (default: the page's), one line each:
    `rule (impact): help; selectors`."""
    browser = page.context.browser
    context = browser.new_context(viewport=page.viewport_size, java_script_enabled=True)
    try:
        checked = context.new_page()
        checked.set_default_timeout(30_000)
        checked.goto(url or page.url)
        checked.evaluate(axe_source())
        violations = checked.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(result => result.violations)"
        )
    finally:
        context.close()
    return [
        f"{found['id']} ({found['impact']}): {found['help']}; "
        + ", ".join(" ".join(node["target"]) for node in found["nodes"][:5])
        for found in violations
        if found["impact"] in FAILING_IMPACTS or found["id"] in ALSO_FAILING_RULES
    ]


def assert_accessible(page: Any, url: str | None = None) -> None:
    violations = axe_violations(page, url)
    assert not violations, f"axe-core at {page.viewport_size['width']} px:\n" + "\n".join(violations)
