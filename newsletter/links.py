"""A reader's own links, and the List-Unsubscribe header made of them: one builder for
every email (a campaign's, a digest's, the welcome email) and every transport.

Each link carries a signed token (``newsletter.tokens``). The unsubscribe URL is the
one-click target of RFC 8058: a POST with ``List-Unsubscribe=One-Click`` unsubscribes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from newsletter.tokens import make_token

# The List-Unsubscribe-Post header's value (RFC 8058).
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class ReaderLinks:
    unsubscribe_url: str
    preferences_url: str
    unsubscribe_mailto: str

    @property
    def list_unsubscribe(self) -> str:
        """The List-Unsubscribe header's value: the one-click URL, then the mailto (RFC 2369)."""
        return f"<{self.unsubscribe_url}>, <{self.unsubscribe_mailto}>"

    def headers(self) -> dict[str, str]:
        return {"List-Unsubscribe": self.list_unsubscribe, "List-Unsubscribe-Post": ONE_CLICK}


def reader_links(subscriber_id: int) -> ReaderLinks:
    return reader_link_maker()(subscriber_id)


def reader_link_maker() -> Callable[[int], ReaderLinks]:
    """``reader_links`` with the URLs' fixed parts looked up once: a campaign email makes
    one per render and calls it for every reader it sends to."""
    unsubscribe_before, unsubscribe_after = _around_the_token(
        "newsletter:unsubscribe", get_urlconf(), get_script_prefix()
    )
    preferences_before, preferences_after = _around_the_token(
        "newsletter:preferences", get_urlconf(), get_script_prefix()
    )
    site, mailbox = settings.SITE_URL, settings.NEWSLETTER_UNSUBSCRIBE_MAILTO

    def links(subscriber_id: int) -> ReaderLinks:
        unsubscribe = make_token(subscriber_id, "unsubscribe")
        preferences = make_token(subscriber_id, "preferences")
        return ReaderLinks(
            unsubscribe_url=f"{site}{unsubscribe_before}{unsubscribe}{unsubscribe_after}",
            preferences_url=f"{site}{preferences_before}{preferences}{preferences_after}",
            unsubscribe_mailto=f"mailto:{mailbox}?subject={quote('unsubscribe ' + unsubscribe)}",
        )

    return links


def reader_url(name: str, token: str) -> str:
    """The absolute URL of a reader's page (``name``, e.g. "newsletter:confirm") for ``token``."""
    before, after = _around_the_token(name, get_urlconf(), get_script_prefix())
    return f"{settings.SITE_URL}{before}{token}{after}"


@lru_cache(maxsize=32)
def _around_the_token(name: str, urlconf: str | None, script_prefix: str) -> tuple[str, str]:
    # Every campaign email carries two links: the URL is reversed once, not per reader.
    before, _, after = reverse(name, urlconf=urlconf, args=["TOKEN"]).partition("TOKEN")
    return before, after
