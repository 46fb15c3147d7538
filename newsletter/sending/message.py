"""The campaign email: rendered once per campaign, filled in per reader.

``render_campaign_email`` renders an article's templates once, with markers where each
reader's own links go; ``campaign_email`` keeps that rendering for the worker's next
batches. A ``CampaignEmail`` then makes each reader's copy by substitution: the bytes
for SMTP DATA (``as_bytes``, the body encoded once), a Django message for any other
backend (``as_message``) or one message for an ESP's batch API (``as_batch_message``).
Whatever is stored, no field can add a header line or an SMTP command (``header_text``,
``sendable_address``).
"""

from __future__ import annotations

import binascii
import email.utils
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from functools import cached_property
from typing import TYPE_CHECKING, Any

import css_inline
import idna
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.signals import setting_changed
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from newsletter.engagement.links import READER_MARK, reader_part, rewrite_links
from newsletter.links import ONE_CLICK, ReaderLinks, reader_link_maker

if TYPE_CHECKING:
    from articles.models import Article
    from newsletter.models import Campaign

UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"
PREFERENCES_MARK = "@@PREFERENCES_URL@@"
_LEADING_DOT = re.compile(rb"(?m)^\.")
_BOUNDARY = "=_euro-prospects-campaign"


# Characters that must never reach a header or an SMTP command from stored text: C0 and
# C1 controls (CR and LF among them), DEL and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# An RFC 5321 mailbox (RFC 6531's UTF-8 local part allowed): a dot-atom or quoted local
# part, and a domain name or address literal. Anything else would be refused by the
# server, split by a header parser (``a,b@x``) or read as more than one command.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]+"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\x80-\U0010ffff]|\\[\x20-\x7e])*"'
_MAILBOX = re.compile(
    rf"(?:{_ATOM}(?:\.{_ATOM})*|{_QUOTED})@(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[\x21-\x5a\x5e-\x7e]+\])"
)


class UnsendableAddress(ValueError):
    """The address cannot be written in an envelope or a header (the reason says why)."""


def header_text(value: str) -> str:
    """Stored text made fit for one header line: breaks and control characters become
    single spaces, so no stored value can start a header line of its own."""
    if value.isprintable():  # the common case, checked in C
        return " ".join(value.split())
    return " ".join(_CONTROL.sub(" ", value).split())


def sendable_address(address: str, *, smtputf8: bool = False) -> str:
    """The address as it goes into ``RCPT TO`` and ``To``: the domain in its ASCII (IDNA)
    form; a non-ASCII local part only where the server takes SMTPUTF8."""
    if address.isascii():  # every ordinary address: one match, no other work
        if _MAILBOX.fullmatch(address):
            return address
        raise UnsendableAddress("the address is not a valid mailbox")
    if _CONTROL.search(address):
        raise UnsendableAddress("the address contains control characters")
    local, at, domain = address.rpartition("@")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise UnsendableAddress(f"the domain cannot be written in ASCII ({exc})") from None
    if not at or not _MAILBOX.fullmatch(sendable := f"{local}@{domain}"):
        raise UnsendableAddress("the address is not a valid mailbox")
    if not local.isascii() and not smtputf8:
        raise UnsendableAddress("the local part is not ASCII and the mail server does not offer SMTPUTF8")
    return sendable


def mailbox(name: str, address: str) -> str:
    """A ``To`` value: ``address`` from ``sendable_address``, ``name`` any stored text."""
    name = header_text(name)
    if address.isascii():
        return email.utils.formataddr((name, address), charset="utf-8")
    # SMTPUTF8 (RFC 6532): the address goes as UTF-8; the name is still encoded.
    return f"{email.utils.formataddr((name, 'a@b'), charset='utf-8')[:-5]}<{address}>" if name else address


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

    def __post_init__(self) -> None:
        # Whatever is stored (a title, a sender name or address written straight into the
        # database), nothing below can add a header line or an SMTP command.
        self.subject = header_text(self.subject)
        self.list_id = header_text(self.list_id)
        name, _ = email.utils.parseaddr(header_text(self.from_email))
        try:
            self.sender_address = sendable_address(header_text(self.sender_address))
        except UnsendableAddress:
            self.sender_address = _CONTROL.sub("", self.sender_address).strip()
        self.from_email = email.utils.formataddr((name, self.sender_address), charset="utf-8")

    @property
    def domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"

    def message_id(self, recipient: Recipient) -> str:
        return f"<campaign-{self.campaign_id}.delivery-{recipient.delivery_id}@{self.domain}>"

    def headers(self, recipient: Recipient) -> dict[str, str]:
        return {
            "Message-ID": self.message_id(recipient),
            "List-Id": self.list_id,
            **self.reader_links(recipient.subscriber_id).headers(),
        }

    def bodies(self, recipient: Recipient) -> tuple[str, str]:
        links = self.reader_links(recipient.subscriber_id)
        reader = reader_part(self.campaign_id, recipient.subscriber_id)
        return tuple(  # type: ignore[return-value]
            body.replace(UNSUBSCRIBE_MARK, links.unsubscribe_url)
            .replace(PREFERENCES_MARK, links.preferences_url)
            .replace(READER_MARK, reader)
            for body in (self.text, self.html)
        )

    def as_message(self, recipient: Recipient, connection: Any = None) -> EmailMultiAlternatives:
        """A Django email for any backend (anymail providers, console, locmem)."""
        text, html = self.bodies(recipient)
        to = mailbox(recipient.name, sendable_address(recipient.email))
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
        reader_field = merge_field.replace("{}", "reader")
        text, html = (
            body.replace(UNSUBSCRIBE_MARK, unsubscribe_field)
            .replace(PREFERENCES_MARK, preferences_field)
            .replace(READER_MARK, reader_field)
            for body in (self.text, self.html)
        )
        addresses = [sendable_address(r.email) for r in recipients]
        to = [mailbox(r.name, address) for r, address in zip(recipients, addresses, strict=True)]
        shared = {"List-Id": self.list_id, "List-Unsubscribe-Post": ONE_CLICK}
        message = EmailMultiAlternatives(self.subject, text, self.from_email, to, headers=shared, connection=connection)
        message.attach_alternative(html, "text/html")
        merge_data, merge_headers = {}, {}
        for recipient, address in zip(recipients, addresses, strict=True):
            links = self.reader_links(recipient.subscriber_id)
            merge_data[address] = {
                "unsubscribe_url": links.unsubscribe_url,
                "preferences_url": links.preferences_url,
                "reader": reader_part(self.campaign_id, recipient.subscriber_id),
            }
            merge_headers[address] = {"List-Unsubscribe": links.list_unsubscribe}
        message.merge_data = merge_data  # type: ignore[attr-defined]  # anymail's batch-send attributes
        message.merge_headers = merge_headers  # type: ignore[attr-defined]
        return message

    @cached_property
    def _shared_head(self) -> bytes:
        # Plain ASCII goes as it is; anything else (and text that a reader would take for
        # an encoded word) goes as RFC 2047 encoded words, folded.
        if self.subject.isascii() and len(self.subject) < 900 and "=?" not in self.subject:
            subject = self.subject
        else:
            subject = Header(self.subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
        lines = [
            f"From: {self.from_email}",
            f"Subject: {subject}",
            f"Date: {email.utils.format_datetime(timezone.now())}",
            f"List-Id: {self.list_id}",
            f"List-Unsubscribe-Post: {ONE_CLICK}",
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

    @cached_property
    def _link_maker(self) -> Any:
        return reader_link_maker()

    def reader_links(self, subscriber_id: int) -> ReaderLinks:
        """The reader's own links (``newsletter.links``), their URLs' fixed parts looked up once per email."""
        links: ReaderLinks = self._link_maker(subscriber_id)
        return links

    @cached_property
    def _tracked(self) -> bool:
        return READER_MARK in self.html or READER_MARK in self.text

    def as_bytes(self, recipient: Recipient, *, smtputf8: bool = False) -> bytes:
        """The whole message for SMTP DATA, dot-stuffed, CRLF line ends.

        The body is encoded once per campaign; a reader's copy only fills the slots
        with their own head and encoded links and joins the pieces once, because
        this runs for every message of every campaign. ``smtputf8``: the server takes
        a UTF-8 address (else a non-ASCII local part raises ``UnsendableAddress``).
        """
        to = mailbox(recipient.name, sendable_address(recipient.email, smtputf8=smtputf8))
        links = self.reader_links(recipient.subscriber_id)
        head = (
            f"To: {to}\r\nMessage-ID: {self.message_id(recipient)}\r\nList-Unsubscribe: {links.list_unsubscribe}\r\n"
        ).encode()
        unsubscribe, preferences = _quoted_printable(links.unsubscribe_url), _quoted_printable(links.preferences_url)
        # Every tracked link of the reader's copy ends in the same reader half: one HMAC per reader.
        reader = reader_part(self.campaign_id, recipient.subscriber_id).encode() if self._tracked else b""
        slots = (
            head,
            unsubscribe + _SOFT_BREAK,
            preferences + _SOFT_BREAK,
            reader + _SOFT_BREAK,
            unsubscribe + b"\r\n",
            preferences + b"\r\n",
            reader + b"\r\n",
        )
        return b"".join([piece if type(piece) is bytes else slots[piece] for piece in self._pieces])  # type: ignore[index]


_MARKERS = re.compile(f"({re.escape(UNSUBSCRIBE_MARK)}|{re.escape(PREFERENCES_MARK)}|{re.escape(READER_MARK)})")
_SOFT_BREAK = b"=\r\n"
# Slots in CampaignEmail._pieces: the reader's head, then each link in the middle of a
# line (it ends with a soft break) or at the end of a part (it ends the line).
_HEAD = 0
_LINK_SLOTS = {UNSUBSCRIBE_MARK: 1, PREFERENCES_MARK: 2, READER_MARK: 3}
_LINK_ENDS_PART = 3


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
    html, text = rewrite_links(
        campaign_id=campaign_id, html=css_inline.inline(html).replace("\r\n", "\n"), text=text.replace("\r\n", "\n")
    )
    return CampaignEmail(
        campaign_id=campaign_id,
        subject=subject,
        from_email=email.utils.formataddr((header_text(site.newsletter_sender_name), header_text(sender_address))),
        sender_address=sender_address,
        list_id=f"{site.site_name} <newsletter.{domain}>",
        html=html,
        text=text,
    )


_rendered: dict[tuple[int, datetime, str, datetime], CampaignEmail] = {}


def campaign_email(campaign: Campaign, content_id: int | None = None) -> CampaignEmail:
    """The campaign's rendered email, rendered once per worker process (a digest's: once per content)."""
    if campaign.digest:
        from newsletter.digests import digest_email

        if content_id is None:
            raise ValueError("a digest's deliveries each have a content")
        return digest_email(campaign, content_id)
    if campaign.correction_id is not None:
        from newsletter.corrections import correction_email

        return correction_email(campaign)
    if campaign.article is None:
        raise ValueError("an article campaign without its article")
    key = (campaign.pk, campaign.created_at, campaign.subject, campaign.article.updated_at)
    if key not in _rendered:
        _rendered.clear()
        _rendered[key] = render_campaign_email(campaign)
    return _rendered[key]


def _forget_rendered(**kwargs: Any) -> None:
    """A changed setting (the site's address, the excerpt length…) changes the email."""
    _rendered.clear()


setting_changed.connect(_forget_rendered)
