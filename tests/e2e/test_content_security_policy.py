"""With JavaScript on, no page a visitor or an editor opens breaks the Content-Security-Policy.

The browser reports each violation as a `securitypolicyviolation` event (and a console
error): the style or script it blocked is missing for the person using the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pprint import pformat
from typing import Any

import pytest
from django.conf import settings

from tests.e2e.newsroom import build_newsroom
from tests.support.factories import CampaignFactory, DeliveryFactory, SubscriberFactory, UserFactory

pytestmark = pytest.mark.integration

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || "the page"}:${event.lineNumber} ${event.sample}`);
});
"""


class Problems:
    """What went wrong on a page: CSP violations, console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.found: dict[str, list[str]] = {}  # by page, only pages with problems
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console.append(message.text)

    def visit(self, url: str) -> None:
        self.console.clear()
        response = self.page.goto(url)
        assert response is not None, url
        assert response.ok, f"{url}: {response.status}"
        self.page.wait_for_load_state("networkidle")
        problems = [*self.page.evaluate("window.__violations"), *self.console]
        if problems:
            self.found[url] = problems


@pytest.fixture
def js_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=True)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def test_public_pages_run_their_scripts_and_styles_within_the_policy(site, js_page):
    newsroom: dict[str, Any] = build_newsroom()
    problems = Problems(js_page)
    featured, topic, author = newsroom["featured"], newsroom["energy"], newsroom["correspondent"]
    for path in [
        "/",
        featured.get_absolute_url(),
        topic.get_absolute_url(),
        author.get_absolute_url(),
        "/search/?q=grid",
        "/newsletter/subscribe/",
        "/write/",
    ]:
        problems.visit(site + path)
    assert not problems.found, pformat(problems.found, width=200)


@pytest.fixture
def signed_in_editor(site, js_page, settings):
    """The browser signs in as an editor with the admin's own login form."""
    settings.REQUIRE_STAFF_2FA = False
    ines = UserFactory.create(username="ines", is_superuser=True)
    ines.set_password("an-invented-password")
    ines.save()
    problems = Problems(js_page)
    problems.visit(f"{site}/{settings.ADMIN_URL}login/")
    assert not problems.found, pformat(problems.found, width=200)
    js_page.get_by_label("Username").fill("ines")
    js_page.get_by_label("Password").fill("an-invented-password")
    js_page.get_by_role("button", name="Log in").click()
    js_page.wait_for_url(f"{site}/{settings.ADMIN_URL}")
    return problems


def test_the_admin_s_main_pages_run_within_the_policy(site, signed_in_editor):
    problems = signed_in_editor
    newsroom: dict[str, Any] = build_newsroom()
    article = newsroom["featured"]
    campaign = CampaignFactory.create(article=article, recipients=3)
    for reader in SubscriberFactory.create_batch(3):
        DeliveryFactory.create(campaign=campaign, subscriber=reader, email=reader.email)
    admin = f"{site}/{settings.ADMIN_URL}"
    for path in [
        "",
        "articles/article/",
        f"articles/article/{article.pk}/change/",
        "articles/article/add/",
        f"newsletter/campaign/{campaign.pk}/progress/",
        "newsletter/subscriber/",
    ]:
        problems.visit(admin + path)
    assert not problems.found, pformat(problems.found, width=200)


def test_the_rich_text_editor_gets_its_core_styles_without_an_inline_style(site, signed_in_editor, js_page):
    article: Any = build_newsroom()["featured"]
    signed_in_editor.visit(f"{site}/{settings.ADMIN_URL}articles/article/{article.pk}/change/")
    assert not signed_in_editor.found, pformat(signed_in_editor.found, width=200)
    editable = js_page.get_by_role("textbox").and_(js_page.locator(".ProseMirror"))
    assert editable.evaluate("element => getComputedStyle(element).whiteSpace") == "break-spaces"
    editable.click()
    js_page.keyboard.type(" More invented words.")
    assert "More invented words." in js_page.locator("textarea[name=body]").input_value()
