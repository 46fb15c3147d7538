"""Signed tokens in readers' links: one salt per purpose, so a token made for
one link never works for another.

The confirmation link expires (``NEWSLETTER_CONFIRM_MAX_AGE``); unsubscribe and
preference links do not, because old newsletters stay in inboxes and the
unsubscribe link in each of them must keep working.
"""

from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes

PURPOSES = ("confirm", "unsubscribe", "preferences")


class BadToken(Exception):
    """The token was tampered with, made for another purpose, or has expired."""


def make_token(subscriber_id: int, purpose: str) -> str:
    """The same token as ``signing.dumps(subscriber_id, salt=...)``, made faster: every
    campaign email carries two, so the signer and its HMAC key are made once
    (``test_tokens_are_the_ones_django_signing_makes`` holds the two together)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    signer = _signer(f"newsletter.{purpose}", settings.SECRET_KEY)
    # What sign_object() makes of an int with the JSON serializer, without its generic steps.
    value = f"{signing.b64_encode(str(int(subscriber_id)).encode()).decode()}:{signer.timestamp()}"
    return f"{value}:{signer.signature(value)}"


class _ReaderLinkSigner(signing.TimestampSigner):
    """Django's TimestampSigner with the HMAC key derived once instead of once per token."""

    def __init__(self, salt: str) -> None:
        super().__init__(salt=salt)
        self._mac = salted_hmac(salt + "signer", b"", self.key, algorithm=self.algorithm)

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        if key is not None:
            return super().signature(value, key)
        mac = self._mac.copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


@lru_cache(maxsize=8)
def _signer(salt: str, secret_key: str) -> _ReaderLinkSigner:
    return _ReaderLinkSigner(salt)


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
