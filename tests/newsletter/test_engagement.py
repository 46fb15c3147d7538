"""Engagement figures (docs/engagement.md), end to end: a campaign is sent to a recording
SMTP server, the links are taken from the received messages and followed through
``/r/<token>/``; events go through the real Redis stream into PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from articles.models import Topic
from articles.signals import article_published
from newsletter import sending, services
from newsletter.engagement import events, rollup
from newsletter.engagement.figures import campaign_figures
from newsletter.engagement.tokens import link_part, reader_part
from newsletter.models import Campaign, CampaignLink, ClickEvent, Delivery, ReaderClick, Subscriber
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, CampaignFactory, SubscriberFactory, TopicFactory
from tests.support.mail import links_in
from tests.support.people import client_with_token
from tests.support.workers import wait_until

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
SCANNER = "Mozilla/5.0 (compatible; SafeLinks link checker)"
REPORT = "https://example.net/an-invented-report"


@pytest.fixture(autouse=True)
def empty_event_stream() -> None:
    events.broker_redis().delete(events.stream_key())


@pytest.fixture
def windows(settings: Any) -> Any:
    """Short scanner windows, so that a test waits a second instead of ten."""
    settings.NEWSLETTER_SCANNER_GRACE_SECONDS = 0
    settings.NEWSLETTER_SCANNER_BURST_SECONDS = 1
    return settings


def sent_campaign(monkeypatch: Any, readers: int = 2) -> tuple[Campaign, list[Subscriber]]:
    """A campaign of an article with a link in its body, sent in this process to ``smtp_server``."""
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)
    article = ArticleFactory.create(
        title="Ports and the price of patience",
        body=f'<p>The harbour board published <a href="{REPORT}">its invented report</a> today.</p>',
        topics=[Topic.objects.filter(name="Transport").first() or TopicFactory.create(name="Transport")],
    )
    subscribers = [SubscriberFactory.create() for _ in range(readers)]
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass
    return campaign, subscribers


def tracked_links(smtp_server: Any, reader: Subscriber) -> dict[str, str]:
    """The reader's tracked links, from the message received, by where they lead."""
    [message] = smtp_server.handler.to(reader.email)
    html = message.get_body(("html",)).get_content()
    found = {}
    for link in [*links_in(message), *re.findall(r'href="([^"]+)"', html)]:
        path = urlsplit(link).path
        if path.startswith("/r/"):
            token = path.split("/")[2]
            found[CampaignLink.objects.get(pk=int(token.split(".")[0], 36)).url] = path
    return found


def click(path: str, agent: str = BROWSER, method: str = "get") -> Any:
    return getattr(Client(), method)(path, HTTP_USER_AGENT=agent)


def later(seconds: float) -> Any:
    """The clock moved on by ``seconds`` (events carry the web host's time): no waiting."""
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=True)


def settle_and_flush() -> None:
    with later(1.1):  # past the burst window, so the events are settled
        events.flush_events()


@pytest.mark.django_db
def test_the_redirect_leads_to_the_original_url_and_counts_a_human_click_once_per_reader_and_link(
    smtp_server, windows, monkeypatch
):
    campaign, (reader, other) = sent_campaign(monkeypatch)
    links = tracked_links(smtp_server, reader)
    assert campaign.article is not None
    article_url = f"{windows.SITE_URL}{campaign.article.get_absolute_url()}"
    assert set(links) == {article_url, REPORT}
    assert tracked_links(smtp_server, other)[REPORT] != links[REPORT]  # each reader's own token

    first = click(links[article_url])
    click(links[article_url])
    assert first.status_code == 302
    assert first["Location"] == article_url
    assert first["Cache-Control"] == "no-store"
    assert not ClickEvent.objects.exists()  # the request path wrote to Redis only
    with later(1.1):  # a second link later: not a burst
        assert click(links[REPORT])["Location"] == REPORT
        settle_and_flush()

    figures = campaign_figures(campaign)
    assert figures["delivered"] == 2
    assert figures["human_clicks"] == 2
    assert figures["repeat_clicks"] == 1
    assert figures["clicking_readers"] == 1
    assert figures["click_rate"] == 0.5
    assert figures["scanner_hits"] == 0
    assert figures["web_visits"] == 2  # both arrivals on the article page
    assert {link["url"]: link["human_clicks"] for link in figures["top_links"]} == {article_url: 1, REPORT: 1}
    assert sum(figures["clicks_by_hour"]) == 2
    assert not ReaderClick.objects.exists()  # no per-reader record by default
    assert set(ClickEvent.objects.values_list("reader", flat=True)) != {str(reader.pk)}


@pytest.mark.django_db
def test_a_scanner_burst_head_requests_and_early_fetches_are_scanner_hits_not_clicks(smtp_server, windows, monkeypatch):
    campaign, (reader, other) = sent_campaign(monkeypatch)
    for path in tracked_links(smtp_server, reader).values():  # every link at once, with a browser's agent
        assert click(path).status_code == 302
    [path, *_] = tracked_links(smtp_server, other).values()
    assert click(path, method="head").status_code == 302
    click(path, agent=SCANNER)
    click(path, agent="python-requests/2.32")
    settle_and_flush()

    figures = campaign_figures(campaign)
    assert figures["human_clicks"] == 0
    assert figures["clicking_readers"] == 0
    assert figures["scanner_hits"] == 5


@pytest.mark.django_db
def test_a_fetch_right_after_delivery_is_a_scanner_hit(smtp_server, windows, monkeypatch):
    windows.NEWSLETTER_SCANNER_GRACE_SECONDS = 60
    campaign, (reader, _) = sent_campaign(monkeypatch)
    click(tracked_links(smtp_server, reader)[REPORT])
    settle_and_flush()
    assert campaign_figures(campaign)["scanner_hits"] == 1
    assert campaign_figures(campaign)["human_clicks"] == 0


@pytest.mark.django_db
def test_forged_and_altered_tokens_are_refused_and_never_redirect_anywhere(smtp_server, windows, monkeypatch):
    _, (reader, other) = sent_campaign(monkeypatch)
    path = tracked_links(smtp_server, reader)[REPORT]
    token = path.split("/")[2]
    link, link_signature, who, who_signature = token.split(".")
    other_token = tracked_links(smtp_server, other)[REPORT].split("/")[2]
    flipped = "A" if link_signature[0] != "A" else "B"
    forged = [
        f"{link}.{flipped}{link_signature[1:]}.{who}.{who_signature}",  # altered link signature
        f"{int(link, 36) + 1:x}.{link_signature}.{who}.{who_signature}",  # another link, same signature
        f"{link}.{link_signature}.{other_token.split('.')[2]}.{who_signature}",  # another reader, same signature
        f"{link}.{link_signature}.{who}.{who_signature[:-1]}",  # truncated
        "1.AAAAAAAAAAAAAAAA.1.AAAAAAAAAAAAAAAA",
        "not-a-token",
    ]
    # This reader's half on the same link of another campaign: signed for the other campaign only.
    elsewhere = CampaignLink.objects.create(campaign=CampaignFactory.create(), url=REPORT, url_hash="x" * 64)
    forged.append(f"{link_part(elsewhere.pk)}.{who}.{who_signature}")
    assert click(f"/r/{link_part(elsewhere.pk)}.{reader_part(elsewhere.campaign_id, 1)}/").status_code == 302
    for bad in forged:
        answer = click(f"/r/{bad}/")
        assert answer.status_code == 400, bad
        assert "Location" not in answer
    answer = click("/r/https:%2F%2Fevil.example/")
    assert answer.status_code == 404
    assert "Location" not in answer
    answer = click(f"{path}?url=https://evil.example/")
    assert answer["Location"] == REPORT  # a query string changes nothing
    assert click(path, method="post").status_code == 405


@pytest.mark.django_db
def test_a_link_keeps_working_after_its_campaign_ended(smtp_server, windows, monkeypatch):
    campaign, (reader, _) = sent_campaign(monkeypatch)
    path = tracked_links(smtp_server, reader)[REPORT]
    sending.cancel_campaign(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.FINISHED, finished_at=timezone.now())
    assert click(path)["Location"] == REPORT


@pytest.mark.django_db
def test_the_roll_up_keeps_every_figure_and_deletes_the_raw_events(smtp_server, windows, monkeypatch):
    campaign, (reader, other) = sent_campaign(monkeypatch)
    click(tracked_links(smtp_server, reader)[REPORT])
    click(tracked_links(smtp_server, reader)[REPORT])
    click(tracked_links(smtp_server, other)[REPORT], method="head")
    settle_and_flush()
    services.unsubscribe(subscriber=other, reason="one-click")
    before = campaign_figures(campaign)
    assert before["human_clicks"] == 1
    assert before["unsubscribes"] == 1

    rolled = rollup.roll_up(now=timezone.now() + timedelta(days=windows.ANALYTICS_RETENTION_DAYS, minutes=1))

    assert rolled == 3
    assert not ClickEvent.objects.exists()
    assert campaign_figures(campaign) == before


@pytest.mark.django_db
def test_erasure_removes_a_readers_own_clicks_and_unlinks_their_events(smtp_server, windows, monkeypatch):
    windows.NEWSLETTER_PER_READER_STATS = True
    campaign, (reader, _) = sent_campaign(monkeypatch)
    click(tracked_links(smtp_server, reader)[REPORT])
    settle_and_flush()
    assert ReaderClick.objects.filter(subscriber=reader).count() == 1
    exported = services.export_subscriber_data(subscriber=reader)
    assert [c["url"] for c in exported["clicks"]] == [REPORT]

    services.erase_subscriber(subscriber=reader)

    assert not ReaderClick.objects.exists()
    assert set(ClickEvent.objects.values_list("reader", flat=True)) == {""}
    assert campaign_figures(campaign)["human_clicks"] == 1  # the campaign's totals stay


@pytest.mark.django_db
def test_unsubscribes_bounces_and_complaints_count_for_the_readers_latest_campaign(smtp_server, windows, monkeypatch):
    campaign, (reader, other, third) = sent_campaign(monkeypatch, readers=3)
    Client().post(
        f"/newsletter/unsubscribe/{links_in_unsubscribe(smtp_server, reader)}/", {"List-Unsubscribe": "One-Click"}
    )
    services.suppress_subscriber(subscriber=other, status=Subscriber.Status.BOUNCED, reason="550 5.1.1")
    services.suppress_subscriber(subscriber=other, status=Subscriber.Status.BOUNCED, reason="reported again")
    services.suppress_subscriber(subscriber=third, status=Subscriber.Status.COMPLAINED, reason="spam report")

    figures = campaign_figures(campaign)
    assert (figures["unsubscribes"], figures["bounces"], figures["complaints"]) == (1, 1, 1)


def links_in_unsubscribe(smtp_server: Any, reader: Subscriber) -> str:
    [message] = smtp_server.handler.to(reader.email)
    [link] = [link for link in links_in(message) if "/newsletter/unsubscribe/" in link]
    return urlsplit(link).path.split("/")[3]


@pytest.mark.django_db
def test_opens_are_counted_only_when_turned_on_and_labelled_as_a_lower_bound(smtp_server, windows, monkeypatch, eva):
    campaign, (reader, _) = sent_campaign(monkeypatch)
    [message] = smtp_server.handler.to(reader.email)
    assert "/r/" in message.get_body(("html",)).get_content()
    assert 'width="1" height="1"' not in message.get_body(("html",)).get_content()
    assert campaign_figures(campaign)["opens"] is None

    windows.NEWSLETTER_TRACK_OPENS = True
    tracked, (opener, _) = sent_campaign(monkeypatch)
    [message] = smtp_server.handler.to(opener.email)
    html = message.get_body(("html",)).get_content()
    pixel = urlsplit(html.split('width="1" height="1"')[0].rsplit('src="', 1)[1].split('"')[0]).path
    answer = click(pixel)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "image/gif"
    settle_and_flush()
    assert campaign_figures(tracked)["opens"] == 1
    client = Client()
    client.force_login(eva)
    page = client.get(reverse("admin:newsletter_campaign_progress", args=[tracked.pk])).content.decode()
    assert "Apple Mail Privacy Protection" in page


@pytest.mark.django_db
def test_the_admin_and_the_api_show_the_same_figures(smtp_server, windows, monkeypatch, eva):
    campaign, (reader, other) = sent_campaign(monkeypatch)
    click(tracked_links(smtp_server, reader)[REPORT])
    click(tracked_links(smtp_server, other)[REPORT], method="head")
    settle_and_flush()

    stats = client_with_token(eva).get(f"/api/v1/campaigns/{campaign.pk}/stats/")
    assert stats.status_code == 200
    data = stats.json()
    assert (data["delivered"], data["human_clicks"], data["scanner_hits"], data["click_rate"]) == (2, 1, 1, 0.5)
    assert data["opens"] is None

    client = Client()
    client.force_login(eva)
    page = client.get(reverse("admin:newsletter_campaign_progress", args=[campaign.pk])).content.decode()
    for figure in ("delivered", "human_clicks", "scanner_hits", "web_visits", "unsubscribes", "bounces", "complaints"):
        assert f'data-figure="{figure}">{data[figure]}<' in page, figure
    assert f'data-figure="clicking_readers">{data["clicking_readers"]} (50.0%)<' in page
    assert "<svg" in page
    assert "style=" not in page.split('class="engagement-figures"')[1].split("</section>")[0]
    figures_page = client.get(reverse("admin:newsletter_campaignfigures_changelist")).content.decode()
    assert "50.0%" in figures_page
    assert "Transport" in figures_page
    article_page = client.get(reverse("admin:articles_article_change", args=[campaign.article_id])).content.decode()
    assert f'data-figure="clicking_readers">{data["clicking_readers"]} (50.0%)<' in article_page
    assert "/api/v1/campaigns/{id}/stats/" in client_with_token(eva).get("/api/schema/").content.decode()


def test_anyone_without_the_campaign_permission_gets_no_figures(client, cora, db):
    campaign = Campaign.objects.create(article=ArticleFactory.create())
    assert client_with_token(cora).get(f"/api/v1/campaigns/{campaign.pk}/stats/").status_code in (403, 404)


@pytest.mark.integration
def test_with_a_real_worker_the_links_of_the_received_email_are_counted(mail_worker, smtp_server, windows):
    article = ArticleFactory.create(body=f'<p>See <a href="{REPORT}">the report</a>.</p>')
    reader = SubscriberFactory.create()
    article_published.send(sender=type(article), article_id=article.pk)
    wait_until(lambda: smtp_server.handler.to(reader.email), timeout=60)
    wait_until(lambda: Delivery.objects.filter(subscriber=reader, status=Delivery.Status.SENT).exists())

    assert click(tracked_links(smtp_server, reader)[REPORT])["Location"] == REPORT
    settle_and_flush()
    campaign = Campaign.objects.get(article=article)
    assert campaign_figures(campaign)["human_clicks"] == 1
    assert campaign_figures(campaign)["delivered"] == 1
