"""axe-core finds no serious or critical violation (nor a heading-order one) on any public
page type, at 1280 and 390 px."""

import pytest

from newsletter.tokens import make_token
from tests.e2e.axe import assert_accessible, axe_violations
from tests.e2e.newsroom import build_newsroom
from tests.support.factories import SubscriberFactory

pytestmark = pytest.mark.integration

PAGES = [
    "/",
    "/articles/accession-talks-enter-the-technical-phase/",
    "/articles/what-a-budget-review-can-and-cannot-fix/",
    "/topics/energy/",
    "/authors/daria-solnik/",
    "/search/?q=customs",
    "/search/?q=nothing-like-this",
    "/articles/no-such-piece/",
    "/write/",
    "/newsletter/subscribe/",
    "/newsletter/privacy/",
]


def test_public_pages_pass_axe(site, page):
    build_newsroom()
    reader = SubscriberFactory.create(email="axe.reader@example.org")
    pages = [
        *PAGES,
        f"/newsletter/preferences/{make_token(reader.pk, 'preferences')}/",
        f"/newsletter/unsubscribe/{make_token(reader.pk, 'unsubscribe')}/",
    ]
    for path in pages:
        page.goto(site + path)
        assert_accessible(page)


def test_the_check_finds_a_skipped_heading_level_and_an_image_without_alt(page):
    html = '<html lang="en"><title>Test</title><main><h1>One</h1><h3>Three</h3><img src="x.png"></main></html>'
    found = axe_violations(page, "data:text/html," + html)
    assert sorted(line.split(" ")[0] for line in found) == ["heading-order", "image-alt"]
