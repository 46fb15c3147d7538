"""How a batch hands messages to the world: a ``Transport`` and the errors it raises.

A transport sends one reader's message in two steps: ``begin`` sends all of it but the
part that makes the server accept it, ``finish`` sends that part and returns the
provider's message id once the message is accepted. Between the two the batch records
the previous message in the ledger, so a worker that dies leaves at most one message
accepted but unrecorded. What goes wrong is one of three errors: try this reader again
later (``TransientSendError``), not at all (``PermanentSendError``), or stop the whole
campaign for an editor (``CampaignPausingError``).

``smtp``: prebuilt bytes over one SMTP connection. ``backend``: any Django email backend
(console, locmem, an anymail provider one message at a time). ``esp``: an anymail
provider's batch API, many readers per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

if TYPE_CHECKING:
    from newsletter.sending.message import CampaignEmail, Recipient


class TransientSendError(Exception):
    """Try again later (4xx, dropped connection, provider throttling)."""

    def __init__(self, message: str, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class PermanentSendError(Exception):
    """Do not try again (5xx); ``suppress`` when the address itself is bad.

    ``streak`` names an error that says nothing about the mailbox (a 5xx without an
    enhanced code, say): the same one for ``NEWSLETTER_PAUSE_AFTER`` readers in a row
    pauses the campaign instead (see ``batch.Batch.extend_streak``).
    """

    def __init__(self, message: str, *, suppress: bool = True, streak: str = "") -> None:
        super().__init__(message)
        self.suppress = suppress
        self.streak = streak


class CampaignPausingError(Exception):
    """The server or provider refused the sender, the relay, a policy or the account:
    every reader would fail alike, so the campaign pauses and no reader is touched."""


class Transport(Protocol):
    def open(self) -> None:
        """Connect; raises ``TransientSendError`` or ``CampaignPausingError``."""

    def close(self) -> None:
        """Say goodbye, whatever state the connection is in."""

    def abort(self) -> None:
        """Drop the connection without finishing the message begun: nothing of it is accepted."""

    def begin(self, email: CampaignEmail, recipient: Recipient) -> None:
        """Send the reader's message up to the point where the server would accept it."""

    def finish(self, email: CampaignEmail, recipient: Recipient, following: Recipient | None = None) -> str:
        """Have the message begun accepted and return its message id; ``following`` is the
        next reader, whose envelope may travel with it."""


def open_transport() -> Transport:
    """The transport ``EMAIL_URL`` (``EMAIL_BACKEND``) names, connected."""
    from newsletter.sending.transports.backend import BackendTransport
    from newsletter.sending.transports.esp import ESPBatchTransport, esp_merge_field
    from newsletter.sending.transports.smtp import SMTPTransport

    backend = get_connection(fail_silently=False)
    transport: Transport
    if isinstance(backend, SMTPBackend):
        transport = SMTPTransport(backend)
    elif merge_field := esp_merge_field(backend):
        transport = ESPBatchTransport(backend, merge_field, settings.NEWSLETTER_ESP_BATCH_SIZE)
    else:
        transport = BackendTransport(backend)
    transport.open()
    return transport
