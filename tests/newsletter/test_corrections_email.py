"""A correction emailed to the readers who received its piece: exactly them, once,
through the engine's ledger (a real worker and SMTP server)."""

import pytest
from django.utils import timezone

from articles.models import Correction
from newsletter import corrections
from newsletter.models import Campaign, Delivery, DigestContent, DigestPiece, Subscriber
from tests.support.factories import ArticleFactory, CampaignFactory, DeliveryFactory, SubscriberFactory
from tests.support.workers import wait_until

SENT, FAILED = Delivery.Status.SENT, Delivery.Status.FAILED


def a_piece_that_went_out():
    """An article whose campaign finished: Ada and Ben got it, Cem's failed, Dora was not on the list,
    Emil got it and unsubscribed since, Fay got it in her weekly digest."""
    article = ArticleFactory.create(title="Grid fees rise in the north")
    campaign = CampaignFactory.create(article=article, status=Campaign.Status.FINISHED)
    readers = {
        name: SubscriberFactory.create(email=f"{name}@example.org")
        for name in ["ada", "ben", "cem", "dora", "emil", "fay"]
    }
    for name, status in [("ada", SENT), ("ben", SENT), ("cem", FAILED), ("emil", SENT)]:
        DeliveryFactory.create(campaign=campaign, subscriber=readers[name], status=status)
    Subscriber.objects.filter(pk=readers["emil"].pk).update(status=Subscriber.Status.UNSUBSCRIBED)
    digest = CampaignFactory.create(
        article=None, digest=Campaign.Digest.WEEKLY, period_key=timezone.now(), status=Campaign.Status.FINISHED
    )
    content = DigestContent.objects.create(campaign=digest, key=str(article.pk))
    DigestPiece.objects.create(content=content, article=article)
    DeliveryFactory.create(campaign=digest, subscriber=readers["fay"], content=content, status=SENT)
    note = Correction.objects.create(article=article, text="The fee rises by 4 %, not 40 %.")
    return article, note


@pytest.mark.integration
def test_the_correction_reaches_exactly_the_readers_who_received_the_piece_once(mail_worker, smtp_server):
    _article, note = a_piece_that_went_out()
    campaign = corrections.send_correction(correction=note, by=None)
    again = corrections.send_correction(correction=note, by=None)  # pressed twice
    assert again.pk == campaign.pk
    assert campaign.recipients == 3
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.FINISHED, timeout=60)
    assert corrections.send_correction(correction=note, by=None).pk == campaign.pk  # and after it finished
    assert sorted(smtp_server.handler.recipients()) == ["ada@example.org", "ben@example.org", "fay@example.org"]
    [message] = smtp_server.handler.to("ada@example.org")
    assert message["Subject"] == "Correction: Grid fees rise in the north"
    assert "The fee rises by 4 %, not 40 %." in message.get_body(("plain",)).get_content()
    assert "/newsletter/unsubscribe/" in message["List-Unsubscribe"]
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {SENT}
    assert Campaign.objects.filter(correction__isnull=False).count() == 1


def test_the_editor_confirms_and_sends_from_the_article_page(client, eva, db, django_capture_on_commit_callbacks):
    article, note = a_piece_that_went_out()
    client.force_login(eva)
    page = client.get(f"/admin/articles/article/{article.pk}/change/").content.decode()
    url = f"/admin/articles/article/{article.pk}/corrections/{note.pk}/email/"
    assert url in page
    confirm = client.get(url).content.decode()
    assert "<strong>3</strong> readers" in confirm
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url)
        client.post(url)
    campaign = Campaign.objects.get(correction=note)
    assert response["Location"] == f"/admin/newsletter/campaign/{campaign.pk}/progress/"
    assert campaign.status == Campaign.Status.SENDING
    assert Delivery.objects.filter(campaign=campaign).count() == 3
    assert "emailed already" in client.get(url).content.decode()


def test_an_author_cannot_email_readers(client, cora, db):
    _article, note = a_piece_that_went_out()
    client.force_login(cora)
    response = client.post(f"/admin/articles/article/{note.article_id}/corrections/{note.pk}/email/")
    assert response.status_code == 403
    assert not Campaign.objects.filter(correction=note).exists()


def test_a_piece_nobody_received_has_nobody_to_correct(client, eva, db):
    article = ArticleFactory.create()
    note = Correction.objects.create(article=article, text="A date was wrong.")
    with pytest.raises(corrections.NothingToSend):
        corrections.send_correction(correction=note, by=eva)
    client.force_login(eva)
    response = client.post(f"/admin/articles/article/{article.pk}/corrections/{note.pk}/email/", follow=True)
    assert "nobody to send the note to" in response.content.decode()
    assert not Campaign.objects.filter(correction=note).exists()
