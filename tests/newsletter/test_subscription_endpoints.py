"""Generated input (hypothesis) thrown at every subscription endpoint: never a 500."""

import json

import pytest
from django.test import Client
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.services import InvalidEmail, _plain_email, normalise_email
from newsletter.tokens import make_token
from tests.support.factories import SubscriberFactory, TopicFactory

RUNS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
text = st.text(max_size=400)
form_values = st.one_of(text, st.lists(text, max_size=3), st.emails().map(str))
form_data = st.dictionaries(
    st.sampled_from(
        ["email", "name", "website", "topics", "all_topics", "cadence", "reason", "List-Unsubscribe", "form_name"]
    ),
    form_values,
    max_size=6,
)
tokens = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"), min_size=1, max_size=300),
    st.just("x" * 5000),
)


@pytest.fixture
def quiet_limits(settings):
    settings.NEWSLETTER_RATE_LIMIT_PER_IP = 10**6
    settings.NEWSLETTER_RATE_LIMIT_PER_ADDRESS = 10**6


def assert_no_server_error(response):
    assert response.status_code < 500, response.content[:500]


@pytest.fixture
def endpoints(db):
    TopicFactory.create(slug="energy")
    reader = SubscriberFactory.create(email="fixed@example.org")
    return [
        "/newsletter/subscribe/",
        "/newsletter/privacy/",
        "/api/v1/subscribers/",
        f"/newsletter/confirm/{make_token(reader.pk, 'confirm')}/",
        f"/newsletter/preferences/{make_token(reader.pk, 'preferences')}/",
        f"/newsletter/unsubscribe/{make_token(reader.pk, 'unsubscribe')}/",
    ]


@RUNS
@given(data=form_data)
def test_generated_forms_never_cause_a_server_error(quiet_limits, endpoints, data):
    client = Client()
    for url in endpoints:
        assert_no_server_error(client.post(url, data))


@RUNS
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.builds(
            json.dumps,
            st.recursive(
                st.none() | st.text() | st.integers(),
                lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                max_leaves=20,
            ),
        ),
    )
)
def test_generated_api_bodies_never_cause_a_server_error(db, quiet_limits, body):
    client = Client()
    for content_type in ["application/json", "application/x-www-form-urlencoded", "text/plain"]:
        assert_no_server_error(client.post("/api/v1/subscribers/", body, content_type=content_type))
    assert_no_server_error(
        client.post("/newsletter/subscribe/", body, content_type="application/x-www-form-urlencoded")
    )


@RUNS
@given(token=tokens)
def test_generated_tokens_never_cause_a_server_error(db, token):
    client = Client()
    for kind in ["confirm", "unsubscribe", "preferences"]:
        url = f"/newsletter/{kind}/{token}/"
        for response in (client.get(url), client.post(url, {"List-Unsubscribe": "One-Click"})):
            assert_no_server_error(response)
            assert response.status_code in (200, 400, 404)
    assert_no_server_error(client.post(f"/newsletter/preferences/{token}/data/"))
    assert_no_server_error(client.post(f"/newsletter/preferences/{token}/erase/"))


@settings(max_examples=300, deadline=None)
@given(
    email=st.one_of(st.emails().map(str), st.from_regex(r"[A-Za-z0-9._+-]{1,70}@[A-Za-z0-9.-]{1,70}", fullmatch=True))
)
def test_the_fast_email_check_agrees_with_email_validator(email):
    """Addresses accepted without email-validator must be ones it accepts, normalised alike."""
    plain = _plain_email(email)
    try:
        result = validate_email(email, check_deliverability=False)
        expected = f"{result.local_part}@{result.ascii_domain.lower()}"  # domains are stored in ASCII
    except EmailNotValidError:
        assert plain is None
        with pytest.raises(InvalidEmail):
            normalise_email(email)
    else:
        assert plain in (None, expected)
        assert normalise_email(email) == expected
