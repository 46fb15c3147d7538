"""Recording each accepted message on PostgreSQL, as production does: outside any
transaction, over libpq, with the statement prepared once per connection, or bound anew
each time when ``DB_PREPARED_STATEMENTS=false`` (a pooler that cannot keep prepared statements)."""

import pytest
from django.db import connection

from newsletter import sending
from newsletter.models import Campaign, Delivery
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, SubscriberFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the libpq path is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),  # each record commits on its own, as in production
]


@pytest.fixture(autouse=True)
def _by_hand(monkeypatch):
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def prepared_ledger_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name = 'newsletter_record_sent'")
        return [name for (name,) in cursor.fetchall()]


def send_campaign_to(readers: int) -> tuple[Campaign, list[str]]:
    addresses = [subscriber.email.lower() for subscriber in SubscriberFactory.create_batch(readers)]
    campaign = sending.start_campaign_for_article(article_id=ArticleFactory.create().pk)
    assert campaign is not None
    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass
    return campaign, addresses


def assert_each_reader_was_sent_once_and_recorded(campaign, addresses, smtp_server):
    assert sorted(smtp_server.handler.recipients()) == sorted(addresses)
    deliveries = Delivery.objects.filter(campaign=campaign)
    assert set(deliveries.values_list("status", "attempts", "claimed_by")) == {(Delivery.Status.SENT, 1, "")}
    assert all(deliveries.values_list("provider_message_id", flat=True))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


@pytest.mark.parametrize("connections", [1, 3])
def test_each_accepted_message_is_recorded_by_a_statement_prepared_once(smtp_server, settings, connections):
    settings.DB_PREPARED_STATEMENTS = True
    settings.NEWSLETTER_CONNECTIONS_PER_BATCH = connections
    connection.close()  # a new database session: nothing is prepared on it yet
    campaign, addresses = send_campaign_to(6)
    assert_each_reader_was_sent_once_and_recorded(campaign, addresses, smtp_server)
    assert prepared_ledger_statements() == ["newsletter_record_sent"]


@pytest.mark.parametrize("connections", [1, 3])
def test_with_prepared_statements_off_each_message_is_recorded_and_nothing_is_prepared(
    smtp_server, settings, connections
):
    settings.DB_PREPARED_STATEMENTS = False
    settings.NEWSLETTER_CONNECTIONS_PER_BATCH = connections
    connection.close()
    campaign, addresses = send_campaign_to(6)
    assert_each_reader_was_sent_once_and_recorded(campaign, addresses, smtp_server)
    assert prepared_ledger_statements() == []
