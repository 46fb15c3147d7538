"""A system email (a reader's confirmation, a contributor's notice) survives a mail server
that is down or says "later": the task sends it again, and only what was not sent yet."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from typing import Any

import pytest
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.template import TemplateDoesNotExist

from articles import services
from articles.models import Article
from euro_prospects.celery import app as celery_app
from euro_prospects.emails import retry_countdown, worth_retrying
from newsletter.models import Subscriber
from newsletter.tasks import send_confirmation_emails
from tests.support.factories import ArticleFactory, AuthorFactory, SubscriberFactory
from tests.support.smtp import SMTPServer
from tests.support.workers import WorkerProcess, wait_until


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPRecipientsRefused({"ines@example.org": (450, b"4.2.1 Mailbox busy")}), True),
        (
            smtplib.SMTPRecipientsRefused(
                {"ines@example.org": (450, b"4.2.1 Mailbox busy"), "omar@example.org": (550, b"5.1.1 No such user")}
            ),
            False,
        ),
        (smtplib.SMTPSenderRefused(451, b"4.3.0 Try again later", "news@example.org"), True),
        (smtplib.SMTPDataError(421, b"4.4.2 Closing, timeout"), True),
        (smtplib.SMTPDataError(554, b"5.7.1 Message refused"), False),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication failed"), False),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), False),
        (AnymailAPIError("the service is busy", status_code=503), True),
        (AnymailAPIError("too many requests", status_code=429), True),
        (AnymailAPIError("no answer"), True),
        (AnymailAPIError("the sender's domain is not verified", status_code=400), False),
        (AnymailRecipientsRefused("every recipient was refused"), False),
        (TemplateDoesNotExist("newsletter/emails/confirm.txt"), False),
        (ValueError("a header with a line break"), False),
    ],
)
def test_only_a_failure_that_may_pass_is_tried_again(error, retried):
    assert worth_retrying(error) is retried


def test_each_try_waits_twice_as_long_up_to_half_the_visibility_timeout(settings):
    settings.EMAIL_RETRY_DELAY = 30
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
    assert [retry_countdown(tries) for tries in range(6)] == [30, 60, 120, 240, 450, 450]


class FaultOnce(dict[str, str]):
    """Faults the test server answers once per address, then accepts the address again."""

    def get(self, key: str, default: Any = None) -> Any:
        return self.pop(key, default)


@pytest.fixture
def relay() -> SMTPServer:
    """A mail server whose address the worker knows; each test starts it when it should answer."""
    return SMTPServer()


@pytest.fixture
def worker(relay: SMTPServer, transactional_db: None) -> Iterator[WorkerProcess]:
    celery_app.control.purge()
    process = WorkerProcess(extra_env={"EMAIL_URL": relay.url, "EMAIL_RETRY_DELAY": "0.2"}).start(timeout=60)
    try:
        yield process
    finally:
        process.stop()
        if relay.controller.server is not None:  # started by the test
            relay.stop()


def worker_log(worker: WorkerProcess) -> str:
    return worker.log_path.read_text(errors="replace")


def finished(worker: WorkerProcess, task: str, outcome: str = "succeeded") -> None:
    """Wait until the worker logged ``task``'s last run: every try of it is over by then."""
    wait_until(lambda: re.search(rf"{re.escape(task)}\[\S+\] {outcome}", worker_log(worker)), timeout=30)


def test_a_reader_who_signs_up_while_the_relay_is_down_gets_one_confirmation_once_it_is_back(client, relay, worker):
    response = client.post("/newsletter/subscribe/", {"email": "ines@example.org", "name": "Ines", "website": ""})
    assert response.status_code == 200
    wait_until(lambda: "send_confirmation_email" in worker_log(worker) and "Retry in" in worker_log(worker))
    relay.start()
    finished(worker, "newsletter.tasks.send_confirmation_email")
    [confirmation] = relay.handler.to("ines@example.org")
    assert "Confirm" in confirmation["Subject"]
    assert Subscriber.objects.get(email="ines@example.org").status == Subscriber.Status.PENDING


def test_a_confirmation_the_relay_refuses_for_good_is_not_tried_again(client, relay, worker):
    tries: list[int] = []
    relay.handler.on_mail = tries.append
    relay.handler.rcpt_faults = {"omar@example.org": "550 5.1.1 No such user"}
    relay.start()
    response = client.post("/newsletter/subscribe/", {"email": "omar@example.org", "name": "", "website": ""})
    assert response.status_code == 200
    finished(worker, "newsletter.tasks.send_confirmation_email", "raised unexpected: SMTPRecipientsRefused")
    assert len(tries) == 1
    assert relay.handler.messages == []
    assert "Retry in" not in worker_log(worker)


def test_a_batch_of_confirmations_goes_on_from_the_address_that_met_a_later(relay, worker):
    readers = [
        SubscriberFactory.create(email=f"reader{n}@example.org", status=Subscriber.Status.PENDING) for n in range(3)
    ]
    relay.handler.rcpt_faults = FaultOnce({"reader1@example.org": "451 4.3.0 Try again later"})
    relay.start()
    send_confirmation_emails.delay([reader.pk for reader in readers])
    finished(worker, "newsletter.tasks.send_confirmation_emails")
    assert "Retry in" in worker_log(worker)
    assert sorted(relay.handler.recipients()) == [f"reader{n}@example.org" for n in range(3)]


def test_each_contributor_hears_of_a_step_once_when_one_address_met_a_later(relay, worker, eva):
    petra = AuthorFactory.create(name="Petra Novakova", email="petra@example.org")
    luka = AuthorFactory.create(name="Luka Marin", email="luka@example.org")
    piece = ArticleFactory.create(status=Article.Status.IN_REVIEW, published_at=None, authors=[petra, luka])
    relay.handler.rcpt_faults = FaultOnce({"luka@example.org": "451 4.3.0 Try again later"})
    relay.start()
    services.return_to_draft(article=piece, by=eva, note="Please add a source for the second figure.")
    finished(worker, "articles.tasks.notify_contributors_of_step")
    assert "Retry in" in worker_log(worker)
    [to_luka] = relay.handler.to("luka@example.org")
    assert "second figure" in to_luka.get_body(("plain",)).get_content()
    assert len(relay.handler.to("petra@example.org")) == 1


def test_a_relay_that_keeps_saying_later_gets_email_retries_tries_more_and_no_more(client, relay, transactional_db):
    celery_app.control.purge()
    tries: list[int] = []
    relay.handler.on_mail = tries.append
    relay.handler.rcpt_fault_for_all = "451 4.3.0 Try again later"
    relay.start()
    extra = {"EMAIL_URL": relay.url, "EMAIL_RETRY_DELAY": "0.1", "EMAIL_RETRIES": "2"}
    process = WorkerProcess(extra_env=extra).start(timeout=60)
    try:
        response = client.post("/newsletter/subscribe/", {"email": "ines@example.org", "name": "", "website": ""})
        assert response.status_code == 200
        finished(process, "newsletter.tasks.send_confirmation_email", "raised unexpected: SMTPRecipientsRefused")
        assert len(tries) == 3  # the first, and EMAIL_RETRIES more
        assert relay.handler.messages == []
    finally:
        process.stop()
        relay.stop()
