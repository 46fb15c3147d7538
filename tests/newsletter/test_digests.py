"""Daily and weekly digests in one process: who gets which pieces, exactly once across
cadence changes, the email, the command, the preview. Mail goes to a real SMTP server."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from articles.models import SiteSettings
from newsletter import digests, sending, services
from newsletter.models import Campaign, CampaignLink, Delivery, DigestContent, Subscriber
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, AuthorFactory, SubscriberFactory, TopicFactory
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db

WEEKLY = Subscriber.Cadence.WEEKLY
IMMEDIATE = Subscriber.Cadence.IMMEDIATE


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Batches are run by hand here; real workers send digests in test_digest_guarantees.py."""
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)
    digests._rendered.clear()


def send_all() -> None:
    for campaign in Campaign.objects.filter(status=Campaign.Status.SENDING):
        while sending.send_batch(campaign_id=campaign.pk).claimed:
            pass


def weekly_digest_now() -> Campaign | None:
    started = digests.start_due_digests(digest=Campaign.Digest.WEEKLY, at_once=True)
    send_all()
    return started[0] if started else None


def publish(title: str, *, topics=(), when: datetime | None = None, campaign: bool = True):
    """A published piece; with ``campaign`` its article email goes out as publishing does."""
    article = ArticleFactory.create(title=title, topics=list(topics), published_at=when or timezone.now())
    if campaign:
        sending.start_campaign_for_article(article_id=article.pk)
        send_all()
    return article


def pieces_received(smtp: SMTPServer, reader: Subscriber, titles: list[str]) -> Counter[str]:
    """How often each title reached the reader, in article emails and digests together."""
    seen: Counter[str] = Counter()
    for message in smtp.handler.to(reader.email):
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        for title in titles:
            seen[title] += text.count(f"\n{title}\n")
    return seen


def a_week_passes() -> None:
    """The digests sent so far move a week back: the next ``weekly_digest_now`` is the next week's."""
    for campaign in Campaign.objects.filter(digest="weekly").order_by("period_key"):
        assert campaign.period_key is not None
        campaign.period_key = campaign.period_key - timedelta(days=7)
        campaign.save(update_fields=["period_key"])


def weekly_reader(*topics, **fields) -> Subscriber:
    reader = SubscriberFactory.create(
        cadence=WEEKLY, all_topics=not topics, confirmed_at=timezone.now() - timedelta(days=30), **fields
    )
    reader.topics.set(topics)
    return reader


def test_a_weekly_reader_gets_one_digest_with_the_weeks_two_pieces_on_their_topics(smtp_server, settings):
    settings.SITE_URL = "https://news.example"
    energy, farming = TopicFactory.create(name="Energy"), TopicFactory.create(name="Farming")
    reader = weekly_reader(energy)
    unmatched = weekly_reader(TopicFactory.create(name="Fisheries"))
    immediate = SubscriberFactory.create(confirmed_at=timezone.now() - timedelta(days=30))
    last, _ = digests.period_bounds(digest="weekly", now=timezone.now(), site=SiteSettings.load())
    publish("Grids before winter, an old piece", topics=[energy], when=last - timedelta(hours=2), campaign=False)
    author = AuthorFactory.create(name="Ilse Marchetti", role="Baltic Correspondent")
    first = publish("Interconnectors in the north", topics=[energy], when=timezone.now() - timedelta(minutes=20))
    first.article_authors.create(author=author, position=0)
    publish("Subsidies for small farms", topics=[farming], when=timezone.now() - timedelta(minutes=10))
    publish("Storage and the spring peak", topics=[energy, farming], when=timezone.now() - timedelta(minutes=5))

    campaign = weekly_digest_now()

    assert campaign is not None
    assert campaign.recipients == 1
    [digest] = smtp_server.handler.to(reader.email)
    text = digest.get_body(("plain",)).get_content()
    html = digest.get_body(("html",)).get_content()
    assert digest["Subject"] == "Your weekly digest: Storage and the spring peak and 1 more"
    assert text.index("Storage and the spring peak") < text.index("Interconnectors in the north")  # newest first
    assert "Subsidies for small farms" not in text
    assert "an old piece" not in text
    assert "Energy | Farming" in text
    assert "By Ilse Marchetti, Baltic Correspondent" in text
    assert "min read" in text
    # The pieces' links are tracked links (newsletter/engagement) that lead to the articles.
    assert "https://news.example/r/" in text
    assert {link.url for link in CampaignLink.objects.filter(campaign=campaign, kind="link")} >= {
        f"https://news.example{first.get_absolute_url()}"
    }
    assert "A short summary of the piece." in html
    assert smtp_server.handler.to(unmatched.email) == []
    # The immediate reader got the three article emails, and no digest.
    assert [m["Subject"] for m in smtp_server.handler.to(immediate.email)] == [
        "Interconnectors in the north",
        "Subsidies for small farms",
        "Storage and the spring peak",
    ]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_the_digest_follows_the_article_emails_conventions(smtp_server, settings):
    settings.SITE_URL = "https://news.example"
    topic = TopicFactory.create()
    reader = weekly_reader(topic, name="Ana Novak")
    publish("Ports and the new corridor", topics=[topic])

    campaign = weekly_digest_now()

    assert campaign is not None
    [message] = smtp_server.handler.to(reader.email)
    delivery = Delivery.objects.get(campaign=campaign, subscriber=reader)
    assert message["Message-ID"] == f"<campaign-{campaign.pk}.delivery-{delivery.pk}@localhost>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
    assert unsubscribe.startswith("https://news.example/newsletter/unsubscribe/")
    assert mailto.startswith("mailto:")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert unsubscribe in text
    assert unsubscribe in html
    assert "https://news.example/newsletter/preferences/" in text
    assert "style=" in html
    assert "<style" not in html
    assert "<" not in text.replace("<https", "")  # no markup in the plain text


def test_readers_with_the_same_pieces_share_one_content(smtp_server):
    energy, farming = TopicFactory.create(), TopicFactory.create()
    energy_readers = [weekly_reader(energy) for _ in range(3)]
    both = [weekly_reader(energy, farming) for _ in range(2)]
    publish("Wind in the Baltic", topics=[energy])
    publish("Grain corridors", topics=[farming])

    campaign = weekly_digest_now()

    assert campaign is not None
    assert DigestContent.objects.filter(campaign=campaign).count() == 2
    assert len({d.content_id for d in Delivery.objects.filter(subscriber__in=energy_readers)}) == 1
    assert len({d.content_id for d in Delivery.objects.filter(subscriber__in=both)}) == 1
    assert len(smtp_server.handler.recipients()) == 5


def test_an_empty_digest_is_not_sent(smtp_server):
    weekly_reader()
    campaign = weekly_digest_now()
    assert campaign is not None
    assert campaign.status == Campaign.Status.FINISHED
    assert campaign.recipients == 0
    assert smtp_server.handler.messages == []


def test_unsubscribed_bounced_and_complained_readers_get_no_digest(smtp_server):
    reader = weekly_reader()
    for status in [Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED]:
        weekly_reader(status=status)
    publish("Fishing quotas agreed")
    weekly_digest_now()
    assert smtp_server.handler.recipients() == [reader.email]


def test_a_reader_who_unsubscribes_while_the_digest_is_sent_gets_nothing_more(smtp_server):
    staying, leaving = weekly_reader(), weekly_reader()
    publish("Rail freight across the Alps")
    [campaign] = digests.start_due_digests(digest="weekly", at_once=True)
    services.unsubscribe(subscriber=leaving, reason="test")

    send_all()

    assert smtp_server.handler.recipients() == [staying.email]
    assert Delivery.objects.get(campaign=campaign, subscriber=leaving).status == Delivery.Status.SKIPPED


def test_switching_from_immediate_to_weekly_mid_week_brings_only_what_was_not_sent(smtp_server):
    reader = SubscriberFactory.create(confirmed_at=timezone.now() - timedelta(days=30))
    titles = ["Monday: budget talks", "Tuesday: late campaign", "Thursday: farm vote", "Friday: ports"]
    publish(titles[0], when=timezone.now() - timedelta(hours=5))
    # Published before the switch, but its campaign starts after it (a slow broker).
    late = publish(titles[1], when=timezone.now() - timedelta(hours=4), campaign=False)
    services.update_preferences(subscriber=reader, all_topics=True, cadence=WEEKLY)
    sending.start_campaign_for_article(article_id=late.pk)
    send_all()
    publish(titles[2], when=timezone.now() - timedelta(hours=2))
    publish(titles[3], when=timezone.now() - timedelta(hours=1))

    weekly_digest_now()

    assert pieces_received(smtp_server, reader, titles) == Counter(dict.fromkeys(titles, 1))
    assert len(smtp_server.handler.to(reader.email)) == 2  # Monday's email, then one digest


def test_switching_from_weekly_to_immediate_mid_week_repeats_nothing_and_loses_nothing(smtp_server):
    reader = weekly_reader()
    titles = ["Early: water rights", "Before the switch: rail", "After the switch: ports", "Next week: grids"]
    early = publish(titles[0])
    weekly_digest_now()  # sent early, with the first piece
    publish(titles[1])
    services.update_preferences(subscriber=reader, all_topics=True, cadence=IMMEDIATE)
    # The first piece's campaign starting again (recovery, a second publish signal) brings nothing.
    Campaign.objects.filter(article=early).delete()
    sending.start_campaign_for_article(article_id=early.pk)
    publish(titles[2])
    publish(titles[3])

    # The next weekly digest brings what the reader was owed before switching, once.
    a_week_passes()
    weekly_digest_now()

    assert pieces_received(smtp_server, reader, titles) == Counter(dict.fromkeys(titles, 1))


def test_switching_back_and_forth_within_a_week_sends_each_piece_once(smtp_server):
    reader = weekly_reader()
    titles = [f"Piece {n} of a busy week" for n in range(6)]
    for index, title in enumerate(titles):
        publish(title)
        cadence = IMMEDIATE if reader.cadence == WEEKLY else WEEKLY
        reader = services.update_preferences(subscriber=reader, all_topics=True, cadence=cadence)
        if index == 2:
            weekly_digest_now()
            a_week_passes()
    weekly_digest_now()
    a_week_passes()
    weekly_digest_now()

    assert pieces_received(smtp_server, reader, titles) == Counter(dict.fromkeys(titles, 1))


@pytest.mark.parametrize("last", [IMMEDIATE, WEEKLY])
def test_going_through_two_digests_in_one_week_loses_and_repeats_nothing(smtp_server, last):
    """Weekly, then daily, then (immediate or weekly again) within the week: the piece published
    early in the week, while the reader was weekly, is older than the daily digest's day, so only
    the weekly digest can bring it, though the reader's last cadence before now was daily."""
    site = SiteSettings.load()
    site.digest_weekday = (timezone.localtime().weekday() + 1) % 7  # the last weekly digest was 6 days ago
    site.save()
    reader = weekly_reader()
    titles = ["Early in the week: fisheries quotas", "While daily: rail freight", "At the end: port fees"]
    publish(titles[0], when=timezone.now() - timedelta(days=3))
    reader = services.update_preferences(subscriber=reader, all_topics=True, cadence=Subscriber.Cadence.DAILY)
    publish(titles[1])
    digests.start_due_digests(digest=Campaign.Digest.DAILY, at_once=True)
    send_all()
    reader = services.update_preferences(subscriber=reader, all_topics=True, cadence=last)
    publish(titles[2])

    weekly_digest_now()

    assert pieces_received(smtp_server, reader, titles) == Counter(dict.fromkeys(titles, 1))
    reader.refresh_from_db()
    assert reader.left_weekly_at is not None
    assert reader.left_daily_at is not None


def test_a_daily_reader_gets_the_daily_digest_and_not_the_weekly(smtp_server):
    reader = weekly_reader()
    reader = services.update_preferences(subscriber=reader, all_topics=True, cadence=Subscriber.Cadence.DAILY)
    publish("Daily: the council meets")

    started = digests.start_due_digests(at_once=True)
    send_all()

    assert {c.digest: c.recipients for c in started} == {"daily": 1, "weekly": 0}
    [message] = smtp_server.handler.to(reader.email)
    assert message["Subject"] == "Your daily digest: Daily: the council meets"


def test_send_digests_twice_starts_one_campaign_per_cadence(smtp_server):
    weekly_reader()
    publish("Energy prices fall")

    call_command("send_digests", "--now")
    call_command("send_digests", "--now")
    call_command("send_digests", "--now", "--cadence", "weekly")

    assert Campaign.objects.filter(digest="weekly").count() == 1
    assert Campaign.objects.filter(digest="daily").count() == 1
    send_all()
    assert len(smtp_server.handler.messages) == 1


def test_beat_firing_twice_starts_one_digest_for_the_period(smtp_server):
    last, _ = digests.period_bounds(digest="weekly", now=timezone.now(), site=SiteSettings.load())
    reader = weekly_reader()
    publish("Before the send time", when=last - timedelta(hours=1), campaign=False)
    publish("After the send time", when=last + timedelta(minutes=1), campaign=False)

    first = digests.start_due_digests()
    second = digests.start_due_digests()
    send_all()

    assert [c.digest for c in first] == ["daily", "weekly"]
    assert second == []
    assert Campaign.objects.filter(digest="weekly").count() == 1
    [message] = smtp_server.handler.to(reader.email)
    assert "Before the send time" in message.get_body(("plain",)).get_content()
    assert "After the send time" not in message.get_body(("plain",)).get_content()


def test_the_database_refuses_a_second_digest_for_a_period():
    key = timezone.now()
    Campaign.objects.create(digest="weekly", period_key=key, period_start=key, period_end=key)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(digest="weekly", period_key=key, period_start=key, period_end=key)


def test_send_times_follow_the_site_settings_in_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Brussels"
    site = SiteSettings.load()
    site.digest_hour, site.digest_weekday = 18, 4  # Friday, 18:00
    brussels = ZoneInfo("Europe/Brussels")
    wednesday = datetime(2026, 3, 25, 12, 0, tzinfo=brussels)
    last, following = digests.period_bounds(digest="weekly", now=wednesday, site=site)
    assert (last, following) == (datetime(2026, 3, 20, 18, tzinfo=brussels), datetime(2026, 3, 27, 18, tzinfo=brussels))
    last, following = digests.period_bounds(digest="daily", now=wednesday, site=site)
    assert (last, following) == (datetime(2026, 3, 24, 18, tzinfo=brussels), datetime(2026, 3, 25, 18, tzinfo=brussels))
    # Across the change to summer time (29 March) the digest still goes at 18:00 local time.
    sunday = datetime(2026, 3, 29, 20, 0, tzinfo=brussels)
    last, _ = digests.period_bounds(digest="daily", now=sunday, site=site)
    assert last.astimezone(brussels).hour == 18


def test_the_intro_goes_into_the_next_digest_only(smtp_server):
    site = SiteSettings.load()
    site.weekly_digest_intro = "A quiet week in Brussels, a loud one in the capitals."
    site.save()
    reader = weekly_reader()
    publish("Summit preparations")

    weekly_digest_now()

    [message] = smtp_server.handler.to(reader.email)
    assert "A quiet week in Brussels" in message.get_body(("plain",)).get_content()
    assert SiteSettings.load().weekly_digest_intro == ""


def test_an_editor_previews_the_digest_as_a_reader_would_get_it(client, eva):
    topic = TopicFactory.create()
    reader = weekly_reader(topic, email="mira@example.org")
    publish("Harbour dues rise", topics=[topic], campaign=False)
    publish("Elsewhere entirely", topics=[TopicFactory.create()], campaign=False)
    client.force_login(eva)
    url = "/admin/newsletter/campaign/digest-preview/"

    response = client.get(url, {"digest": "weekly", "reader": reader.email})

    assert response.status_code == 200
    assert b"Harbour dues rise" in response.content
    assert b"Elsewhere entirely" not in response.content
    assert client.get(url, {"digest": "monthly", "reader": reader.email}).status_code == 400
    assert client.get(url, {"digest": "weekly", "reader": "nobody@example.org"}).status_code == 404
    assert b"would get no daily digest" in client.get(url, {"digest": "daily", "reader": reader.email}).content
    assert not Campaign.objects.exists()  # a preview sends and records nothing


def test_a_reader_picks_a_cadence_at_sign_up_and_through_the_api(client):
    client.post("/newsletter/subscribe/", {"email": "daily@example.org", "cadence": "daily"})
    assert Subscriber.objects.get(email="daily@example.org").cadence == Subscriber.Cadence.DAILY
    client.post("/newsletter/subscribe/", {"email": "plain@example.org"})
    assert Subscriber.objects.get(email="plain@example.org").cadence == IMMEDIATE
    response = client.post(
        "/api/v1/subscribers/", {"email": "weekly@example.org", "cadence": "weekly"}, content_type="application/json"
    )
    assert response.status_code == 202
    assert Subscriber.objects.get(email="weekly@example.org").cadence == WEEKLY
    response = client.post(
        "/api/v1/subscribers/", {"email": "odd@example.org", "cadence": "hourly"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "cadence" in response.json()["errors"]
    assert client.post("/newsletter/subscribe/", {"email": "odd@example.org", "cadence": "x"}).status_code == 400


def test_the_preferences_page_offers_every_cadence_and_saves_a_daily_digest(client):
    from newsletter.tokens import make_token

    reader = SubscriberFactory.create()
    url = f"/newsletter/preferences/{make_token(reader.pk, 'preferences')}/"
    page = client.get(url).content.decode()
    for label in ["Every article as it is published", "A daily digest", "A weekly digest"]:
        assert label in page
    client.post(url, {"all_topics": "1", "cadence": "daily"})
    reader.refresh_from_db()
    assert reader.cadence == Subscriber.Cadence.DAILY
    assert reader.previous_cadence == IMMEDIATE
    assert reader.cadence_since is not None
    exported = services.export_subscriber_data(subscriber=reader)  # what we hold is in the reader's export
    assert (exported["cadence"], exported["previous_cadence"]) == ("daily", "immediate")
    assert exported["cadence_since"] == reader.cadence_since.isoformat()


def test_a_piece_unpublished_after_planning_is_left_out_of_the_digest(smtp_server, eva):
    from articles.services import unpublish_article

    reader = weekly_reader()
    publish("Kept: the fisheries deal")
    withdrawn = publish("Withdrawn: a hasty report")
    digests.start_due_digests(digest="weekly", at_once=True)
    unpublish_article(article=withdrawn, by=eva)

    send_all()

    [message] = smtp_server.handler.to(reader.email)
    text = message.get_body(("plain",)).get_content()
    assert "Kept: the fisheries deal" in text
    assert "Withdrawn" not in text


def test_a_digest_campaign_can_be_deleted_with_its_ledger(smtp_server):
    weekly_reader()
    publish("Shipping lanes in the north")
    campaign = weekly_digest_now()
    assert campaign is not None
    campaign.delete()
    assert not Delivery.objects.filter(content__isnull=False).exists()
    assert not DigestContent.objects.exists()


def test_a_cancelled_digest_sends_nothing_more(smtp_server, settings):
    settings.NEWSLETTER_BATCH_SIZE = 2
    readers = [weekly_reader() for _ in range(5)]
    publish("Water rights in the south")
    [campaign] = digests.start_due_digests(digest="weekly", at_once=True)
    sending.send_batch(campaign_id=campaign.pk)

    sending.cancel_campaign(campaign=campaign)
    send_all()

    assert len(smtp_server.handler.recipients()) == 2
    assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SKIPPED).count() == len(readers) - 2
    assert campaign.title.startswith("Weekly digest of ")


def test_the_campaign_list_shows_digests_with_their_progress(client, eva):
    weekly_reader()
    publish("Alpine rail tunnels")
    digests.start_due_digests(digest="weekly", at_once=True)
    client.force_login(eva)
    page = client.get("/admin/newsletter/campaign/").content.decode()
    assert "Weekly digest of " in page
    assert "Live progress" in page
    campaign = Campaign.objects.get(digest="weekly")
    progress = client.get(f"/admin/newsletter/campaign/{campaign.pk}/progress/")
    assert progress.status_code == 200
    assert b"Preview the next weekly digest" in progress.content
