"""One address in its two spellings (``bücher.de`` and ``xn--bcher-kva.de``) is one
subscriber, whichever way it arrives: addresses are stored with the domain in ASCII."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from newsletter import services
from newsletter.imports import import_subscribers
from newsletter.models import Subscriber, Suppression, canonical_email, email_hash
from tests.support.factories import ArticleFactory, CampaignFactory, DeliveryFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

ASCII = "leser@xn--bcher-kva.de"


def test_a_unicode_domain_is_stored_in_ascii():
    assert services.normalise_email("leser@bücher.de") == ASCII
    assert services.normalise_email("leser@xn--bcher-kva.de") == ASCII
    assert services.normalise_email("leser@BÜCHER.de") == ASCII


def test_subscribing_with_both_spellings_makes_one_subscriber():
    first = services.subscribe(email="leser@bücher.de", source=Subscriber.Source.FORM)
    second = services.subscribe(email="Leser@XN--BCHER-KVA.DE", source=Subscriber.Source.API)

    assert first.pk == second.pk
    assert Subscriber.objects.get().email == ASCII


def test_an_import_with_both_spellings_adds_one_subscriber(tmp_path):
    SubscriberFactory.create(email="anna@xn--mnchen-3ya.de")
    path = tmp_path / "readers.csv"
    path.write_text("email\nleser@bücher.de\nLESER@xn--bcher-kva.de\nanna@münchen.de\n", encoding="utf-8")
    skipped: list[tuple[int, str, str]] = []
    with path.open(newline="", encoding="utf-8") as file:
        report = import_subscribers(
            file=file, confirmed=True, consent_source="test", on_skip=lambda *a: skipped.append(a)
        )

    assert report.imported == 1
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["anna@xn--mnchen-3ya.de", ASCII]
    assert [reason.split(":")[0] for _, _, reason in skipped] == ["duplicate", "duplicate"]


def test_an_erasure_remembered_under_the_unicode_spelling_still_keeps_the_address_out(tmp_path):
    Suppression.objects.create(email_hash=email_hash("leser@bücher.de"), reason="erasure requested")
    assert email_hash(ASCII) == email_hash("leser@bücher.de")
    path = tmp_path / "readers.csv"
    path.write_text("email\nleser@xn--bcher-kva.de\n", encoding="utf-8")
    with path.open(newline="", encoding="utf-8") as file:
        report = import_subscribers(file=file, confirmed=True, consent_source="test")

    assert report.imported == 0
    assert not Subscriber.objects.exists()


def test_a_webhook_address_in_either_spelling_finds_the_subscriber():
    reader = SubscriberFactory.create(email=ASCII)
    assert Subscriber.objects.get(email__iexact=canonical_email("Leser@Bücher.de")) == reader


def test_the_migration_stores_ascii_domains_and_merges_the_two_spellings():
    migration = importlib.import_module("newsletter.migrations.0007_subscriber_email_ascii_domain")
    alone = SubscriberFactory.create(email="anna@münchen.de")
    older = SubscriberFactory.create(email="leser@bücher.de")
    newer = SubscriberFactory.create(email=ASCII, status=Subscriber.Status.COMPLAINED)
    shared, only_newer = CampaignFactory.create(article=ArticleFactory.create()), CampaignFactory.create()
    DeliveryFactory.create(campaign=shared, subscriber=older)
    DeliveryFactory.create(campaign=shared, subscriber=newer)
    moved = DeliveryFactory.create(campaign=only_newer, subscriber=newer)

    migration.store_ascii_domains(apps, None)

    alone.refresh_from_db()
    assert alone.email == "anna@xn--mnchen-3ya.de"
    (kept,) = Subscriber.objects.filter(email__iexact=ASCII)
    assert kept.pk == older.pk
    assert kept.email == ASCII
    assert kept.status == Subscriber.Status.COMPLAINED  # a complaint is never lost in the merge
    assert not Subscriber.objects.filter(pk=newer.pk).exists()
    moved.refresh_from_db()
    assert moved.subscriber_id == older.pk
    assert kept.deliveries.count() == 2


def test_an_editor_adding_a_reader_in_the_admin_gets_the_ascii_domain_and_no_second_spelling(client, eva):
    client.force_login(eva)
    added = client.post(
        "/admin/newsletter/subscriber/add/",
        {"email": "Leser@Bücher.de", "status": "pending", "source": "admin", "cadence": "immediate"},
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    assert Subscriber.objects.get().email == "Leser@xn--bcher-kva.de"  # the local part keeps its case

    again = client.post(
        "/admin/newsletter/subscriber/add/",
        {"email": "leser@xn--bcher-kva.de", "status": "pending", "source": "admin", "cadence": "immediate"},
    )
    assert again.status_code == 200
    assert Subscriber.objects.count() == 1
