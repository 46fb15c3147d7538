"""Subscribe, confirm, preferences and unsubscribe through HTTP, reading the real emails."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Subscriber
from newsletter.tokens import make_token
from tests.support.factories import SubscriberFactory, TopicFactory
from tests.support.mail import link_to

SUBSCRIBE = "/newsletter/subscribe/"


def test_a_new_reader_subscribes_confirms_from_the_mail_and_gets_a_welcome(client, run_tasks):
    response = client.post(SUBSCRIBE, {"email": "Ada.Reader@Example.ORG", "name": "Ada", "website": ""})
    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "Ada.Reader@example.org"
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.consent_at is not None
    assert subscriber.consent_ip == "127.0.0.1"
    assert subscriber.source == Subscriber.Source.FORM

    [mail] = run_tasks.handler.to("Ada.Reader@example.org")
    assert mail["Subject"] == "Confirm your Euro Prospects subscription"
    confirm_path = link_to(mail, "/newsletter/confirm/")

    page = client.get(confirm_path)
    assert page.status_code == 200
    assert b"Confirm my subscription" in page.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING, "a GET (link scanner) must not confirm"

    done = client.post(confirm_path)
    assert b"Subscription confirmed" in done.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED
    assert list(Subscriber.objects.confirmed()) == [subscriber]

    welcome = run_tasks.handler.to("Ada.Reader@example.org")[-1]
    assert welcome["Subject"] == "Welcome to Euro Prospects"
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "mailto:unsubscribe@localhost" in welcome["List-Unsubscribe"]
    assert link_to(welcome, "/newsletter/preferences/")


def test_the_answer_does_not_tell_whether_an_address_is_subscribed(client, db):
    SubscriberFactory.create(email="known@example.org")
    SubscriberFactory.create(email="waiting@example.org", status=Subscriber.Status.PENDING)
    answers = []
    for email in ["known@example.org", "waiting@example.org", "new@example.org"]:
        response = client.post(SUBSCRIBE, {"email": email})
        answers.append((response.status_code, response.content.decode().replace(email, "EMAIL")))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 200


def test_it_resends_the_confirmation_at_most_once_per_interval(client, run_tasks, settings):
    settings.NEWSLETTER_CONFIRM_RESEND_INTERVAL = 600
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.post(SUBSCRIBE, {"email": "twice@example.org"})
        client.post(SUBSCRIBE, {"email": "twice@example.org"})
        assert len(run_tasks.handler.to("twice@example.org")) == 1
        traveller.shift(timedelta(seconds=601))
        client.post(SUBSCRIBE, {"email": "TWICE@example.org"})
    assert len(run_tasks.handler.to("twice@example.org")) == 2
    assert Subscriber.objects.count() == 1


def test_a_confirmed_reader_who_subscribes_again_gets_no_mail(client, run_tasks):
    SubscriberFactory.create(email="happy@example.org")
    client.post(SUBSCRIBE, {"email": "happy@example.org"})
    assert run_tasks.handler.to("happy@example.org") == []


def test_a_reader_who_unsubscribed_must_confirm_again(client, run_tasks):
    reader = SubscriberFactory.create(email="back@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    client.post(SUBSCRIBE, {"email": "back@example.org"})
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING
    assert reader not in Subscriber.objects.confirmed()
    [mail] = run_tasks.handler.to("back@example.org")
    client.post(link_to(mail, "/newsletter/confirm/"))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_it_rejects_a_tampered_token_with_a_friendly_page(client, db):
    reader = SubscriberFactory.create(status=Subscriber.Status.PENDING)
    token = make_token(reader.pk, "confirm")
    for url in [
        reverse("newsletter:confirm", args=[token[:-2] + "xx"]),
        reverse("newsletter:unsubscribe", args=[token]),  # a confirm token is not an unsubscribe token
        reverse("newsletter:preferences", args=["nonsense"]),
    ]:
        response = client.get(url)
        assert response.status_code == 400
        assert b"This link does not work" in response.content
    assert client.post(reverse("newsletter:confirm", args=[token[:-2] + "xx"])).status_code == 400
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING


def test_it_rejects_an_expired_confirmation_link(client, db, settings):
    reader = SubscriberFactory.create(status=Subscriber.Status.PENDING)
    with time_machine.travel(timezone.now() - timedelta(seconds=settings.NEWSLETTER_CONFIRM_MAX_AGE + 60)):
        token = make_token(reader.pk, "confirm")
    response = client.post(reverse("newsletter:confirm", args=[token]))
    assert response.status_code == 400
    assert b"expired" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING


def test_one_click_unsubscribe_works_without_csrf_token_or_session(db):
    reader = SubscriberFactory.create()
    mail_client = Client(enforce_csrf_checks=True)
    response = mail_client.post(
        reverse("newsletter:unsubscribe", args=[make_token(reader.pk, "unsubscribe")]),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert reader.unsubscribe_reason == "one-click"
    assert reader.unsubscribed_at is not None
    assert reader not in Subscriber.objects.confirmed()


def test_opening_the_unsubscribe_page_does_not_unsubscribe(client, db):
    reader = SubscriberFactory.create()
    response = client.get(reverse("newsletter:unsubscribe", args=[make_token(reader.pk, "unsubscribe")]))
    assert b"Stop sending Euro Prospects" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_a_reader_chooses_topics_on_the_preferences_page(client, db):
    energy, economy = TopicFactory.create(slug="energy"), TopicFactory.create(slug="economy")
    reader = SubscriberFactory.create()
    url = reverse("newsletter:preferences", args=[make_token(reader.pk, "preferences")])
    assert b"energy" in client.get(url).content
    response = client.post(url, {"all_topics": "0", "topics": ["energy"], "cadence": "weekly"})
    assert response.status_code == 200
    assert b"Your preferences are saved" in response.content
    reader.refresh_from_db()
    assert reader.cadence == Subscriber.Cadence.WEEKLY
    assert list(Subscriber.objects.confirmed().wanting([energy])) == [reader]
    assert list(Subscriber.objects.confirmed().wanting([economy])) == []

    client.post(url, {"all_topics": "1", "cadence": "immediate"})
    assert list(Subscriber.objects.confirmed().wanting([economy])) == [reader]


def test_choosing_only_chosen_topics_but_none_is_refused(client, db):
    TopicFactory.create(slug="energy")
    reader = SubscriberFactory.create()
    url = reverse("newsletter:preferences", args=[make_token(reader.pk, "preferences")])
    response = client.post(url, {"all_topics": "0", "cadence": "weekly"})
    assert response.status_code == 400
    assert b"Choose at least one topic" in response.content
    reader.refresh_from_db()
    assert reader.all_topics is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-address"}, b"@-sign"),
        ({"email": ""}, b"This field is required"),
        ({"email": "a" * 400 + "@example.org"}, b"at most 320 characters"),
        ({"email": "ok@example.org", "name": "n" * 500}, b"at most 120 characters"),
        ({"email": "nul\x00@example.org"}, b"Null characters are not allowed"),
    ],
)
def test_bad_input_gets_a_400_with_a_message(client, db, data, message):
    response = client.post(SUBSCRIBE, data)
    assert response.status_code == 400
    assert message in response.content
    assert not Subscriber.objects.exists()


def test_an_oversized_body_is_refused_with_a_4xx(client, db):
    response = client.post(SUBSCRIBE, {"email": "x@example.org", "name": "n" * 3_000_000})
    assert 400 <= response.status_code < 500
    assert not Subscriber.objects.exists()


def test_a_filled_honeypot_gets_the_same_page_but_subscribes_nobody(client, run_tasks):
    response = client.post(SUBSCRIBE, {"email": "bot@example.org", "website": "http://spam.example"})
    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert not Subscriber.objects.exists()
    assert run_tasks.handler.messages == []


def test_it_limits_subscriptions_per_address(client, db, settings):
    settings.NEWSLETTER_RATE_LIMIT_PER_ADDRESS = 2
    codes = [client.post(SUBSCRIBE, {"email": "target@example.org"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.post(SUBSCRIBE, {"email": "other@example.org"}).status_code == 200


def test_it_limits_subscriptions_per_ip(client, db, settings):
    settings.NEWSLETTER_RATE_LIMIT_PER_IP = 2
    codes = [client.post(SUBSCRIBE, {"email": f"r{n}@example.org"}).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    other_ip = client.post(SUBSCRIBE, {"email": "r9@example.org"}, REMOTE_ADDR="192.0.2.7")
    assert other_ip.status_code == 200
    assert b"Too many requests" in client.post(SUBSCRIBE, {"email": "r8@example.org"}).content


def test_the_api_subscribes_like_the_form(client, run_tasks):
    TopicFactory.create(slug="energy")
    response = client.post(
        "/api/v1/subscribers/", {"email": "api@example.org", "topics": ["energy"]}, content_type="application/json"
    )
    assert response.status_code == 202
    assert "Check your inbox" in response.json()["detail"]
    subscriber = Subscriber.objects.get()
    assert subscriber.source == Subscriber.Source.API
    assert subscriber.all_topics is False
    assert [t.slug for t in subscriber.topics.all()] == ["energy"]
    assert len(run_tasks.handler.to("api@example.org")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"email": "nope"}', "email"),
        ('{"email": "a@example.org", "topics": ["no-such-topic"]}', "topics"),
        ('{"email": "a@example.org", "topics": "energy"}', "topics"),
    ],
)
def test_the_api_explains_bad_input(client, db, body, field):
    response = client.post("/api/v1/subscribers/", body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"'])
def test_the_api_refuses_malformed_json(client, db, body):
    response = client.post("/api/v1/subscribers/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_nul_characters_in_free_text_fields_are_not_a_server_error(client, db):
    reader = SubscriberFactory.create()
    response = client.post(SUBSCRIBE, {"email": "nul@example.org", "form_name": "home\x00box"}, HTTP_USER_AGENT="ua")
    assert response.status_code == 200
    assert Subscriber.objects.get(email="nul@example.org").consent_source == "homebox"
    url = reverse("newsletter:unsubscribe", args=[make_token(reader.pk, "unsubscribe")])
    assert client.post(url, {"reason": "too\x00many"}).status_code == 200
    reader.refresh_from_db()
    assert reader.unsubscribe_reason == "toomany"


def test_the_sign_up_box_on_a_cached_page_works_without_a_csrf_token(run_tasks):
    response = Client(enforce_csrf_checks=True).post(SUBSCRIBE, {"email": "box@example.org", "website": ""})
    assert response.status_code == 200
    assert Subscriber.objects.get().email == "box@example.org"
    assert run_tasks.handler.to("box@example.org")


def counter_value(counter) -> float:
    return next(s.value for metric in counter.collect() for s in metric.samples if s.name.endswith("_total"))


def test_sign_ups_and_confirmations_are_counted_for_metrics(client, run_tasks):
    from euro_prospects import metrics

    subscriptions, confirmations = counter_value(metrics.SUBSCRIPTIONS), counter_value(metrics.CONFIRMATIONS)
    client.post(SUBSCRIBE, {"email": "counted@example.org", "website": ""})
    assert counter_value(metrics.SUBSCRIPTIONS) == subscriptions + 1
    [mail] = run_tasks.handler.to("counted@example.org")
    client.post(link_to(mail, "/newsletter/confirm/"))
    assert counter_value(metrics.CONFIRMATIONS) == confirmations + 1
