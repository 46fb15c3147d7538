"""POST /api/v1/subscribers/: the sign-up form's double opt-in and limits, answered in JSON."""

import pytest
from django.test import Client

from newsletter.models import Subscriber
from tests.support.factories import SubscriberFactory, TopicFactory

pytestmark = pytest.mark.django_db

DONE = "Check your inbox: we sent a link to confirm the subscription."


def subscribe(client, body, **extra):
    return client.post("/api/v1/subscribers/", body, format="json", **extra)


def test_a_reader_subscribes_and_waits_for_confirmation(anonymous, django_capture_on_commit_callbacks):
    TopicFactory.create(slug="energy")
    with django_capture_on_commit_callbacks() as callbacks:
        response = subscribe(anonymous, {"email": "Reader@Example.org", "name": "A Reader", "topics": ["energy"]})
    assert response.status_code == 202
    assert response.json() == {"detail": DONE}
    reader = Subscriber.objects.get()
    assert reader.status == Subscriber.Status.PENDING
    assert reader.source == Subscriber.Source.API
    assert reader.all_topics is False
    assert [t.slug for t in reader.topics.all()] == ["energy"]
    # The confirmation email is queued once the subscription commits.
    assert sum("_queue_confirmation" in repr(callback) for callback in callbacks) == 1


def test_the_answer_does_not_reveal_an_existing_subscriber(anonymous):
    SubscriberFactory.create(email="known@example.org")
    response = subscribe(anonymous, {"email": "known@example.org"})
    assert response.status_code == 202
    assert response.json() == {"detail": DONE}
    assert Subscriber.objects.get().status == Subscriber.Status.CONFIRMED


def test_a_robot_filling_the_trap_field_gets_the_same_answer_and_no_subscription(anonymous):
    response = subscribe(anonymous, {"email": "bot@example.org", "website": "http://spam.example"})
    assert response.status_code == 202
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@example.org", "topics": ["no-such-topic"]}, "topics"),
        ({"email": "a@example.org", "topics": "energy"}, "topics"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(anonymous, body, field):
    response = subscribe(anonymous, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Subscriber.objects.exists()


def test_the_form_encoding_works_too(anonymous):
    response = anonymous.post(
        "/api/v1/subscribers/", "email=form%40example.org", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 202
    assert Subscriber.objects.filter(email="form@example.org").exists()


def test_the_api_and_the_form_share_the_per_address_limit(anonymous, client, settings):
    settings.NEWSLETTER_RATE_LIMIT_PER_ADDRESS = 2
    assert client.post("/newsletter/subscribe/", {"email": "same@example.org"}).status_code == 200
    assert subscribe(anonymous, {"email": "same@example.org"}).status_code == 202
    response = subscribe(anonymous, {"email": "same@example.org"})
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert "Too many requests" in response.json()["detail"]


def test_too_many_attempts_from_one_address_are_refused(anonymous, settings):
    settings.NEWSLETTER_RATE_LIMIT_PER_IP = 3
    codes = [subscribe(anonymous, {"email": f"r{n}@example.org"}).status_code for n in range(4)]
    assert codes == [202, 202, 202, 429]
    assert Subscriber.objects.count() == 3


def test_a_logged_in_browser_needs_no_csrf_token(db, eva):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(eva)
    response = browser.post("/api/v1/subscribers/", {"email": "staff@example.org"}, content_type="application/json")
    assert response.status_code == 202
