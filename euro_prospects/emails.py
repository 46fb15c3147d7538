"""The one way to build a system email (a confirmation, a notice to editors…): a
subject/text/html template trio rendered with one context, from DEFAULT_FROM_EMAIL.

Each app keeps an ``emails.py`` with a function per email that picks the template
and the context; campaign emails are built by ``newsletter.sending.message``.
"""

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def build_email(
    template: str, context: dict[str, Any], to: list[str], *, reply_to: list[str] | None = None
) -> EmailMultiAlternatives:
    """``template`` names the trio without its ending: ``{template}_subject.txt``, ``.txt`` and ``.html``."""
    subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
    text = render_to_string(f"{template}.txt", context)
    html = render_to_string(f"{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to, reply_to=reply_to)
    message.attach_alternative(html, "text/html")
    return message
