"""The sending engine in one process: planning, the ledger, the email, failures, recovery."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from articles.models import Article
from euro_prospects.celery import app as celery_app
from newsletter import sending
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, AuthorFactory, SubscriberFactory, TopicFactory

# The engine runs outside transactions, as in production (a batch commits each record).
pytestmark = pytest.mark.django_db(transaction=True)

launch_batches = campaigns.launch_batches  # the real one, before _no_broker replaces it


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Batches are run by hand here; the chain's enqueueing is tested with real workers."""
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def seconds_until(moment):
    assert moment is not None
    return (moment - timezone.now()).total_seconds()


def send_everything(campaign: Campaign) -> None:
    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass


def test_publishing_twice_creates_one_campaign():
    article = ArticleFactory.create()
    SubscriberFactory.create()
    first = sending.start_campaign_for_article(article_id=article.pk)
    second = sending.start_campaign_for_article(article_id=article.pk)
    assert first is not None
    assert second is not None
    assert first.pk == second.pk
    assert Campaign.objects.filter(article=article).count() == 1
    assert Delivery.objects.filter(campaign=first).count() == 1


def test_the_database_refuses_a_second_campaign_for_an_article():
    article = ArticleFactory.create()
    Campaign.objects.create(article=article)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(article=article)


def test_the_database_refuses_a_second_delivery_to_a_reader():
    campaign = Campaign.objects.create(article=ArticleFactory.create())
    reader = SubscriberFactory.create()
    Delivery.objects.create(campaign=campaign, subscriber=reader, email=reader.email)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(campaign=campaign, subscriber=reader, email=reader.email)


def test_an_article_published_without_sending_gets_no_campaign():
    article = ArticleFactory.create(send_to_subscribers=False)
    SubscriberFactory.create()
    assert sending.start_campaign_for_article(article_id=article.pk) is None
    assert not Campaign.objects.exists()


def test_an_unpublished_article_gets_no_campaign():
    article = ArticleFactory.create(status=Article.Status.DRAFT)
    assert sending.start_campaign_for_article(article_id=article.pk) is None


def test_planning_picks_confirmed_readers_who_want_the_articles_topics():
    energy, farming = TopicFactory.create(), TopicFactory.create()
    article = ArticleFactory.create(topics=[energy])
    everything = SubscriberFactory.create(all_topics=True)
    energy_reader = SubscriberFactory.create(all_topics=False)
    energy_reader.topics.set([energy, farming])
    farming_reader = SubscriberFactory.create(all_topics=False)
    farming_reader.topics.set([farming])
    SubscriberFactory.create(status=Subscriber.Status.PENDING)
    SubscriberFactory.create(status=Subscriber.Status.UNSUBSCRIBED)
    SubscriberFactory.create(status=Subscriber.Status.BOUNCED)
    SubscriberFactory.create(cadence=Subscriber.Cadence.WEEKLY)

    campaign = sending.start_campaign_for_article(article_id=article.pk)

    assert campaign is not None
    planned = set(campaign.deliveries.values_list("subscriber_id", flat=True))
    assert planned == {everything.pk, energy_reader.pk}
    assert campaign.recipients == 2
    assert campaign.status == Campaign.Status.SENDING
    assert set(campaign.deliveries.values_list("status", flat=True)) == {Delivery.Status.PENDING}


def test_every_reader_gets_one_email_with_headers_and_their_own_links(smtp_server, settings):
    settings.SITE_URL = "https://news.example"
    settings.NEWSLETTER_BATCH_SIZE = 3
    correspondent = AuthorFactory.create(name="Ilse Marchetti", role="Balkans Correspondent")
    editor = AuthorFactory.create(name="Tomas Verhoef")
    topic = TopicFactory.create(name="Enlargement")
    article = ArticleFactory.create(
        title="The long road to accession",
        standfirst="Candidates wait, reforms stall.",
        body="<h2>Where things stand</h2><p>Negotiating chapters open slowly.</p>",
        authors=[correspondent],
        topics=[topic],
        editor=editor,
    )
    readers = [SubscriberFactory.create() for _ in range(7)]
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    send_everything(campaign)

    assert sorted(smtp_server.handler.recipients()) == sorted(r.email for r in readers)
    message_ids = set()
    for reader in readers:
        [message] = smtp_server.handler.to(reader.email)
        delivery = Delivery.objects.get(campaign=campaign, subscriber=reader)
        assert delivery.status == Delivery.Status.SENT
        assert delivery.attempts == 1
        assert message["Subject"] == "The long road to accession"
        assert message["Message-ID"] == f"<campaign-{campaign.pk}.delivery-{delivery.pk}@localhost>"
        assert delivery.provider_message_id == message["Message-ID"]
        message_ids.add(message["Message-ID"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"].startswith("Euro Prospects <newsletter.")
        unsubscribe, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
        assert unsubscribe.startswith("https://news.example/newsletter/unsubscribe/")
        assert mailto.startswith("mailto:unsubscribe@localhost?subject=")
        from newsletter.tokens import read_token

        assert read_token(unsubscribe.rstrip("/").rsplit("/", 1)[1], "unsubscribe") == reader.pk
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert unsubscribe in text
        assert unsubscribe in html
        assert "/newsletter/preferences/" in html
        for seen in ["Enlargement", "Candidates wait, reforms stall.", "Ilse Marchetti", "Balkans Correspondent",
                     "Edited/Reviewed by: Tomas Verhoef", "Negotiating chapters open slowly."]:  # fmt: skip
            assert seen in html
        assert "style=" in html  # CSS inlined
        assert "<style" not in html
    assert len(message_ids) == len(readers)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_the_email_shows_an_excerpt_with_a_read_on_link_when_set(smtp_server, settings):
    settings.NEWSLETTER_EMAIL_EXCERPT = True
    settings.NEWSLETTER_EMAIL_EXCERPT_WORDS = 3
    article = ArticleFactory.create(body="<p>One two three four five six.</p>")
    reader = SubscriberFactory.create()
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    send_everything(campaign)
    [message] = smtp_server.handler.to(reader.email)
    html = message.get_body(("html",)).get_content()
    assert "One two three" in html
    assert "four five" not in html
    assert "Read on" in html


def test_the_subject_override_is_used(smtp_server):
    article = ArticleFactory.create(title="Original title")
    reader = SubscriberFactory.create()
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    campaign.subject = "Überarbeiteter Betreff"
    campaign.save()
    send_everything(campaign)
    [message] = smtp_server.handler.to(reader.email)
    assert message["Subject"] == "Überarbeiteter Betreff"


def test_a_reader_who_unsubscribes_during_the_send_is_skipped(smtp_server):
    article = ArticleFactory.create()
    staying, leaving = SubscriberFactory.create(), SubscriberFactory.create()
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    leaving.status = Subscriber.Status.UNSUBSCRIBED
    leaving.save()

    send_everything(campaign)

    assert smtp_server.handler.recipients() == [staying.email]
    assert Delivery.objects.get(subscriber=leaving).status == Delivery.Status.SKIPPED


def test_a_permanent_refusal_fails_the_delivery_and_suppresses_the_address(smtp_server):
    article = ArticleFactory.create()
    good, gone = SubscriberFactory.create(), SubscriberFactory.create()
    smtp_server.handler.rcpt_faults[gone.email] = "550 5.1.1 No such user"
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    send_everything(campaign)

    delivery = Delivery.objects.get(subscriber=gone)
    assert delivery.status == Delivery.Status.FAILED
    assert "550 5.1.1 No such user" in delivery.last_error
    gone.refresh_from_db()
    assert gone.status == Subscriber.Status.BOUNCED
    assert smtp_server.handler.recipients() == [good.email]
    assert Delivery.objects.get(subscriber=good).status == Delivery.Status.SENT


def test_a_temporary_refusal_retries_with_backoff_then_gives_up(smtp_server, settings):
    settings.NEWSLETTER_MAX_ATTEMPTS = 3
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    article = ArticleFactory.create()
    busy = SubscriberFactory.create()
    smtp_server.handler.rcpt_faults[busy.email] = "450 4.2.1 Mailbox busy"
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    send_everything(campaign)
    delivery = Delivery.objects.get(subscriber=busy)
    assert delivery.status == Delivery.Status.RETRYING
    assert delivery.attempts == 1
    assert "450 4.2.1" in delivery.last_error
    first_wait = seconds_until(delivery.next_attempt_at)
    assert 40 < first_wait < 80
    # Not due yet: nothing is sent.
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    send_everything(campaign)
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    second_wait = seconds_until(delivery.next_attempt_at)
    assert second_wait > first_wait  # backoff grows

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    send_everything(campaign)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts == 3
    busy.refresh_from_db()
    assert busy.status == Subscriber.Status.CONFIRMED  # a busy mailbox is not a bad address
    campaign.refresh_from_db()
    campaigns.finish_if_done(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_a_dropped_connection_leaves_nobody_behind(smtp_server, settings):
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    article = ArticleFactory.create()
    readers = [SubscriberFactory.create() for _ in range(6)]
    smtp_server.handler.drop_after = 2
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    send_everything(campaign)
    statuses = list(campaign.deliveries.order_by("id").values_list("status", flat=True))
    assert statuses.count(Delivery.Status.RETRYING) == 1
    assert statuses.count(Delivery.Status.SENT) == 5

    campaign.deliveries.filter(status=Delivery.Status.RETRYING).update(next_attempt_at=timezone.now())
    send_everything(campaign)
    assert sorted(smtp_server.handler.recipients()) == sorted(r.email for r in readers)


def test_recovery_returns_expired_leases_and_leaves_live_ones(settings):
    settings.NEWSLETTER_LEASE_SECONDS = 60
    article = ArticleFactory.create()
    SubscriberFactory.create(), SubscriberFactory.create()
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    stale, live = campaign.deliveries.order_by("id")
    Delivery.objects.filter(pk=stale.pk).update(
        status=Delivery.Status.SENDING, claimed_by="dead", claimed_at=timezone.now() - timedelta(seconds=61)
    )
    Delivery.objects.filter(pk=live.pk).update(
        status=Delivery.Status.SENDING, claimed_by="alive", claimed_at=timezone.now() - timedelta(seconds=5)
    )
    sending.recover_stalled_campaigns()
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.status == Delivery.Status.PENDING
    assert live.status == Delivery.Status.SENDING


def test_recovery_restarts_a_campaign_nobody_works_on(settings, monkeypatch, smtp_server):
    settings.NEWSLETTER_LEASE_SECONDS = 60
    article = ArticleFactory.create()
    readers = SubscriberFactory.create_batch(3)
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)  # a broker that lost them
    campaign = sending.start_campaign_for_article(article_id=article.pk)  # its batches never ran
    assert campaign is not None
    assert sending.recover_stalled_campaigns() == []  # it was just planned: someone is on it
    assert smtp_server.handler.recipients() == []

    # Recovery enqueues the real batch tasks; they run here, as a worker would run them.
    monkeypatch.setattr(campaigns, "launch_batches", launch_batches)
    Campaign.objects.filter(pk=campaign.pk).update(last_activity_at=timezone.now() - timedelta(seconds=61))
    celery_app.conf.task_always_eager = True
    try:
        assert sending.recover_stalled_campaigns() == [campaign.pk]
    finally:
        celery_app.conf.task_always_eager = False

    assert sorted(smtp_server.handler.recipients()) == sorted(reader.email for reader in readers)
    assert set(campaign.deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_cancelling_skips_what_is_not_yet_sent(smtp_server):
    article = ArticleFactory.create()
    [SubscriberFactory.create() for _ in range(3)]
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    sending.cancel_campaign(campaign=campaign)
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0
    assert smtp_server.handler.recipients() == []
    assert set(campaign.deliveries.values_list("status", flat=True)) == {Delivery.Status.SKIPPED}


def test_retrying_failed_deliveries_sends_them_again(smtp_server, settings):
    settings.NEWSLETTER_MAX_ATTEMPTS = 1
    article = ArticleFactory.create()
    reader = SubscriberFactory.create()
    smtp_server.handler.rcpt_faults[reader.email] = "451 4.3.0 Try later"
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    send_everything(campaign)
    campaigns.finish_if_done(campaign_id=campaign.pk)
    assert Delivery.objects.get(subscriber=reader).status == Delivery.Status.FAILED

    del smtp_server.handler.rcpt_faults[reader.email]
    assert sending.retry_failed_deliveries(campaign=campaign) == 1
    send_everything(campaign)
    assert smtp_server.handler.recipients() == [reader.email]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_any_django_backend_works_by_configuration(settings):
    """Providers behind django-anymail go through the same path as this in-memory backend."""
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    article = ArticleFactory.create(title="Ports and tariffs")
    readers = [SubscriberFactory.create() for _ in range(3)]
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    send_everything(campaign)

    assert sorted(address for message in mail.outbox for address in message.to) == sorted(r.email for r in readers)
    for message in mail.outbox:
        assert message.subject == "Ports and tariffs"
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.extra_headers["Message-ID"].startswith(f"<campaign-{campaign.pk}.delivery-")
    assert set(campaign.deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}


def sample(metric, **labels) -> float:
    return next(
        (s.value for m in metric.collect() for s in m.samples if s.name.endswith("_total") and s.labels == labels),
        0.0,
    )


def finished_campaigns(metrics) -> float:
    return next(s.value for m in metrics.CAMPAIGN_DURATION.collect() for s in m.samples if s.name.endswith("_count"))


def test_sent_and_failed_emails_and_the_campaign_duration_reach_the_metrics(smtp_server):
    from euro_prospects import metrics

    article = ArticleFactory.create()
    SubscriberFactory.create()
    gone = SubscriberFactory.create()
    smtp_server.handler.rcpt_faults[gone.email] = "550 5.1.1 No such user"
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    durations = next(
        s.value for m in metrics.CAMPAIGN_DURATION.collect() for s in m.samples if s.name.endswith("_count")
    )

    # Counters live for the whole test process, and SQLite reuses a rolled-back campaign's id.
    sent_before = sample(metrics.EMAILS_SENT, campaign=str(campaign.pk))
    failed_before = sample(metrics.EMAILS_FAILED, campaign=str(campaign.pk))

    send_everything(campaign)

    assert sample(metrics.EMAILS_SENT, campaign=str(campaign.pk)) == sent_before + 1
    assert sample(metrics.EMAILS_FAILED, campaign=str(campaign.pk)) == failed_before + 1
    assert campaigns.finish_if_done(campaign_id=campaign.pk)
    assert finished_campaigns(metrics) == durations + 1


@pytest.mark.django_db  # renders only; one frozen second, so both renderings sign the same tokens
@time_machine.travel("2026-03-02 09:00:00+00:00", tick=False)
def test_each_readers_bytes_decode_to_exactly_their_own_email():
    from email import message_from_bytes, policy

    from newsletter.sending.message import Recipient, render_campaign_email

    body = (
        "<p>Prices rose 3% = a record; the commissioner said “no comment”.</p>\n"
        ".A line that starts with a dot\n" + "<p>" + "Zürich-Łódź " * 40 + "</p>"
    )
    article = ArticleFactory.create(title="Grids, gas & “prices”", body=body)
    campaign = Campaign.objects.create(article=article)
    rendered = render_campaign_email(campaign)
    reader = Recipient(delivery_id=7, subscriber_id=42, email="ana@example.org", name="Ana Ö", campaign_id=campaign.pk)

    data = rendered.as_bytes(reader)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b"..") else line for line in data.split(b"\r\n"))
    message = message_from_bytes(unstuffed, policy=policy.default)
    # Text travels in its canonical form, CRLF line ends.
    text_part, html_part = (part.get_content().replace("\r\n", "\n") for part in message.iter_parts())
    expected_text, expected_html = rendered.bodies(reader)
    assert text_part.rstrip("\n") == expected_text.rstrip("\n")
    assert html_part.rstrip("\n") == expected_html.rstrip("\n")
    assert "/newsletter/unsubscribe/" in html_part
    assert message["Message-ID"] == f"<campaign-{campaign.pk}.delivery-7@localhost>"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_one_connection_records_each_result_once_whatever_the_server_answers(smtp_server, settings, pipelining):
    settings.NEWSLETTER_CONNECTIONS_PER_BATCH = 1
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    smtp_server.handler.pipelining = pipelining
    article = ArticleFactory.create()
    readers = [SubscriberFactory.create() for _ in range(12)]
    gone, busy = readers[3], readers[7]
    smtp_server.handler.rcpt_faults[gone.email] = "550 5.1.1 No such user"
    smtp_server.handler.rcpt_faults[busy.email] = "450 4.2.1 Mailbox busy"
    smtp_server.handler.drop_after = 6
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    first = sending.send_batch(campaign_id=campaign.pk)
    # Readers 0-2 and 4-6 accepted, 3 refused, 7 deferred, the connection dropped at 8.
    assert (first.sent, first.failed, first.retrying, first.released) == (6, 1, 2, 3)
    send_everything(campaign)
    statuses = dict(campaign.deliveries.values_list("email", "status"))
    assert statuses[gone.email] == Delivery.Status.FAILED
    assert list(statuses.values()).count(Delivery.Status.RETRYING) == 2  # the busy one and the dropped one

    del smtp_server.handler.rcpt_faults[busy.email]
    campaign.deliveries.filter(status=Delivery.Status.RETRYING).update(next_attempt_at=timezone.now())
    send_everything(campaign)
    others = sorted(r.email for r in readers if r != gone)
    assert sorted(smtp_server.handler.recipients()) == others  # each exactly once
    assert sorted(campaign.deliveries.filter(status=Delivery.Status.SENT).values_list("email", flat=True)) == others


@pytest.mark.django_db(transaction=True)
def test_several_connections_never_let_two_accepted_messages_go_unrecorded(smtp_server, settings):
    """The server looks at the ledger just before accepting each message: every message it
    accepted before must already be recorded as sent, however many connections send."""
    settings.NEWSLETTER_CONNECTIONS_PER_BATCH = 3
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    article = ArticleFactory.create()
    readers = [SubscriberFactory.create() for _ in range(40)]
    gone, busy = readers[5], readers[17]
    smtp_server.handler.rcpt_faults[gone.email] = "550 5.1.1 No such user"
    smtp_server.handler.rcpt_faults[busy.email] = "450 4.2.1 Mailbox busy"
    smtp_server.handler.drop_after = 20
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    unrecorded_at_acceptance = []

    def count_recorded():
        from django.db import connection

        try:
            return Delivery.objects.filter(status=Delivery.Status.SENT).count()
        finally:
            connection.close()

    def count_unrecorded(message):
        # The server runs an event loop, where Django refuses database calls: ask from a thread.
        with ThreadPoolExecutor(1) as pool:
            recorded = pool.submit(count_recorded).result()
        unrecorded_at_acceptance.append(len(smtp_server.handler.messages) - recorded)

    smtp_server.handler.before_accept = count_unrecorded

    first = sending.send_batch(campaign_id=campaign.pk)
    assert first.sent >= 20
    assert first.sent + first.failed + first.retrying + first.released == first.claimed == 40
    del smtp_server.handler.rcpt_faults[busy.email]
    send_everything(campaign)
    campaign.deliveries.filter(status=Delivery.Status.RETRYING).update(next_attempt_at=timezone.now())
    send_everything(campaign)

    others = sorted(r.email for r in readers if r != gone)
    assert sorted(smtp_server.handler.recipients()) == others  # each exactly once
    sent = campaign.deliveries.filter(status=Delivery.Status.SENT)
    assert sorted(sent.values_list("email", flat=True)) == others
    assert not sent.filter(sent_at=None).exists()
    assert not sent.exclude(claimed_by="").exists()
    assert campaign.deliveries.get(subscriber=gone).status == Delivery.Status.FAILED
    assert len(unrecorded_at_acceptance) == len(others)
    assert set(unrecorded_at_acceptance) == {0}


@pytest.mark.django_db(transaction=True)
def test_a_message_refused_at_its_end_does_not_disturb_the_next_readers_envelope(smtp_server, settings):
    """With PIPELINING the next reader's envelope travels with the final "." of a message the
    server then refuses; the next reader must still get exactly one email."""
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    article = ArticleFactory.create()
    readers = [SubscriberFactory.create() for _ in range(6)]
    full, later = readers[1], readers[3]
    smtp_server.handler.data_faults[full.email] = "552 5.2.2 Mailbox full"
    smtp_server.handler.data_faults[later.email] = "451 4.7.1 Try again later"
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None

    result = sending.send_batch(campaign_id=campaign.pk)

    assert (result.sent, result.failed, result.retrying, result.released) == (4, 1, 1, 0)
    statuses = dict(campaign.deliveries.values_list("email", "status"))
    assert statuses[full.email] == Delivery.Status.FAILED
    assert statuses[later.email] == Delivery.Status.RETRYING
    assert sorted(smtp_server.handler.recipients()) == sorted(r.email for r in readers if r not in (full, later))
    full.refresh_from_db()
    assert full.status == Subscriber.Status.CONFIRMED  # a full mailbox is not a bad address
