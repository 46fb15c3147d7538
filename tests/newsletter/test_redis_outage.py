"""Readers while Redis (the broker, the rate limiter's counts) is down: the answers they
would get anyway, never a server error, and the confirmation once Redis is back.

The rate limiter meets a real refused connection (the cache points at a closed port). The
broker's refusal is raised where kombu raises it (``delay``), as in tests/euro_prospects/
test_celery.py: the broker going away for real is tested with publishing, in
test_stopping_and_outages.py.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from kombu.exceptions import OperationalError

from newsletter import tasks
from newsletter.models import Subscriber
from newsletter.tokens import make_token
from tests.support.factories import SubscriberFactory
from tests.support.smtp import free_port

REFUSED = "Error 111 connecting to 127.0.0.1:6379. Connection refused."


@pytest.fixture
def redis_down(settings, monkeypatch):
    """Redis stops: the cache at a closed port, and every task the broker is given refused."""
    working_cache = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }

    def refuse(*args, **kwargs):
        raise OperationalError(REFUSED)

    for task in (
        tasks.send_confirmation_email,
        tasks.send_welcome_email,
        tasks.send_manage_link_email,
        tasks.send_data_export,
    ):
        monkeypatch.setattr(task, "delay", refuse)

    def back() -> None:
        monkeypatch.undo()
        settings.CACHES = working_cache

    return back


def sign_up(client, address="ines@example.org"):
    return client.post(reverse("newsletter:subscribe"), {"email": address, "name": "Ines", "website": ""})


def test_a_reader_who_signs_up_while_redis_is_down_gets_the_confirmation_once_it_is_back(
    client, run_tasks, redis_down, caplog
):
    response = sign_up(client)
    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    reader = Subscriber.objects.get(email="ines@example.org")
    assert reader.status == Subscriber.Status.PENDING
    assert reader.confirmation_sent_at is None  # not sent: marked for the sweep
    assert "event=ratelimit_unavailable key=newsletter" in caplog.text
    assert "event=task_not_queued task=newsletter.tasks.send_confirmation_email" in caplog.text
    assert run_tasks.handler.messages == []

    redis_down()  # Redis is back; beat runs the recovery
    tasks.recover_campaigns.delay()
    [confirmation] = run_tasks.handler.to("ines@example.org")
    assert "Confirm" in confirmation["Subject"]
    tasks.recover_campaigns.delay()  # the next beat finds nothing left to send
    assert len(run_tasks.handler.to("ines@example.org")) == 1


def test_a_reader_who_tries_again_once_redis_is_back_gets_the_confirmation_at_once(client, run_tasks, redis_down):
    assert sign_up(client).status_code == 200
    redis_down()
    assert sign_up(client).status_code == 200  # within NEWSLETTER_CONFIRM_RESEND_INTERVAL
    assert len(run_tasks.handler.to("ines@example.org")) == 1


def test_a_confirmed_reader_and_a_new_one_get_the_same_answer_while_redis_is_down(client, run_tasks, redis_down):
    SubscriberFactory.create(email="known@example.org", status=Subscriber.Status.CONFIRMED)
    known, new = sign_up(client, "known@example.org"), sign_up(client, "new@example.org")
    assert (known.status_code, new.status_code) == (200, 200)
    assert known.content.replace(b"known@", b"new@") == new.content


def test_confirming_while_redis_is_down_confirms_without_the_welcome(client, run_tasks, redis_down, caplog):
    reader = SubscriberFactory.create(email="ines@example.org", status=Subscriber.Status.PENDING)
    url = reverse("newsletter:confirm", args=[make_token(reader.pk, "confirm")])
    response = client.post(url)
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    assert "event=notice_not_queued task=newsletter.tasks.send_welcome_email" in caplog.text


def test_a_data_export_asked_for_while_redis_is_down_says_to_ask_again(client, run_tasks, redis_down):
    reader = SubscriberFactory.create(email="ines@example.org", status=Subscriber.Status.CONFIRMED)
    url = reverse("newsletter:preferences_data", args=[make_token(reader.pk, "preferences")])
    response = client.post(url)
    assert response.status_code == 503
    assert b"Please try again in a few minutes." in response.content
    redis_down()
    assert client.post(url).status_code == 200
    [export] = run_tasks.handler.to("ines@example.org")
    assert any(part.get_filename() == "newsletter-data.json" for part in export.iter_attachments())


def test_a_manage_link_asked_for_while_redis_is_down_gets_the_same_answer_as_any_address(client, run_tasks, redis_down):
    SubscriberFactory.create(email="ines@example.org", status=Subscriber.Status.CONFIRMED)
    known = client.post(reverse("newsletter:privacy"), {"email": "ines@example.org"})
    unknown = client.post(reverse("newsletter:privacy"), {"email": "nobody@example.org"})
    assert (known.status_code, unknown.status_code) == (200, 200)
    assert known.content.replace(b"ines@", b"nobody@") == unknown.content


def test_an_editor_emailing_readers_their_data_while_redis_is_down_is_told_so(client, run_tasks, eva, redis_down):
    readers = [SubscriberFactory.create() for _ in range(2)]
    client.force_login(eva)
    response = client.post(
        reverse("admin:newsletter_subscriber_changelist"),
        {"action": "email_data_export", "_selected_action": [reader.pk for reader in readers]},
        follow=True,
    )
    assert response.status_code == 200
    [notice] = [str(message) for message in response.context["messages"]]
    assert notice == "Queued 0 data export(s); the queue (Redis) is down: try the rest later."
