"""Any Django email backend (django-anymail providers, console, locmem, file), one message a call."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from django.core.mail import EmailMultiAlternatives

from euro_prospects.emails import transient_status
from newsletter.sending.message import CampaignEmail, Recipient, UnsendableAddress
from newsletter.sending.transports import CampaignPausingError, PermanentSendError, TransientSendError


class BackendTransport:
    """Any Django email backend (django-anymail providers, console, locmem, file)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.message: EmailMultiAlternatives | None = None

    def open(self) -> None:
        try:
            self.backend.open()
        except Exception as exc:
            raise TransientSendError(f"cannot connect: {exc!r}", connection_lost=True) from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            self.backend.close()

    def abort(self) -> None:
        self.message = None

    def begin(self, email: CampaignEmail, recipient: Recipient) -> None:
        try:
            self.message = email.as_message(recipient, connection=self.backend)
        except UnsendableAddress as exc:
            raise PermanentSendError(f"cannot send to this address: {exc}", suppress=False) from None
        except Exception as exc:
            raise PermanentSendError(f"cannot build the message: {exc!r}", suppress=False) from exc

    def finish(self, email: CampaignEmail, recipient: Recipient, following: Recipient | None = None) -> str:
        message, self.message = self.message, None
        if message is None:
            raise TransientSendError("no message begun")
        try:
            self.backend.send_messages([message])
        except Exception as exc:
            if type(exc).__name__ == "AnymailInvalidAddress":  # refused before any request
                raise PermanentSendError(f"cannot send to this address: {exc}", suppress=False) from exc
            raise classify_backend_error(exc) from exc
        status = getattr(message, "anymail_status", None)
        if status is not None:
            statuses = status.status or set()
            if statuses & {"rejected", "invalid"}:
                raise PermanentSendError(f"provider refused the address ({', '.join(sorted(statuses))})")
            return str(status.message_id or email.message_id(recipient))
        return email.message_id(recipient)


# An ESP's 4xx that names the recipient (Mailgun's "'to' parameter is not a valid address",
# Postmark's inactive recipient) or, checked first, the sender or the account.
_ABOUT_THE_ACCOUNT = re.compile(
    r"\bfrom\b|sender|signature|account|domain|api.?key|token|unauthori[sz]ed|forbidden|suspend|verif|approv|"
    r"quota|credit|\bplan\b|billing|disabled",
    re.IGNORECASE,
)
_ABOUT_THE_RECIPIENT = re.compile(
    r"recipient|'to'|\bto\b[^.]*address|(invalid|illegal|not a valid) (e-?mail|address)|inactive|mailbox",
    re.IGNORECASE,
)


def _answer_text(exc: Exception) -> str:
    """The ESP's own words (anymail's message also names the message's sender and recipients)."""
    response = getattr(exc, "response", None)
    text = getattr(response, "text", None)
    return text if isinstance(text, str) else str(exc.args[0] if exc.args else "")


def classify_backend_error(exc: Exception) -> Exception:
    """An ESP's answer to a whole call: the same rules as SMTP's (see ``smtp.smtp_error``).

    401 and 403, and a 422 or other 4xx about the sender or the account, pause the
    campaign; a 4xx naming the recipient fails (and suppresses) the address; 408, 429,
    5xx and network errors are retried.
    """
    name = type(exc).__name__
    status_code = getattr(exc, "status_code", None)
    if name == "AnymailRecipientsRefused":
        return PermanentSendError(f"provider refused the address: {exc}")
    if transient_status(status_code):
        return TransientSendError(f"{name}: {exc}")
    text = f"provider error {status_code}: {exc}"
    answer = _answer_text(exc)
    if status_code in (401, 403) or _ABOUT_THE_ACCOUNT.search(answer):
        return CampaignPausingError(text)
    if _ABOUT_THE_RECIPIENT.search(answer):
        return PermanentSendError(text, suppress=True)
    if status_code == 422:
        return CampaignPausingError(text)
    return PermanentSendError(text, suppress=False, streak=f"provider error {status_code}")
