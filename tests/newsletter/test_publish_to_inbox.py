"""The whole flow with a real Celery worker process and a real SMTP server."""

import pytest
from django.test import Client

from newsletter.models import Subscriber
from tests.support.mail import link_to
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration


def test_a_worker_sends_the_mails_and_the_links_in_them_work(mail_worker, smtp_server):
    client = Client()
    client.post("/newsletter/subscribe/", {"email": "worker.reader@example.org"})
    [confirmation] = wait_until(lambda: smtp_server.handler.to("worker.reader@example.org"), timeout=60)
    client.post(link_to(confirmation, "/newsletter/confirm/"))
    assert Subscriber.objects.get().status == Subscriber.Status.CONFIRMED

    messages = wait_until(
        lambda: (
            len(smtp_server.handler.to("worker.reader@example.org")) >= 2
            and smtp_server.handler.to("worker.reader@example.org")
        ),
        timeout=60,
    )
    welcome = messages[1]
    assert welcome["Subject"] == "Welcome to Euro Prospects"
    unsubscribe_path = link_to(welcome, "/newsletter/unsubscribe/")
    Client(enforce_csrf_checks=True).post(
        unsubscribe_path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
