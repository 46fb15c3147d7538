"""A visitor reads, browses, searches and subscribes, in a real browser, at 1280 and 390 px."""

import re

import pytest
from playwright.sync_api import expect

from newsletter.models import Subscriber
from tests.e2e.conftest import screenshot
from tests.e2e.newsroom import build_newsroom

pytestmark = pytest.mark.integration

ANATOMY = [
    ("topics", "Enlargement | Eastern Europe | Economy"),
    ("reading-time", "8 min read"),
    ("title", "Accession talks enter the technical phase"),
    ("standfirst", "After the speeches come the chapters"),
    ("hero", "Image credit: Demo Photo Desk"),
    ("byline", "By Daria Solnik, Ukraine Correspondent"),
    ("editor", "Edited/Reviewed by: Hanna Voss"),
    ("date", " | "),
    ("body", "What comes next"),
    ("disclaimer", "the author's own"),
    ("write-call", "Write and publish your own article"),
    ("signup", "Get every new piece by email"),
]


def test_visitor_opens_the_home_page_and_reads_the_featured_article(site, page):
    build_newsroom()
    page.goto(site + "/")
    assert page.locator(".featured").get_by_role("link", name="Accession talks enter the technical phase").is_visible()
    assert page.get_by_role("heading", name="Get every new piece by email").is_visible()
    screenshot(page, "home")

    page.locator(".featured").get_by_role("link", name="Accession talks enter the technical phase").click()
    page.wait_for_url(re.compile(r"/articles/accession-talks-enter-the-technical-phase/$"))
    boxes = []
    for part, text in ANATOMY:
        element = page.locator(f'[data-anatomy="{part}"]')
        assert element.is_visible(), part
        assert text in " ".join(element.text_content().split()), part
        boxes.append(element.bounding_box()["y"])
    assert boxes == sorted(boxes), "the parts of the article are out of order"
    hero = page.locator('[data-anatomy="hero"] img')
    assert hero.get_attribute("alt") == "Power lines crossing green hills under a blue sky"
    assert hero.evaluate("img => img.naturalWidth") > 0, "the hero image did not load"
    write_call = page.locator('[data-anatomy="write-call"]')
    assert write_call.get_by_role("link", name="Write and publish your own article").get_attribute("href") == "/write/"
    screenshot(page, "article")


def test_visitor_follows_a_topic_and_an_author(site, page):
    build_newsroom()
    page.goto(site + "/articles/a-slow-road-to-the-single-grid/")
    page.locator('[data-anatomy="topics"]').get_by_role("link", name="Energy").click()
    page.wait_for_url(re.compile(r"/topics/energy/$"))
    assert page.get_by_role("heading", level=1, name="Energy").is_visible()
    assert page.get_by_text("Grids, gas, renewables and power prices.").is_visible()
    assert page.get_by_role("link", name="Gas storage before the winter").is_visible()
    assert page.get_by_role("link", name="Border towns wait for the new crossing").count() == 0
    screenshot(page, "topic")

    page.goto(site + "/articles/border-towns-wait-for-the-new-crossing/")
    page.locator('[data-anatomy="byline"]').get_by_role("link", name="Daria Solnik").click()
    page.wait_for_url(re.compile(r"/authors/daria-solnik/$"))
    assert page.get_by_role("heading", level=1, name="Daria Solnik").is_visible()
    assert page.get_by_text("Ukraine Correspondent").first.is_visible()
    assert page.get_by_text("from Kyiv and Warsaw").is_visible()
    assert page.get_by_role("link", name="Accession talks enter the technical phase").is_visible()
    screenshot(page, "author")


def test_visitor_searches_from_the_header(site, page):
    build_newsroom()
    page.goto(site + "/")
    page.get_by_role("searchbox", name="Search articles").first.fill("customs")
    page.get_by_role("button", name="Search").first.click()
    page.wait_for_url(re.compile(r"/search/\?q=customs"))
    assert page.get_by_text("1 result for").is_visible()
    assert page.locator(".result mark").first.inner_text().lower() == "customs"
    screenshot(page, "search")
    page.get_by_role("link", name="Border towns wait for the new crossing").click()
    page.wait_for_url(re.compile(r"/articles/border-towns-wait-for-the-new-crossing/$"))


def test_keyboard_users_can_skip_to_the_content(site, page):
    build_newsroom()
    page.goto(site + "/")
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    assert focused.inner_text() == "Skip to content"
    assert focused.is_visible()


def test_unknown_page_shows_the_friendly_404(site, page):
    response = page.goto(site + "/articles/no-such-piece/")
    assert response.status == 404
    assert page.get_by_role("heading", name="We could not find that page").is_visible()
    screenshot(page, "not-found")


def test_visitor_submits_the_signup_form(site, page):
    build_newsroom()
    page.goto(site + "/articles/accession-talks-enter-the-technical-phase/")
    box = page.locator('[data-anatomy="signup"]')
    box.get_by_label("Email address").fill("new.reader@example.org")
    box.get_by_label("Name").fill("New Reader")
    honeypot = box.locator('input[name="website"]').bounding_box()
    assert honeypot["x"] + honeypot["width"] <= 0, "the honeypot must stay off screen"
    with page.expect_request(re.compile(r"/newsletter/subscribe/$")) as request_info:
        box.get_by_role("button", name="Subscribe").click()
    request = request_info.value
    assert request.method == "POST"
    assert "email=new.reader%40example.org" in request.post_data
    assert "website=" in request.post_data
    response = request.response()
    assert response.status == 200
    # The response has come; the browser may still be drawing the page it carries.
    expect(page.get_by_text(re.compile("check your inbox", re.I)).first).to_be_visible()
    reader = Subscriber.objects.get(email="new.reader@example.org")
    assert (reader.name, reader.status) == ("New Reader", Subscriber.Status.PENDING)
    screenshot(page, "subscribed")
