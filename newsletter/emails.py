"""Emails of the newsletter app: one function per email, each rendering a
subject/text/html template trio under newsletter/emails/.

Campaign emails (an article's, a digest's) are built by ``newsletter.sending.message``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from newsletter.models import Subscriber
from newsletter.tokens import make_token


def absolute_url(name: str, subscriber: Subscriber, purpose: str) -> str:
    path = reverse(name, args=[make_token(subscriber.pk, purpose)])
    return f"{settings.SITE_URL}{path}"


def reader_links(subscriber: Subscriber) -> dict[str, str]:
    return {
        "unsubscribe_url": absolute_url("newsletter:unsubscribe", subscriber, "unsubscribe"),
        "preferences_url": absolute_url("newsletter:preferences", subscriber, "preferences"),
    }


def _message(template: str, subscriber: Subscriber, context: dict[str, Any]) -> EmailMultiAlternatives:
    context = {"subscriber": subscriber, "site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"newsletter/emails/{template}_subject.txt", context).split())
    text = render_to_string(f"newsletter/emails/{template}.txt", context)
    html = render_to_string(f"newsletter/emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [subscriber.email])
    message.attach_alternative(html, "text/html")
    return message


def send_confirmation(subscriber: Subscriber) -> None:
    confirm_url = absolute_url("newsletter:confirm", subscriber, "confirm")
    hours = settings.NEWSLETTER_CONFIRM_MAX_AGE // 3600
    _message("confirm", subscriber, {"confirm_url": confirm_url, "valid_hours": hours}).send()


def send_welcome(subscriber: Subscriber) -> None:
    links = reader_links(subscriber)
    message = _message("welcome", subscriber, links)
    message.extra_headers["List-Unsubscribe"] = (
        f"<{links['unsubscribe_url']}>, <mailto:{settings.NEWSLETTER_UNSUBSCRIBE_MAILTO}>"
    )
    message.extra_headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.send()


def send_manage_link(subscriber: Subscriber) -> None:
    _message("manage", subscriber, reader_links(subscriber)).send()


def send_subscriber_data(subscriber: Subscriber, data: dict[str, Any]) -> None:
    message = _message("data_export", subscriber, reader_links(subscriber))
    message.attach("newsletter-data.json", json.dumps(data, indent=2, ensure_ascii=False), "application/json")
    message.send()
