"""An article's newsletter campaign as an editor sees it on the article pages of the admin."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import Article
from newsletter.models import Delivery
from tests.support.factories import ArticleFactory, CampaignFactory, DeliveryFactory

Status = Delivery.Status


def change_url(article):
    return reverse("admin:articles_article_change", args=[article.pk])


def newsletter_box(page):
    """The text of the Newsletter fieldset, whitespace squeezed."""
    html = page.content.decode()
    start = html.index('id="newsletter-campaign-heading"')
    box = html[start : html.index("</fieldset>", start)]
    return " ".join(box.split())


def figures(box):
    """The newsletter table as {label: shown value}."""
    return dict(re.findall(r'<th scope="row">([^<]+)</th>\s*<td data-field="[a-z_]+">([^<]*)</td>', box))


def deliveries(campaign, **per_status):
    for status, count in per_status.items():
        DeliveryFactory.create_batch(count, campaign=campaign, status=status)


def test_the_article_page_shows_the_campaign_totals(client, eva):
    campaign = CampaignFactory.create(recipients=10)
    deliveries(campaign, sent=4, pending=1, sending=1, retrying=1, failed=2, skipped=1)
    client.force_login(eva)

    box = newsletter_box(client.get(change_url(campaign.article)))

    assert figures(box) == {
        "Status": "Sending",
        "Recipients": "10",
        "Sent": "4",
        "Pending": "2",  # waiting and held by a batch right now
        "Retrying": "1",
        "Failed": "2",
        "Skipped": "1",
    }
    assert "70.0</span>% done" in box


def test_the_article_page_links_to_the_live_progress_of_its_campaign(client, eva):
    campaign = CampaignFactory.create()
    client.force_login(eva)

    box = newsletter_box(client.get(change_url(campaign.article)))

    assert f'href="{reverse("admin:newsletter_campaign_progress", args=[campaign.pk])}"' in box
    assert f'data-url="{reverse("admin:newsletter_campaign_progress_json", args=[campaign.pk])}"' in box


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"send_to_subscribers": False}, "Not sent to subscribers: “Send to subscribers” is off."),
        ({"status": Article.Status.DRAFT, "published_at": None}, "Will be sent to subscribers when it is published."),
        ({"status": Article.Status.UNPUBLISHED}, "Will be sent to subscribers if it is published again."),
        ({}, "Starting: a worker plans the campaign moments after publishing."),
        (
            {"published_at": timezone.now() - timedelta(days=2)},
            "Published without a campaign: “Send to subscribers” was off when it was published",
        ),
    ],
)
def test_the_article_page_says_why_there_is_no_campaign(client, eva, fields, text):
    article = ArticleFactory.create(**fields)
    client.force_login(eva)

    box = newsletter_box(client.get(change_url(article)))

    assert text in box
    assert "Recipients" not in box


def test_a_scheduled_article_says_when_it_will_be_sent(client, eva, settings):
    settings.TIME_ZONE = "Europe/Brussels"
    article = ArticleFactory.create(
        status=Article.Status.SCHEDULED, published_at=None, publish_at=datetime(2031, 5, 9, 9, 30, tzinfo=UTC)
    )
    client.force_login(eva)

    box = newsletter_box(client.get(change_url(article)))

    assert "Will be sent to subscribers when it is published (9 May 2031, 11:30 a.m.)." in box


def test_the_article_page_keeps_its_workflow_buttons(client, eva):
    article = ArticleFactory.create(status=Article.Status.APPROVED, published_at=None)
    client.force_login(eva)

    page = client.get(change_url(article)).content.decode()

    assert 'name="_workflow" value="publish"' in page
    assert "Will be sent to subscribers when it is published." in page


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_article_page_needs_as_many_queries_for_a_big_campaign_as_for_a_small_one(client, eva):
    campaign = CampaignFactory.create()
    deliveries(campaign, sent=1, failed=1)
    client.force_login(eva)
    client.get(change_url(campaign.article))  # warm the session and caches
    small = count_queries(client, change_url(campaign.article))

    deliveries(campaign, sent=20, pending=10, retrying=5, failed=5, skipped=5)
    big = count_queries(client, change_url(campaign.article))

    assert big == small


def test_the_article_list_shows_and_filters_by_newsletter_without_a_query_per_row(client, eva):
    sending = CampaignFactory.create(recipients=3, article__title="Grid money, explained")
    ArticleFactory.create(title="Quiet week in Brussels")
    client.force_login(eva)
    url = reverse("admin:articles_article_changelist")
    client.get(url)
    few = count_queries(client, url)

    page = client.get(url).content.decode()
    progress_url = reverse("admin:newsletter_campaign_progress", args=[sending.pk])
    assert f'<a href="{progress_url}">Sending, 3 recipients</a>' in page
    assert "?newsletter=none" in page

    CampaignFactory.create_batch(4, recipients=2)
    ArticleFactory.create_batch(4)
    assert count_queries(client, url) == few

    filtered = client.get(url, {"newsletter": "none"}).content.decode()
    assert "Quiet week in Brussels" in filtered
    assert "Grid money, explained" not in filtered
    assert "Grid money, explained" in client.get(url, {"newsletter": "sending"}).content.decode()


def test_an_author_sees_no_trace_of_the_newsletter_on_her_articles(client, cora):
    article = ArticleFactory.create(title="Baltic ferries, again", created_by=cora)
    campaign = CampaignFactory.create(article=article, recipients=3)
    client.force_login(cora)

    page = client.get(change_url(article))
    listing = client.get(reverse("admin:articles_article_changelist"))

    assert page.status_code == 200
    assert "Baltic ferries, again" in page.content.decode()
    assert b"newsletter-campaign-heading" not in page.content
    assert reverse("admin:newsletter_campaign_progress", args=[campaign.pk]).encode() not in page.content
    assert listing.status_code == 200
    assert "Baltic ferries, again" in listing.content.decode()
    assert b"3 recipients" not in listing.content
    assert b"?newsletter=" not in listing.content
