"""Tokens in readers' links: signed, one salt per purpose, confirmation links expire."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from newsletter.tokens import BadToken, make_token, read_token


@pytest.mark.parametrize(
    ("made_for", "used_for"),
    [
        ("unsubscribe", "confirm"),
        ("confirm", "unsubscribe"),
        ("preferences", "unsubscribe"),
        ("unsubscribe", "preferences"),
    ],
)
def test_it_refuses_a_token_made_for_another_purpose(made_for, used_for):
    token = make_token(42, made_for)
    assert read_token(token, made_for) == 42
    with pytest.raises(BadToken, match="not valid"):
        read_token(token, used_for)


def test_it_rejects_an_expired_confirm_token(settings):
    settings.NEWSLETTER_CONFIRM_MAX_AGE = 3600
    with time_machine.travel(timezone.now() - timedelta(hours=2), tick=False):
        token = make_token(7, "confirm")
    with pytest.raises(BadToken, match="expired"):
        read_token(token, "confirm")


def test_a_confirm_token_within_its_lifetime_works(settings):
    settings.NEWSLETTER_CONFIRM_MAX_AGE = 3600
    with time_machine.travel(timezone.now() - timedelta(minutes=30), tick=False):
        token = make_token(7, "confirm")
    assert read_token(token, "confirm") == 7


def test_old_unsubscribe_tokens_keep_working():
    with time_machine.travel(timezone.now() - timedelta(days=800), tick=False):
        token = make_token(9, "unsubscribe")
    assert read_token(token, "unsubscribe") == 9


def test_it_rejects_a_tampered_token():
    token = make_token(5, "unsubscribe")
    value = token.split(":", 1)[0]
    with pytest.raises(BadToken):
        read_token(token.replace(value, value[:-1] + ("A" if value[-1] != "A" else "B"), 1), "unsubscribe")
    with pytest.raises(BadToken):
        read_token(token[:-2], "unsubscribe")


@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe", "preferences"])
def test_tokens_are_the_ones_django_signing_makes(purpose):
    with time_machine.travel(timezone.now(), tick=False):
        assert make_token(7, purpose) == signing.dumps(7, salt=f"newsletter.{purpose}")


def test_a_new_secret_key_makes_new_tokens_and_refuses_the_old_ones(settings):
    with time_machine.travel(timezone.now(), tick=False):
        old = make_token(7, "unsubscribe")
        settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
        settings.SECRET_KEY_FALLBACKS = []
        new = make_token(7, "unsubscribe")
    assert new != old
    assert read_token(new, "unsubscribe") == 7
    with pytest.raises(BadToken):
        read_token(old, "unsubscribe")
