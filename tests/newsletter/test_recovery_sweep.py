"""Recovery starts the campaign of a piece published without one, and cancels the
campaign of a piece that was unpublished while no batch was running."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from articles.models import Article
from articles.services import publish_article
from newsletter import sending
from newsletter.models import Campaign, Delivery
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def test_recovery_starts_the_campaign_of_a_piece_whose_publisher_died_before_recording_it(settings):
    """Publishing commits inside this test's transaction, so the newsletter never hears of it:
    as if the process died between the commit and recording the campaign."""
    wanted = ArticleFactory.create(status=Article.Status.APPROVED, published_at=None)
    not_to_send = ArticleFactory.create(status=Article.Status.APPROVED, published_at=None, send_to_subscribers=False)
    publish_article(article=wanted, by=None)
    publish_article(article=not_to_send, by=None)
    ArticleFactory.create()  # published long ago without the workflow (e.g. imported): never swept
    assert not Campaign.objects.exists()

    sending.recover_stalled_campaigns()
    assert not Campaign.objects.exists()  # the publisher gets a lease to record it itself

    with time_machine.travel(timezone.now() + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS + 1)):
        sending.recover_stalled_campaigns()

    assert list(Campaign.objects.values_list("article_id", flat=True)) == [wanted.pk]


def test_recovery_leaves_alone_a_piece_published_long_ago_without_a_campaign():
    article = ArticleFactory.create(status=Article.Status.APPROVED, published_at=None)
    publish_article(article=article, by=None)

    with time_machine.travel(timezone.now() + campaigns.UNANNOUNCED_WITHIN + timedelta(minutes=1)):
        sending.recover_stalled_campaigns()

    assert not Campaign.objects.exists()


def an_article_campaign_being_sent():
    article = ArticleFactory.create()
    [SubscriberFactory.create() for _ in range(3)]
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    return article, campaign


def a_correction_being_sent():
    from articles.models import Correction
    from newsletter import corrections
    from tests.support.factories import CampaignFactory, DeliveryFactory

    article = ArticleFactory.create()
    campaign = CampaignFactory.create(article=article, status=Campaign.Status.FINISHED)
    for _ in range(3):
        DeliveryFactory.create(campaign=campaign, subscriber=SubscriberFactory.create(), status=Delivery.Status.SENT)
    note = Correction.objects.create(article=article, text="The vote is on Tuesday, not Thursday.")
    correction = corrections.send_correction(correction=note, by=None)
    assert correction.status == Campaign.Status.SENDING
    assert correction.recipients == 3
    return article, correction


@pytest.mark.parametrize("being_sent", [an_article_campaign_being_sent, a_correction_being_sent])
def test_recovery_cancels_the_campaign_of_an_unpublished_piece(being_sent):
    article, campaign = being_sent()
    Article.objects.filter(pk=article.pk).update(status=Article.Status.UNPUBLISHED)

    sending.recover_stalled_campaigns()

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert set(campaign.deliveries.values_list("status", "last_error")) == {
        (Delivery.Status.SKIPPED, campaigns.UNPUBLISHED)
    }


def test_a_batch_of_a_correction_stops_once_its_piece_is_unpublished():
    article, correction = a_correction_being_sent()
    assert campaigns.campaign_may_send(campaign_id=correction.pk)
    Article.objects.filter(pk=article.pk).update(status=Article.Status.UNPUBLISHED)

    assert not campaigns.campaign_may_send(campaign_id=correction.pk)
    correction.refresh_from_db()
    assert correction.status == Campaign.Status.CANCELLED


def test_recovery_leaves_digests_and_the_corrections_of_published_pieces_alone():
    _article, correction = a_correction_being_sent()
    digest = Campaign.objects.create(
        digest=Campaign.Digest.WEEKLY, period_key=timezone.now(), status=Campaign.Status.SENDING
    )

    sending.recover_stalled_campaigns()

    assert Campaign.objects.get(pk=correction.pk).status == Campaign.Status.SENDING
    assert Campaign.objects.get(pk=digest.pk).status == Campaign.Status.FINISHED  # nothing to send: not cancelled
