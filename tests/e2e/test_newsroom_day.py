"""A newsroom day in a real browser, from a correspondent's first draft to the readers' inboxes.

Nika, a correspondent with an account, writes a piece with a picture and submits it. Hanna,
an editor, finds it on her dashboard, previews it at phone width and sends it back with a
note, which reaches Nika by email. Both then edit the piece at once (an edit conflict,
merged); Nika resubmits, Hanna shares a preview link with a lawyer (it works without an
account, then expires), approves and schedules the piece. The scheduled-publishing task
publishes it on a real Celery worker, which also sends the campaign to the readers through
the recording SMTP server while Hanna's dashboard follows it to "Finished".

Every page of every browser is watched for console errors, uncaught exceptions and
Content-Security-Policy violations. Screenshots at 1280 and 1024 px go to var/screenshots/.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pprint import pformat
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from articles import tasks
from articles.models import Article, PreviewLink
from articles.roles import AUTHORS
from euro_prospects.celery import app as celery_app
from newsletter.models import Campaign
from tests.e2e.newsroom import landscape
from tests.e2e.test_newsroom_desk import PASSWORD, caret_at_end, editor, shoot, sign_in
from tests.support.factories import AuthorFactory, SubscriberFactory, TopicFactory
from tests.support.people import member_of
from tests.support.smtp import SMTPServer
from tests.support.workers import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

TITLE = "Night trains return to the eastern border"
NOTE = "Good start. Please add who pays for the new sleeper cars, and cut the second paragraph."
READERS = ["reader.one@example.org", "reader.two@example.org", "reader.three@example.org"]
# Reported from every frame of every page the moment it happens, so a violation on a page
# the browser has already left is not lost.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || "the page"}:${event.lineNumber}`);
});
"""


class Watch:
    """Console errors, uncaught exceptions and CSP violations on every page of a browser context.

    ``refused`` names URL parts whose refused requests ("Failed to load resource: … 409")
    are part of the story, such as an autosave refused during an edit conflict.
    """

    def __init__(self, context: Any, *refused: str) -> None:
        self.problems: list[str] = []
        self.refused = refused
        context.expose_binding("__reportViolation", self.violation)
        context.add_init_script(REPORT_VIOLATIONS)
        context.on("page", self.attach)

    def violation(self, source: dict[str, Any], text: str) -> None:
        self.problems.append(f"{source['frame'].url}: {text}")

    def attach(self, page: Any) -> None:
        page.set_default_timeout(20_000)
        page.on("console", lambda message: self.console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"uncaught on {page.url}: {error}"))

    def console(self, page: Any, message: Any) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and any(part in url for part in self.refused):
            return
        self.problems.append(f"{page.url}: {message.text} ({url})")

    def check(self) -> None:
        assert not self.problems, pformat(self.problems, width=200)


class ReaderGate:
    """Holds the readers' copies at the SMTP server until released, so the dashboard can be
    seen while the campaign is still sending. Other mail passes once the gate opens too:
    the server answers one message at a time."""

    def __init__(self, server: SMTPServer) -> None:
        self.open = threading.Event()
        server.handler.before_accept = self.hold

    def hold(self, message: Any) -> None:
        if any(recipient.lower() in READERS for recipient in message.recipients):
            self.open.wait(timeout=60)


@pytest.fixture
def newsroom(site: str, settings: Any, smtp_server: SMTPServer) -> dict[str, Any]:
    """Hanna the editor, Nika the correspondent (Authors group, staff account), three readers."""
    settings.REQUIRE_STAFF_2FA = False
    settings.SITE_URL = site
    for address in READERS:
        SubscriberFactory.create(email=address, status="confirmed")
    nika = member_of(AUTHORS, username="nika", email="nika@example.org", first_name="Nika")
    nika.set_password(PASSWORD)
    nika.save()
    AuthorFactory.create(name="Nika Albrecht", slug="nika-albrecht", user=nika, role="Eastern Europe Correspondent")
    TopicFactory.create(name="Transport", slug="transport")
    return {"hanna": editor("hanna"), "nika": nika}


@pytest.fixture
def worker(newsroom: dict[str, Any], site: str, smtp_server: SMTPServer, settings: Any) -> Iterator[WorkerProcess]:
    """A real Celery worker: it sends the authors' emails and the campaign to the recording SMTP server."""
    celery_app.control.purge()
    env = {"EMAIL_URL": smtp_server.url, "SITE_URL": site, "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    process = WorkerProcess(extra_env=env).start(timeout=60)
    try:
        yield process
    finally:
        process.stop()


def mail_to(smtp_server: SMTPServer, address: str, count: int) -> list[Any]:
    return wait_until(lambda: len(found := smtp_server.handler.to(address)) >= count and found, timeout=60)


def text_of(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def admin_url(site: str, path: str = "") -> str:
    return f"{site}/{django_settings.ADMIN_URL}{path}"


def piece() -> Article:
    return Article.objects.get(title=TITLE)


def click_and_wait(page: Any, name: str) -> None:
    """Press a button that posts the article form; wait for the page that answers."""
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()


def write_the_piece(page: Any, site: str, tmp_path: Any) -> None:
    page.goto(admin_url(site, "articles/article/add/"))
    page.locator("#id_title").fill(TITLE)
    page.locator("#id_standfirst").fill("Sleeper services are back on three routes, and the tickets sell out.")
    body = page.locator(".ProseMirror[role=textbox]")
    body.click()
    page.keyboard.type("The first sleeper left the capital at ten past nine, every berth taken.")
    page.keyboard.press("Enter")
    page.keyboard.type("The second paragraph repeats what the first one said, at greater length.")
    picture = tmp_path / "platform.jpg"
    picture.write_bytes(landscape((70, 90, 140), (60, 90, 70), "platform.jpg").read())
    page.locator("#id_hero_image").set_input_files(str(picture))
    page.locator("#id_hero_image_alt").fill("A night train waiting at a platform under hills")
    page.locator("#id_hero_image_credit").fill("Demo Photo Desk")
    click_and_wait(page, "Save and continue editing")
    page.locator(".messagelist .success").wait_for()
    click_and_wait(page, "Submit for review")
    assert "is now in review" in page.locator(".messagelist").inner_text()


def test_a_newsroom_day_from_draft_to_the_readers_inboxes(site, browser, newsroom, smtp_server, worker, tmp_path):
    contexts = {name: browser.new_context(viewport={"width": 1280, "height": 900}) for name in ("nika", "hanna")}
    contexts["lawyer"] = browser.new_context(viewport={"width": 1024, "height": 900})
    watches = {
        "nika": Watch(contexts["nika"], "/autosave/"),  # her autosave is refused once Hanna saved: the conflict
        "hanna": Watch(contexts["hanna"]),
        "lawyer": Watch(contexts["lawyer"], "/preview/"),  # the expired link answers 410
    }
    gate = ReaderGate(smtp_server)
    try:
        nika, hanna = contexts["nika"].new_page(), contexts["hanna"].new_page()
        sign_in(nika, site, "nika")
        write_the_piece(nika, site, tmp_path)
        assert piece().status == Article.Status.IN_REVIEW
        assert piece().hero_image

        # The editor finds it on the dashboard and previews web and email at phone width.
        sign_in(hanna, site, "hanna")
        waiting = hanna.locator("#waiting-for-review")
        assert "Nika Albrecht" in waiting.inner_text()
        shoot(hanna, "day-dashboard-waiting")
        waiting.get_by_role("link", name=TITLE).click()
        hanna.locator(".ProseMirror[role=textbox]").wait_for()
        hanna.get_by_role("link", name="Preview web and email").click()
        hanna.get_by_role("link", name=re.compile("Phone")).click()
        hanna.wait_for_url(re.compile(r"width=phone"))
        frames = hanna.locator("iframe.preview-frame")
        for index in range(2):
            assert frames.nth(index).bounding_box()["width"] == pytest.approx(390, abs=1)
        web, email = hanna.frame_locator("iframe.preview-frame").first, hanna.frame_locator("iframe.preview-frame").last
        assert "every berth taken" in web.locator("body").inner_text()
        web.locator("img[alt='A night train waiting at a platform under hills']").first.wait_for()
        assert TITLE in email.locator("body").inner_text()
        hanna.wait_for_load_state("networkidle")
        shoot(hanna, "day-preview-phone")

        # She sends it back with a note; the correspondent gets it by email, with a link to the piece.
        hanna.goto(admin_url(site, f"articles/article/{piece().pk}/change/"))
        hanna.locator("#id_workflow_note").fill(NOTE)
        click_and_wait(hanna, "Send back to draft")
        assert "is now draft" in hanna.locator(".messagelist").inner_text()
        [sent_back] = mail_to(smtp_server, "nika@example.org", 1)
        assert "asks for changes" in sent_back["Subject"]
        assert NOTE in " ".join(text_of(sent_back).split())
        assert admin_url(site, f"articles/article/{piece().pk}/change/") in text_of(sent_back)
        assert sent_back["Reply-To"] == "hanna@example.org"

        # Nika finds the note on her dashboard and opens the piece; Hanna, on it too, tightens the standfirst.
        nika.goto(admin_url(site))
        assert NOTE in nika.locator("#sent-back").inner_text()
        nika.locator("#sent-back").get_by_role("link", name=TITLE).click()
        nika_body = nika.locator(".ProseMirror[role=textbox]")
        nika_body.wait_for()
        hanna.locator("#id_standfirst").fill("Sleeper trains are back on three routes, and they sell out.")
        click_and_wait(hanna, "Save and continue editing")
        assert piece().standfirst.startswith("Sleeper trains are back")

        # Nika's save meets Hanna's: she sees who saved, keeps both changes and resubmits.
        caret_at_end(nika_body)
        nika.keyboard.press("Enter")
        nika.keyboard.type("The new sleeper cars are paid for by the two railways and a regional fund.")
        click_and_wait(nika, "Save and continue editing")
        conflict = nika.locator(".edit-conflict")
        assert "Hanna saved this piece" in conflict.inner_text()
        assert "paid for by the two railways" not in piece().body  # nothing overwritten
        shoot(nika, "day-edit-conflict")
        click_and_wait(nika, "Save this merged version")
        stored = piece()
        assert "paid for by the two railways" in stored.body
        assert stored.standfirst.startswith("Sleeper trains are back")  # Hanna's change, taken in
        click_and_wait(nika, "Submit for review")
        assert piece().status == Article.Status.IN_REVIEW

        # Hanna shares a preview link with a lawyer, who has no account.
        hanna.goto(admin_url(site))
        hanna.locator("#waiting-for-review").get_by_role("link", name=TITLE).click()
        hanna.locator("#id_preview_label").fill("Legal review")
        click_and_wait(hanna, "Make a preview link")
        link = hanna.locator(".messagelist code").inner_text()
        assert link.startswith(f"{site}/preview/")
        lawyer = contexts["lawyer"].new_page()
        response = lawyer.goto(link)
        assert response.status == 200
        assert "Draft preview" in lawyer.locator("body").inner_text()
        assert "paid for by the two railways" in lawyer.locator("body").inner_text()
        assert lawyer.locator("meta[name=robots]").get_attribute("content") == "noindex, nofollow"
        shoot(lawyer, "day-shared-preview")

        # She approves it with a note (Nika is told) and schedules it for tomorrow.
        hanna.reload()
        assert "1 time" in hanna.locator("#shared-previews").inner_text()
        hanna.locator("#id_workflow_note").fill("Thank you, this is ready.")
        click_and_wait(hanna, "Approve")
        accepted = mail_to(smtp_server, "nika@example.org", 2)[1]
        assert "is accepted" in accepted["Subject"]
        assert "Thank you, this is ready." in text_of(accepted)
        tomorrow = timezone.localtime() + timedelta(days=1)
        hanna.locator("#id_publish_at_0").fill(tomorrow.strftime("%Y-%m-%d"))
        hanna.locator("#id_publish_at_1").fill(tomorrow.strftime("%H:%M:%S"))
        click_and_wait(hanna, "Schedule at “Publish at”")
        assert piece().status == Article.Status.SCHEDULED
        hanna.goto(admin_url(site))
        assert TITLE in hanna.locator("#scheduled").inner_text()

        # A week on, the link has expired: the lawyer's page says so.
        PreviewLink.objects.filter(article=piece()).update(expires_at=timezone.now() - timedelta(minutes=1))
        response = lawyer.reload()
        assert response.status == 410
        assert "This preview link has expired." in lawyer.locator("main, body").first.inner_text()
        shoot(lawyer, "day-preview-expired")

        # Its time comes: the scheduled-publishing task (beat's) runs on the worker and publishes it.
        Article.objects.filter(pk=piece().pk).update(publish_at=timezone.now() - timedelta(seconds=1))
        tasks.publish_due_articles.delay()
        campaign = wait_until(lambda: Campaign.objects.filter(article=piece()).first(), timeout=60)
        assert piece().status == Article.Status.PUBLISHED

        # The dashboard follows the campaign while the readers' copies are held, then to the end.
        hanna.goto(admin_url(site))
        row = hanna.locator(f"#campaigns tr[data-campaign='{campaign.pk}']")
        assert row.locator("[data-field=status_display]").inner_text() in ("Planning", "Sending")
        shoot(hanna, "day-dashboard-sending")
        gate.open.set()
        row.locator("[data-field=status_display]", has_text="Finished").wait_for(timeout=60_000)
        assert row.locator("[data-field=sent]").inner_text() == "3"
        hanna.set_viewport_size({"width": 1024, "height": 900})
        assert row.locator("progress").bounding_box()["width"] >= 100  # a bar, not a sliver
        shoot(hanna, "day-dashboard-finished")
        for address in READERS:
            [copy] = smtp_server.handler.to(address)
            assert TITLE in copy["Subject"]
        live = mail_to(smtp_server, "nika@example.org", 3)[2]
        assert "is live" in live["Subject"]
        assert f"/articles/{piece().slug}/" in text_of(live)
        assert smtp_server.handler.to("hanna@example.org") == []  # editors off the byline hear nothing

        for watch in watches.values():
            watch.check()
    finally:
        gate.open.set()
        for context in contexts.values():
            context.close()
