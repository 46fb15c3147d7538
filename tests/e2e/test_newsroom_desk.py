"""A morning at the newsroom desk in a real browser: the dashboard, the writing room, previews, a conflict.

Screenshots at 1280 and 1024 px go to var/screenshots/ (not committed).
"""

from __future__ import annotations

import re
from pathlib import Path
from pprint import pformat
from typing import Any

import pytest
from django.conf import settings as django_settings

from articles import services
from articles.models import Article
from articles.roles import AUTHORS, EDITORS
from newsletter.models import Delivery
from tests.e2e.newsroom import BODY, build_newsroom
from tests.support.factories import AuthorFactory, CampaignFactory, DeliveryFactory, SubscriberFactory, TopicFactory
from tests.support.people import member_of
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "an-invented-password"
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


class Watch:
    """Console errors, uncaught exceptions and CSP violations on every page of a browser context."""

    def __init__(self, context: Any, *, expected: str = "") -> None:
        self.problems: list[str] = []
        self.expected = expected  # a URL part whose refused requests are part of the story
        context.add_init_script(RECORD_VIOLATIONS)
        context.on("page", self.attach)

    def attach(self, page: Any) -> None:
        page.on("console", lambda message: self.console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"uncaught on {page.url}: {error}"))

    def console(self, page: Any, message: Any) -> None:
        if message.type != "error":
            return
        if self.expected and self.expected in (message.location or {}).get("url", ""):
            return
        self.problems.append(f"{page.url}: {message.text}")

    def check(self, page: Any) -> None:
        for frame in page.frames:
            if frame.is_detached():
                continue
            violations = frame.evaluate("window.__violations || []")
            self.problems.extend(f"{frame.url}: {violation}" for violation in violations)
        assert not self.problems, pformat(self.problems, width=200)


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def editor(username: str) -> Any:
    user = member_of(EDITORS, username=username, email=f"{username}@example.org", first_name=username.capitalize())
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(page: Any, site: str, username: str) -> None:
    page.goto(f"{site}/{django_settings.ADMIN_URL}login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site}/{django_settings.ADMIN_URL}")


@pytest.fixture
def desk(site: str, settings: Any) -> dict[str, Any]:
    """The demo newsroom, an editor (Hanna), a second editor (Piet) and Cora's piece waiting for review."""
    settings.REQUIRE_STAFF_2FA = False
    settings.SITE_URL = site
    featured = build_newsroom()["featured"]
    readers = SubscriberFactory.create_batch(3, status="confirmed")
    campaign = CampaignFactory.create(article=featured, recipients=3, status="sending")
    for number, reader in enumerate(readers):
        DeliveryFactory.create(
            campaign=campaign, subscriber=reader, email=reader.email, status="sent" if number == 0 else "pending"
        )
    cora = member_of(AUTHORS, username="cora", email="cora@example.org")
    AuthorFactory.create(name="Cora Lindqvist", slug="cora-lindqvist", user=cora, role="Baltic Correspondent")
    topic = TopicFactory.create(name="Baltic", slug="baltic")
    piece = services.create_draft(
        by=cora,
        title="Ferries, ports and a quiet sea",
        standfirst="Shipping lines redraw their Baltic timetables.",
        body=BODY,
        topics=[topic],
    )
    services.submit_for_review(article=piece, by=cora)
    return {"hanna": editor("hanna"), "piet": editor("piet"), "piece": piece, "campaign": campaign}


def caret_at_end(body: Any) -> None:
    """Put the caret at the end of the editor's text, as a writer does: a click just past the
    end of the last line.

    The browser moves its caret at once, but the editor takes the click into its own state
    (where Enter and typing go) a moment later, from a selection event; a key pressed before
    that acts at the editor's old selection (the start of the text) on a busy machine. So wait
    until the editor's own selection is at the end.
    """
    last = body.locator(":scope > *").last
    box = last.bounding_box()
    last.click(position={"x": box["width"] - 1, "y": box["height"] - 1})
    body.page.wait_for_function(
        """element => {
          const state = element.editor.state, selection = state.selection;
          return element.editor.isFocused && selection.empty && selection.from === state.doc.content.size - 1;
        }""",
        arg=body.element_handle(),
    )


def open_piece(page: Any, site: str, piece: Article) -> Any:
    page.goto(f"{site}/{django_settings.ADMIN_URL}articles/article/{piece.pk}/change/")
    body = page.locator(".ProseMirror[role=textbox]")
    body.wait_for()
    return body


def test_an_editor_s_morning_dashboard_writing_room_and_previews(site, browser, desk):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watch = Watch(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    piece = desk["piece"]
    try:
        sign_in(page, site, "hanna")
        waiting = page.locator("#waiting-for-review")
        assert "Ferries, ports and a quiet sea" in waiting.inner_text()
        assert "Cora Lindqvist" in waiting.inner_text()
        assert "Euro Prospects newsroom" in page.locator("#site-name").inner_text()
        assert page.locator("#readers svg.growth-chart rect").count() == 30
        # The campaign still sending follows its deliveries live.
        sent = page.locator(f"#campaigns tr[data-campaign='{desk['campaign'].pk}'] [data-field=sent]")
        assert sent.inner_text() == "1"
        Delivery.objects.filter(campaign=desk["campaign"], status="pending").update(status="sent")
        page.locator(f"#campaigns tr[data-campaign='{desk['campaign'].pk}'] [data-field=sent]", has_text="3").wait_for()
        shoot(page, "dashboard")
        watch.check(page)

        waiting.get_by_role("link", name="Ferries, ports and a quiet sea").click()
        body = page.locator(".ProseMirror[role=textbox]")
        body.wait_for()
        # The body fills the screen's height at once, and grows with the text.
        start_height = body.bounding_box()["height"]
        assert start_height >= 900 - 300
        words = page.locator("[data-count=words]")
        start_words = int(words.inner_text().replace(",", ""))
        assert start_words > 50
        caret_at_end(body)
        for _ in range(25):
            page.keyboard.press("Enter")
            page.keyboard.type("Harbour masters count the ferries twice a day in winter.")
        wait_until(lambda: int(words.inner_text().replace(",", "")) == start_words + 25 * 10, timeout=5)
        assert body.bounding_box()["height"] > start_height

        # Autosave keeps it within seconds, without the Save button.
        def typed_paragraphs() -> int:
            return Article.objects.get(pk=piece.pk).body.count("ferries twice a day in winter.</p>")

        def autosave_state() -> str:
            status = page.locator("[data-autosave-status]").inner_text()
            return f"{typed_paragraphs()} typed paragraphs stored; the page says {status!r}"

        wait_until(lambda: typed_paragraphs() == 25, timeout=15, describe=autosave_state)
        # The row is committed a moment before the browser reads the answer.
        page.locator("[data-autosave-status]", has_text="Draft saved at").wait_for()
        stored = Article.objects.get(pk=piece.pk)
        assert stored.history.filter(history_change_reason="Autosaved").count() == 1
        assert stored.status == Article.Status.IN_REVIEW
        shoot(page, "writing-room")
        watch.check(page)

        # History lists the versions: the run of autosaves is one of them.
        page.get_by_role("link", name="History").click()
        page.wait_for_url(re.compile(r"/history/$"))
        autosaved = page.locator("#change-history tbody tr").filter(has_text="Autosaved")
        autosaved.first.wait_for()
        assert autosaved.count() == 1
        watch.check(page)
        page.go_back()
        page.get_by_role("link", name="Preview web and email").click()
        page.get_by_role("link", name=re.compile("Phone")).click()
        page.wait_for_url(re.compile(r"width=phone"))
        frames = page.locator("iframe.preview-frame")
        assert frames.count() == 2
        for index in range(2):
            assert frames.nth(index).bounding_box()["width"] == pytest.approx(390, abs=1)
        web = page.frame_locator("iframe.preview-frame").first
        email = page.frame_locator("iframe.preview-frame").last
        assert "Harbour masters count the ferries" in web.locator("body").inner_text()
        assert "Ferries, ports and a quiet sea" in email.locator("body").inner_text()
        page.wait_for_load_state("networkidle")
        shoot(page, "preview-phone")
        watch.check(page)
    finally:
        context.close()


def test_two_editors_on_one_piece_see_the_conflict_and_keep_both_changes(site, browser, desk):
    piece = desk["piece"]
    first = browser.new_context(viewport={"width": 1280, "height": 900})
    second = browser.new_context(viewport={"width": 1024, "height": 900})
    # The second editor's autosave is refused (409) once the first has saved: that is the story.
    watches = [Watch(first), Watch(second, expected="/autosave/")]
    try:
        hanna, piet = first.new_page(), second.new_page()
        for page, name in [(hanna, "hanna"), (piet, "piet")]:
            page.set_default_timeout(15_000)
            sign_in(page, site, name)
        hanna_body = open_piece(hanna, site, piece)
        open_piece(piet, site, piece)

        caret_at_end(hanna_body)
        hanna.keyboard.press("Enter")
        hanna.keyboard.type("A paragraph Hanna added.")
        # The page that answers the save, not the one already loaded: then the save is stored.
        with hanna.expect_navigation():
            hanna.get_by_role("button", name="Save and continue editing").click()
        assert "A paragraph Hanna added." in Article.objects.get(pk=piece.pk).body

        piet.locator("#id_title").fill("Ferries, ports and a busy sea")
        piet.get_by_role("button", name="Save and continue editing").click()
        conflict = piet.locator(".edit-conflict")
        conflict.wait_for()
        assert "Hanna saved this piece" in conflict.inner_text()
        assert Article.objects.get(pk=piece.pk).title == "Ferries, ports and a quiet sea"  # nothing overwritten
        shoot(piet, "edit-conflict")

        piet.get_by_role("button", name="Save this merged version").click()
        piet.locator(".messagelist .success").wait_for()
        stored = Article.objects.get(pk=piece.pk)
        assert stored.title == "Ferries, ports and a busy sea"
        assert "A paragraph Hanna added." in stored.body  # merged in: only Hanna changed the body
        for watch, page in zip(watches, [hanna, piet], strict=True):
            watch.check(page)
    finally:
        first.close()
        second.close()
