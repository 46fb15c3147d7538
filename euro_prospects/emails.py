"""The one way to build a system email (a confirmation, a notice to editors…): a
subject/text/html template trio rendered with one context, from DEFAULT_FROM_EMAIL;
and the one way a task sends it again when the mail server or service says "later".

Each app keeps an ``emails.py`` with a function per email that picks the template
and the context; campaign emails are built by ``newsletter.sending.message``.
"""

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from celery import Task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from euro_prospects.celery import longest_countdown


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


def transient_status(status_code: object) -> bool:
    """Whether an email service's HTTP answer means "try again later": no answer at all (a
    network error), 408, 429 or a 5xx. Any other 4xx is about the request, the sender or
    the account, and is the same the next time."""
    return not isinstance(status_code, int) or not 400 <= status_code < 500 or status_code in (408, 429)


def worth_retrying(exc: BaseException) -> bool:
    """Whether a system email that failed with ``exc`` may go through when sent again later:
    the server or the network was down, the server answered 4xx, or the email service was
    busy. Not a 5xx, a refused address, nor a fault in building the message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _reply in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):  # the sender, DATA, AUTH, the greeting
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # no STARTTLS, say: the same next time
        return False
    if isinstance(exc, OSError):  # refused, reset or timed-out connections; smtplib's disconnects
        return True
    if isinstance(exc, AnymailRecipientsRefused):
        return False
    return isinstance(exc, AnymailAPIError) and transient_status(exc.status_code)


def failure_reason(exc: BaseException) -> str:
    """What a mail server or service said, or why it could not be reached, for a person to read."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {reply.decode('utf-8', 'replace')}" for code, reply in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {reply}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def retry_countdown(retries: int) -> float:
    """Seconds before the next try of a system email tried ``retries`` times already."""
    return float(min(settings.EMAIL_RETRY_DELAY * 2**retries, longest_countdown()))


@contextmanager
def retried_when_transient(task: Task[Any, Any], **retry_options: Any) -> Iterator[None]:
    """Send system email inside this block: when it fails for a reason that may pass
    (``worth_retrying``), ``task`` runs again later, up to EMAIL_RETRIES times, waiting
    longer each time; ``retry_options`` (``args=``, ``kwargs=``) say what is left to send.
    Any other failure, or the last one, is raised and logged as the task's error."""
    try:
        yield
    except Exception as exc:
        if not worth_retrying(exc):
            raise
        countdown = retry_countdown(task.request.retries)
        raise task.retry(exc=exc, countdown=countdown, max_retries=settings.EMAIL_RETRIES, **retry_options) from exc
