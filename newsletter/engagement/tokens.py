"""The signed token of a tracked link: ``<link>.<signature>.<reader>.<signature>``.

The first half names a row of the campaign's link table and is signed once per
campaign render; the second half names the reader and is signed with the campaign's
id, once per reader (not per link), and is filled into every link of their copy by
substitution, as the unsubscribe link is. Changing any character of either half, or
putting one reader's half on another campaign's link, makes the token invalid.
"""

from __future__ import annotations

import base64
import hmac
import re
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

SIGNATURE_LENGTH = 16  # characters of URL-safe base64: 96 bits
_ID = re.compile(r"[0-9a-z]{1,12}")
_LINK_SALT = "newsletter.engagement.link"
_READER_SALT = "newsletter.engagement.reader"
_PSEUDONYM_SALT = "newsletter.engagement.pseudonym"


class BadClickToken(ValueError):
    """The token was not made by us, or was altered."""


@lru_cache(maxsize=8)
def _base_mac(salt: str, secret_key: str) -> Any:
    return salted_hmac(salt, b"", secret_key)


def _sign(salt: str, value: str) -> str:
    mac = _base_mac(salt, settings.SECRET_KEY).copy()
    mac.update(value.encode())
    return base64.urlsafe_b64encode(mac.digest())[:SIGNATURE_LENGTH].decode()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def link_part(link_id: int) -> str:
    value = _base36(link_id)
    return f"{value}.{_sign(_LINK_SALT, value)}"


def reader_part(campaign_id: int, subscriber_id: int) -> str:
    value = _base36(subscriber_id)
    return f"{value}.{_sign(_READER_SALT, f'{campaign_id}:{value}')}"


def read_link(token: str) -> tuple[int, str, str]:
    """The link id in ``token`` and its reader half (checked by ``read_reader``), or BadClickToken."""
    parts = token.split(".")
    if len(parts) != 4 or not all(_ID.fullmatch(part) for part in parts[::2]):
        raise BadClickToken("This link is not valid.")
    link, link_signature, reader, reader_signature = parts
    if not hmac.compare_digest(link_signature, _sign(_LINK_SALT, link)):
        raise BadClickToken("This link is not valid.")
    return int(link, 36), reader, reader_signature


def read_reader(campaign_id: int, reader: str, signature: str) -> int:
    """The subscriber id of a token's reader half (0 for a preview or a test email), or BadClickToken."""
    if not hmac.compare_digest(signature, _sign(_READER_SALT, f"{campaign_id}:{reader}")):
        raise BadClickToken("This link is not valid.")
    return int(reader, 36)


def pseudonym(campaign_id: int, subscriber_id: int) -> str:
    """How a raw event names its reader: stable within a campaign, unrelated across campaigns."""
    return _sign(_PSEUDONYM_SALT, f"{campaign_id}:{subscriber_id}")
