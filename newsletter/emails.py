"""Emails of the newsletter app: one function per email, each rendering a
subject/text/html template trio under newsletter/emails/.

Campaign emails are rendered once per campaign with markers in place of the
per-reader links; each reader's copy is made by substitution (``CampaignEmail``).
"""

from __future__ import annotations

import binascii
import email.utils
import json
import re
from dataclasses import dataclass
from email.header import Header
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from newsletter.models import Subscriber
from newsletter.tokens import make_token

if TYPE_CHECKING:
    from articles.models import Article
    from newsletter.models import Campaign

UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"
PREFERENCES_MARK = "@@PREFERENCES_URL@@"
_LEADING_DOT = re.compile(rb"(?m)^\.")
_BOUNDARY = "=_euro-prospects-campaign"


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str = ""
    campaign_id: int = 0
    attempts: int = 0  # attempts made before this one
    content_id: int | None = None  # a digest's: which pieces this reader gets


def article_email_context(article: Article) -> dict[str, Any]:
    from articles.models import SiteSettings

    site = SiteSettings.load()
    authors = [link.author for link in article.article_authors.select_related("author")]
    topics = [link.topic for link in article.article_topics.select_related("topic")]
    article_url = f"{settings.SITE_URL}{article.get_absolute_url()}"
    excerpt_only = settings.NEWSLETTER_EMAIL_EXCERPT
    body: str = article.body
    if excerpt_only:
        body = Truncator(strip_tags(body)).words(settings.NEWSLETTER_EMAIL_EXCERPT_WORDS)
    published = timezone.localtime(article.published_at) if article.published_at else None
    return {
        "site_name": site.site_name,
        "article": article,
        "article_url": article_url,
        "topics": topics,
        "byline": authors[0] if authors else None,
        "other_authors": authors[1:],
        "editor": article.editor,
        "published": published,
        "hero_url": f"{settings.SITE_URL}{article.hero_image.url}" if article.hero_image else "",
        "excerpt_only": excerpt_only,
        "body": body if excerpt_only else mark_safe(body),  # noqa: S308 - the body is stored sanitised
        "disclaimer": article.disclaimer or site.default_disclaimer,
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
    }


@dataclass
class CampaignEmail:
    """A campaign's email, rendered once; ``as_bytes``/``as_message`` personalise it."""

    campaign_id: int
    subject: str
    from_email: str
    sender_address: str
    list_id: str
    html: str
    text: str

    @property
    def domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"

    def message_id(self, recipient: Recipient) -> str:
        return f"<campaign-{self.campaign_id}.delivery-{recipient.delivery_id}@{self.domain}>"

    def links(self, recipient: Recipient) -> tuple[str, str, str]:
        """The reader's unsubscribe URL, preferences URL and unsubscribe mailto."""
        unsubscribe = make_token(recipient.subscriber_id, "unsubscribe")
        preferences = make_token(recipient.subscriber_id, "preferences")
        mailto = f"mailto:{settings.NEWSLETTER_UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + unsubscribe)}"
        return (
            f"{settings.SITE_URL}/newsletter/unsubscribe/{unsubscribe}/",
            f"{settings.SITE_URL}/newsletter/preferences/{preferences}/",
            mailto,
        )

    def headers(self, recipient: Recipient) -> dict[str, str]:
        unsubscribe_url, _, mailto = self.links(recipient)
        return {
            "Message-ID": self.message_id(recipient),
            "List-Id": self.list_id,
            "List-Unsubscribe": f"<{unsubscribe_url}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    def bodies(self, recipient: Recipient) -> tuple[str, str]:
        unsubscribe_url, preferences_url, _ = self.links(recipient)
        return (
            self.text.replace(UNSUBSCRIBE_MARK, unsubscribe_url).replace(PREFERENCES_MARK, preferences_url),
            self.html.replace(UNSUBSCRIBE_MARK, unsubscribe_url).replace(PREFERENCES_MARK, preferences_url),
        )

    def as_message(self, recipient: Recipient, connection: Any = None) -> EmailMultiAlternatives:
        """A Django email for any backend (anymail providers, console, locmem)."""
        text, html = self.bodies(recipient)
        to = email.utils.formataddr((_one_line(recipient.name), recipient.email))
        message = EmailMultiAlternatives(
            self.subject, text, self.from_email, [to], headers=self.headers(recipient), connection=connection
        )
        message.attach_alternative(html, "text/html")
        return message

    def as_batch_message(
        self, recipients: list[Recipient], merge_field: str, connection: Any = None
    ) -> EmailMultiAlternatives:
        """One email for an ESP's batch API: each reader gets a copy of their own.

        The links are the ESP's merge fields (``merge_field`` with the field name in
        place of ``{}``), filled from ``merge_data``; ``List-Unsubscribe`` comes from
        ``merge_headers``. The ESP gives each copy its own Message-ID.
        """
        unsubscribe_field = merge_field.replace("{}", "unsubscribe_url")
        preferences_field = merge_field.replace("{}", "preferences_url")
        text, html = (
            body.replace(UNSUBSCRIBE_MARK, unsubscribe_field).replace(PREFERENCES_MARK, preferences_field)
            for body in (self.text, self.html)
        )
        to = [email.utils.formataddr((_one_line(r.name), r.email)) for r in recipients]
        shared = {"List-Id": self.list_id, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        message = EmailMultiAlternatives(self.subject, text, self.from_email, to, headers=shared, connection=connection)
        message.attach_alternative(html, "text/html")
        merge_data, merge_headers = {}, {}
        for recipient in recipients:
            unsubscribe_url, preferences_url, mailto = self.links(recipient)
            merge_data[recipient.email] = {"unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url}
            merge_headers[recipient.email] = {"List-Unsubscribe": f"<{unsubscribe_url}>, <{mailto}>"}
        message.merge_data = merge_data  # type: ignore[attr-defined]  # anymail's batch-send attributes
        message.merge_headers = merge_headers  # type: ignore[attr-defined]
        return message

    @cached_property
    def _shared_head(self) -> bytes:
        if self.subject.isascii() and len(self.subject) < 900:
            subject = self.subject
        else:
            subject = Header(self.subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
        lines = [
            f"From: {email.utils.formataddr(_split_address(self.from_email), charset='utf-8')}",
            f"Subject: {subject}",
            f"Date: {email.utils.format_datetime(timezone.now())}",
            f"List-Id: {self.list_id}",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{_BOUNDARY}"',
        ]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    @cached_property
    def _pieces(self) -> list[bytes | int]:
        """The whole message for SMTP DATA, quoted-printable and dot-stuffed once per
        campaign, as bytes with slots (``_HEAD`` and the link slots) for what differs per reader."""
        part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        return [
            _LEADING_DOT.sub(b"..", self._shared_head),
            _HEAD,
            f"\r\n--{_BOUNDARY}\r\n{part.format('plain')}".encode(),
            *_encoded_template(self.text),
            f"--{_BOUNDARY}\r\n{part.format('html')}".encode(),
            *_encoded_template(self.html),
            f"--{_BOUNDARY}--\r\n".encode(),
        ]

    def as_bytes(self, recipient: Recipient) -> bytes:
        """The whole message for SMTP DATA, dot-stuffed, CRLF line ends.

        The body is encoded once per campaign; a reader's copy only fills the slots
        with their own head and encoded links and joins the pieces once, because
        this runs for every message of every campaign.
        """
        unsubscribe_url, preferences_url, mailto = self.links(recipient)
        to = email.utils.formataddr((_one_line(recipient.name), recipient.email), charset="utf-8")
        head = (
            f"To: {to}\r\nMessage-ID: {self.message_id(recipient)}\r\n"
            f"List-Unsubscribe: <{unsubscribe_url}>, <{mailto}>\r\n"
        ).encode()
        unsubscribe, preferences = _quoted_printable(unsubscribe_url), _quoted_printable(preferences_url)
        slots = (
            head,
            unsubscribe + _SOFT_BREAK,
            preferences + _SOFT_BREAK,
            unsubscribe + b"\r\n",
            preferences + b"\r\n",
        )
        return b"".join([piece if type(piece) is bytes else slots[piece] for piece in self._pieces])  # type: ignore[index]


_MARKERS = re.compile(f"({re.escape(UNSUBSCRIBE_MARK)}|{re.escape(PREFERENCES_MARK)})")
_SOFT_BREAK = b"=\r\n"
# Slots in CampaignEmail._pieces: the reader's head, then each link in the middle of a
# line (it ends with a soft break) or at the end of a part (it ends the line).
_HEAD = 0
_LINK_SLOTS = {UNSUBSCRIBE_MARK: 1, PREFERENCES_MARK: 2}
_LINK_ENDS_PART = 2


def _quoted_printable(text: str) -> bytes:
    """Quoted-printable with CRLF line ends and SMTP dot-stuffing (lines of at most 76)."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return _LEADING_DOT.sub(b"..", encoded)


def _encoded_template(text: str) -> list[bytes | int]:
    """A part's encoded pieces, each ending a line or a soft break that joins it to what
    follows, and link slots; the part ends on a hard line break (the CRLF before the
    next boundary belongs to the boundary)."""
    pieces: list[bytes | int] = []
    for index, chunk in enumerate(_MARKERS.split(text)):
        if index % 2:
            pieces.append(_LINK_SLOTS[chunk])
        elif chunk:
            encoded = _quoted_printable(chunk)
            pieces.append(encoded if encoded.endswith(b"\r\n") else encoded + _SOFT_BREAK)
    last = pieces[-1] if pieces else b"\r\n"
    if isinstance(last, int):
        pieces[-1] = last + _LINK_ENDS_PART
    elif last.endswith(_SOFT_BREAK):
        pieces[-1] = last[: -len(_SOFT_BREAK)] + b"\r\n"
    elif not pieces:
        pieces.append(last)
    return pieces


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _split_address(value: str) -> tuple[str, str]:
    name, address = email.utils.parseaddr(value)
    return name, address


def render_campaign_email(campaign: Campaign) -> CampaignEmail:
    """Render the campaign's article once, with markers for the per-reader links."""
    from articles.models import SiteSettings

    article = campaign.article
    if article is None:
        raise ValueError("a digest is rendered by newsletter.digests")
    site = SiteSettings.load()
    context = article_email_context(article)
    return campaign_email_from(
        campaign_id=campaign.pk,
        subject=campaign.subject or article.title,
        html=render_to_string("newsletter/campaign_email.html", context),
        text=render_to_string("newsletter/campaign_email.txt", context),
        site=site,
    )


def campaign_email_from(*, campaign_id: int, subject: str, html: str, text: str, site: Any) -> CampaignEmail:
    """A campaign email (an article's or a digest's) from its rendered templates: CSS
    inlined, the site's sender and list id."""
    sender_address = site.newsletter_sender_email
    domain = sender_address.rpartition("@")[2] or "localhost"
    return CampaignEmail(
        campaign_id=campaign_id,
        subject=subject,
        from_email=email.utils.formataddr((site.newsletter_sender_name, sender_address)),
        sender_address=sender_address,
        list_id=f"{site.site_name} <newsletter.{domain}>",
        html=css_inline.inline(html).replace("\r\n", "\n"),
        text=text.replace("\r\n", "\n"),
    )


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


def send_data_export(subscriber: Subscriber, data: dict[str, Any]) -> None:
    message = _message("data_export", subscriber, reader_links(subscriber))
    message.attach("newsletter-data.json", json.dumps(data, indent=2, ensure_ascii=False), "application/json")
    message.send()
