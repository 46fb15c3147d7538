"""Reading the links out of the emails a test received."""

import re
from email.message import EmailMessage

from django.conf import settings


def links_in(message: EmailMessage) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(r"https?://\S+", body.get_content())


def link_to(message: EmailMessage, fragment: str) -> str:
    """The path of the first link in ``message`` containing ``fragment`` (e.g. "/confirm/")."""
    for link in links_in(message):
        if fragment in link:
            return link.removeprefix(settings.SITE_URL)
    raise AssertionError(f"no link with {fragment!r} in the message")
