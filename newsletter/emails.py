"""Emails of the newsletter app: one function per email, each rendering a
subject/text/html template trio under newsletter/emails/.

Campaign emails (an article's, a digest's) are built by ``newsletter.sending.message``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from euro_prospects.emails import build_email
from newsletter.links import ReaderLinks, reader_links, reader_url
from newsletter.models import Subscriber
from newsletter.tokens import make_token


def _message(template: str, subscriber: Subscriber, context: dict[str, Any]) -> EmailMultiAlternatives:
    context = {"subscriber": subscriber, "site_url": settings.SITE_URL, **context}
    return build_email(f"newsletter/emails/{template}", context, [subscriber.email])


def _links_context(links: ReaderLinks) -> dict[str, str]:
    return {"unsubscribe_url": links.unsubscribe_url, "preferences_url": links.preferences_url}


def send_confirmation(subscriber: Subscriber) -> None:
    confirm_url = reader_url("newsletter:confirm", make_token(subscriber.pk, "confirm"))
    hours = settings.NEWSLETTER_CONFIRM_MAX_AGE // 3600
    _message("confirm", subscriber, {"confirm_url": confirm_url, "valid_hours": hours}).send()


def send_welcome(subscriber: Subscriber) -> None:
    links = reader_links(subscriber.pk)
    message = _message("welcome", subscriber, _links_context(links))
    message.extra_headers.update(links.headers())
    message.send()


def send_manage_link(subscriber: Subscriber) -> None:
    _message("manage", subscriber, _links_context(reader_links(subscriber.pk))).send()


def send_subscriber_data(subscriber: Subscriber, data: dict[str, Any]) -> None:
    message = _message("data_export", subscriber, _links_context(reader_links(subscriber.pk)))
    message.attach("newsletter-data.json", json.dumps(data, indent=2, ensure_ascii=False), "application/json")
    message.send()
