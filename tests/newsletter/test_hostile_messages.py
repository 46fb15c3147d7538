"""Whatever is stored, a campaign's message carries only the headers it means to, and
every reader's address is tried on its own: internationalised domains go in their ASCII
form, a non-ASCII local part only to a server that offers SMTPUTF8, and an address that
cannot be sent to fails that one delivery while the batch goes on.

Rows are written straight into the database, past every form's validation, as an old
import or a hand edit could have left them."""

from __future__ import annotations

from email.utils import parseaddr

import pytest
from django.core import mail

from articles.models import Article, SiteSettings
from newsletter import sending
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, SubscriberFactory
from tests.support.smtp import SMTPServer

# The engine records outside transactions, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

INJECTED_TITLE = "Grid news\r\nReply-To: x@evil.example\r\n\r\nFake body"
# Headers our campaign email has; anything else came from stored text.
OUR_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}

IDN_READER = "leser@bücher.de"
UTF8_LOCAL_READER = "jörg@example.org"
LONG_READER = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 57]) + ".org"  # 254 characters
QUOTED_READER = '"anna maria"@example.org'
TWIN_SPELLING = "LESER@xn--BCHER-KVA.de"  # the IDN reader again, as another row


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def hostile_sender_and_title() -> Article:
    SiteSettings.load()
    SiteSettings.objects.filter(pk=1).update(
        newsletter_sender_name="Euro Prospects\r\nBcc: everyone@evil.example",
        site_name="Euro Prospects\nX-Injected: yes",
    )
    article = ArticleFactory.create(body="<p>The real body of the piece.</p>")
    Article.objects.filter(pk=article.pk).update(title=INJECTED_TITLE)
    return article


def send_everything(campaign: Campaign) -> None:
    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass


def start(article: Article) -> Campaign:
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    return campaign


def assert_clean(headers: dict[str, str], plain_text: str) -> None:
    assert set(headers) <= OUR_HEADERS
    assert " ".join(headers["subject"].split()) == "Grid news Reply-To: x@evil.example Fake body"
    assert "The real body of the piece." in plain_text
    assert "bcc" not in headers
    assert "reply-to" not in headers


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_a_title_with_line_breaks_adds_no_header_over_smtp(smtp_server, pipelining):
    smtp_server.handler.pipelining = pipelining
    reader = SubscriberFactory.create(name="Ana\r\nReply-To: y@evil.example")
    campaign = start(hostile_sender_and_title())

    send_everything(campaign)

    (message,) = smtp_server.handler.to(reader.email)
    headers = {name.lower(): str(value) for name, value in message.items()}
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert_clean(headers, body.get_content())
    assert message["Reply-To"] is None
    assert message["From"].addresses[0].addr_spec == SiteSettings.load().newsletter_sender_email
    assert message["To"].addresses[0].addr_spec == reader.email
    assert Delivery.objects.get(subscriber=reader).status == Delivery.Status.SENT


def test_a_title_with_line_breaks_is_sent_with_a_clean_header_through_a_django_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reader = SubscriberFactory.create(name="Ana\nBcc: y@evil.example")
    campaign = start(hostile_sender_and_title())

    send_everything(campaign)

    assert Delivery.objects.get(subscriber=reader).status == Delivery.Status.SENT
    (sent,) = mail.outbox
    message = sent.message()
    headers = {name.lower(): str(value) for name, value in message.items()}
    assert_clean(headers, str(sent.body))
    assert parseaddr(sent.to[0]) == ("Ana Bcc: y@evil.example", reader.email)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_a_title_with_line_breaks_is_sent_cleanly_through_an_esp_batch(mailgun_server):
    reader = SubscriberFactory.create()
    campaign = start(hostile_sender_and_title())

    send_everything(campaign)

    (copy,) = mailgun_server.state.to(reader.email)
    assert copy.subject == "Grid news Reply-To: x@evil.example Fake body"
    assert {name.lower() for name in copy.headers} <= OUR_HEADERS
    assert Delivery.objects.get(subscriber=reader).status == Delivery.Status.SENT


def hostile_list() -> dict[str, Subscriber]:
    """Readers as rows written straight into the table, next to two ordinary ones."""
    readers = {
        "plain": SubscriberFactory.create(email="plain@example.org"),
        "idn": SubscriberFactory.create(email=IDN_READER),
        "utf8 local": SubscriberFactory.create(email=UTF8_LOCAL_READER),
        "long": SubscriberFactory.create(email=LONG_READER),
        "quoted": SubscriberFactory.create(email=QUOTED_READER),
        "twin": SubscriberFactory.create(email=TWIN_SPELLING),
        "broken": SubscriberFactory.create(email="bad@exa\r\nmple.org"),
        "comma": SubscriberFactory.create(email="ana,bo@example.org"),  # two addresses to a header parser
        "last": SubscriberFactory.create(email="last@example.org"),
    }
    assert len(LONG_READER) == 254
    return readers


def outcome(reader: Subscriber) -> Delivery:
    delivery = Delivery.objects.get(subscriber=reader)
    assert delivery.status in (Delivery.Status.SENT, Delivery.Status.FAILED), delivery.status
    if delivery.status == Delivery.Status.FAILED:
        assert delivery.last_error
    return delivery


def assert_nobody_suppressed(readers: dict[str, Subscriber]) -> None:
    assert set(Subscriber.objects.values_list("status", flat=True)) == {Subscriber.Status.CONFIRMED}


@pytest.mark.parametrize("connections", [1, 3])
def test_a_hostile_list_over_smtp_sends_each_reader_that_can_be_sent_to(smtp_server, settings, connections):
    settings.NEWSLETTER_BATCH_SIZE = 100
    settings.NEWSLETTER_CONNECTIONS_PER_BATCH = connections
    readers = hostile_list()
    campaign = start(ArticleFactory.create())

    send_everything(campaign)

    received = set(smtp_server.handler.recipients())
    assert {"plain@example.org", "last@example.org", "leser@xn--bcher-kva.de", LONG_READER, QUOTED_READER} <= received
    for name in ("plain", "idn", "long", "quoted", "twin", "last"):
        assert outcome(readers[name]).status == Delivery.Status.SENT, name
    (idn_copy,) = [m for m in smtp_server.handler.messages if m.recipients == ["leser@xn--bcher-kva.de"]]
    assert idn_copy.parsed()["To"].addresses[0].addr_spec == "leser@xn--bcher-kva.de"
    utf8 = outcome(readers["utf8 local"])
    assert utf8.status == Delivery.Status.FAILED
    assert "SMTPUTF8" in utf8.last_error
    assert outcome(readers["broken"]).status == Delivery.Status.FAILED
    assert outcome(readers["comma"]).status == Delivery.Status.FAILED
    assert_nobody_suppressed(readers)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_a_non_ascii_local_part_goes_to_a_server_that_offers_smtputf8(settings):
    server = SMTPServer(smtputf8=True).start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        reader = SubscriberFactory.create(email="jörg@bücher.de", name="Jörg")
        plain = SubscriberFactory.create(email="plain@example.org")
        campaign = start(ArticleFactory.create())

        send_everything(campaign)

        assert outcome(reader).status == Delivery.Status.SENT
        assert outcome(plain).status == Delivery.Status.SENT
        (message,) = server.handler.to("jörg@xn--bcher-kva.de")
        assert message["To"].addresses[0].addr_spec == "jörg@xn--bcher-kva.de"
        assert message["To"].addresses[0].display_name == "Jörg"
        (utf8,) = [m for m in server.handler.messages if m.recipients == ["jörg@xn--bcher-kva.de"]]
        assert "SMTPUTF8" in utf8.mail_options
        (ascii_copy,) = [m for m in server.handler.messages if m.recipients == ["plain@example.org"]]
        assert "SMTPUTF8" not in ascii_copy.mail_options
    finally:
        server.stop()


def test_a_hostile_list_through_a_django_backend_sends_each_reader_that_can_be_sent_to(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    readers = hostile_list()
    campaign = start(ArticleFactory.create())

    send_everything(campaign)

    for name in ("plain", "idn", "long", "quoted", "twin", "last"):
        assert outcome(readers[name]).status == Delivery.Status.SENT, name
    for name in ("utf8 local", "broken", "comma"):
        assert outcome(readers[name]).status == Delivery.Status.FAILED, name
    addresses = {parseaddr(message.message()["To"])[1] for message in mail.outbox}
    assert "leser@xn--bcher-kva.de" in addresses
    assert_nobody_suppressed(readers)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


@pytest.mark.parametrize("esp", ["mailgun_server", "unisender_go_server"])
def test_a_hostile_list_through_an_esp_batch_sends_each_reader_that_can_be_sent_to(esp, request, settings):
    esp_server = request.getfixturevalue(esp)
    settings.NEWSLETTER_ESP_BATCH_SIZE = 10
    readers = hostile_list()
    campaign = start(ArticleFactory.create())

    send_everything(campaign)

    for name in ("plain", "idn", "long", "quoted", "twin", "last"):
        assert outcome(readers[name]).status == Delivery.Status.SENT, name
    for name in ("utf8 local", "broken", "comma"):
        assert outcome(readers[name]).status == Delivery.Status.FAILED, name
    # The two spellings of one address never share a call, so each copy has its own links.
    for call in esp_server.state.calls:
        assert len({address.lower() for address in call.to}) == len(call.to)
    idn_copies = esp_server.state.to("leser@xn--bcher-kva.de")
    assert len(idn_copies) == 2
    unsubscribe_links = {copy.headers["List-Unsubscribe"] for copy in idn_copies}
    assert len(unsubscribe_links) == 2
    assert_nobody_suppressed(readers)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
