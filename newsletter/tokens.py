"""Signed tokens in readers' links: one salt per purpose, so a token made for
one link never works for another.

The confirmation link expires (``NEWSLETTER_CONFIRM_MAX_AGE``); unsubscribe and
preference links do not, because old newsletters stay in inboxes and the
unsubscribe link in each of them must keep working.
"""

from django.conf import settings
from django.core import signing

PURPOSES = ("confirm", "unsubscribe", "preferences")


class BadToken(Exception):
    """The token was tampered with, made for another purpose, or has expired."""


def make_token(subscriber_id: int, purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return signing.dumps(subscriber_id, salt=f"newsletter.{purpose}")


def read_token(token: str, purpose: str) -> int:
    """The subscriber id in ``token``, or BadToken."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    max_age = settings.NEWSLETTER_CONFIRM_MAX_AGE if purpose == "confirm" else None
    try:
        value = signing.loads(token, salt=f"newsletter.{purpose}", max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadToken("This link has expired.") from exc
    except signing.BadSignature as exc:
        raise BadToken("This link is not valid.") from exc
    if not isinstance(value, int):
        raise BadToken("This link is not valid.")
    return value
