"""Prebuilt bytes over one SMTP connection, with PIPELINING when the server offers it."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from newsletter.sending.message import CampaignEmail, Recipient, UnsendableAddress, sendable_address
from newsletter.sending.transports import CampaignPausingError, PermanentSendError, TransientSendError

_ENHANCED_CODE = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Enhanced codes about the sender's own address, not the recipient's (RFC 3463).
_SENDER_CODES = {(1, 7), (1, 8)}


def smtp_error(code: int, reply: bytes, stage: str) -> Exception:
    """What an SMTP refusal means for this reader and for the campaign.

    Only a refusal of the recipient's mailbox (enhanced codes 5.1.x and 5.2.1) fails the
    delivery and suppresses the reader; 5.2.x is that mailbox's trouble and fails it alone.
    5.7.x (relay, policy, authentication), the sender's codes and any other 5xx to MAIL,
    DATA or the message are about us, alike for every reader: they pause the campaign. A
    5xx to RCPT without such a code says too little: the delivery fails (the reader is
    kept), and the same refusal for ``NEWSLETTER_PAUSE_AFTER`` readers in a row pauses.
    """
    text = f"{code} {reply.decode('utf-8', 'replace')} ({stage})"
    if code == 421 or code < 0:
        return TransientSendError(text, connection_lost=True)
    if 400 <= code < 500:
        return TransientSendError(text)
    enhanced = _ENHANCED_CODE.match(reply)
    subject, detail = (int(enhanced[2]), int(enhanced[3])) if enhanced else (0, 0)
    if stage in ("MAIL", "DATA") or subject == 7 or (subject, detail) in _SENDER_CODES:
        return CampaignPausingError(text)
    if subject == 1 or (subject, detail) == (2, 1):
        return PermanentSendError(text, suppress=True)
    if subject == 2:
        return PermanentSendError(text, suppress=False)
    if stage == "end of DATA":
        return CampaignPausingError(text)  # the content or the message as a whole: alike for everyone
    return PermanentSendError(text, suppress=False, streak=f"{code} {subject}.{detail} ({stage})")


class SMTPTransport:
    """Prebuilt bytes over one SMTP connection, with PIPELINING when the server offers it.

    A message is sent in two steps: ``begin`` sends the envelope and the body without
    its final ".", ``finish`` sends the "." and returns once the server has accepted
    the message; until that "." the server has accepted nothing. With PIPELINING the
    next reader's envelope goes out with the ".", so each message costs one round trip;
    ``begin`` then reads that envelope's answers.
    """

    def __init__(self, backend: SMTPBackend) -> None:
        self.backend = backend
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False
        self.smtputf8 = False
        # The reader whose envelope went with the last "." (answers not read yet), and their message.
        self.announced: tuple[Recipient, bytes] | None = None

    def open(self) -> None:
        try:
            self.backend.open()
        except smtplib.SMTPAuthenticationError as exc:
            reply = exc.smtp_error if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error).encode()
            raise CampaignPausingError(f"{exc.smtp_code} {reply.decode('utf-8', 'replace')} (AUTH)") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientSendError(f"cannot connect: {exc!r}", connection_lost=True) from exc
        self.smtp = self.backend.connection
        if self.smtp is None:
            raise TransientSendError("no connection", connection_lost=True)
        if self.smtp.sock is not None:
            # Without it a message's last TCP segment waits for the server's delayed ACK (~40 ms).
            self.smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientSendError(f"no greeting: {exc!r}", connection_lost=True) from exc
        self.pipelining = self.smtp.has_extn("pipelining")
        self.smtputf8 = self.smtp.has_extn("smtputf8")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            self.backend.close()

    def abort(self) -> None:
        """Drop the connection without finishing the message begun: the server discards it."""
        if self.smtp is not None and self.smtp.sock is not None:
            with contextlib.suppress(OSError):
                self.smtp.sock.close()
        self.smtp = None
        self.announced = None
        self.backend.connection = None

    def begin(self, email: CampaignEmail, recipient: Recipient) -> None:
        """Send the envelope and the body, not the final "."."""
        data = self._open_data(email, recipient)
        with _lost_connection_is_transient():
            self._smtp().send(data)

    def finish(self, email: CampaignEmail, recipient: Recipient, following: Recipient | None = None) -> str:
        """End the message begun; with PIPELINING, announce ``following`` in the same write."""
        end = b".\r\n"
        if following is not None and self.pipelining:
            with contextlib.suppress(PermanentSendError):  # begin() reports a message that cannot be built
                envelope, following_data = self._build(email, following)
                end += envelope
                self.announced = (following, following_data)
        with _lost_connection_is_transient():
            smtp = self._smtp()
            smtp.send(end)
            code, reply = smtp.getreply()
        if code != 250:
            raise smtp_error(code, reply, "end of DATA")
        return email.message_id(recipient)

    def _open_data(self, email: CampaignEmail, recipient: Recipient) -> bytes:
        """Get the server to 354 for this reader; return their message, ready for DATA."""
        announced, self.announced = self.announced, None
        # An announced envelope went out with the last "." (its message was built then).
        if announced is not None and announced[0] is recipient:
            envelope, data = b"", announced[1]
        else:
            envelope, data = self._build(email, recipient)  # before any I/O: a failure leaves the connection clean
        with _lost_connection_is_transient():
            smtp = self._smtp()
            if not envelope:
                self._check_envelope(smtp, [smtp.getreply(), smtp.getreply(), smtp.getreply()])
            elif self.pipelining:
                smtp.send(envelope)
                self._check_envelope(smtp, [smtp.getreply(), smtp.getreply(), smtp.getreply()])
            else:
                self._one_command_at_a_time(smtp, envelope)
        return data

    def _build(self, email: CampaignEmail, recipient: Recipient) -> tuple[bytes, bytes]:
        """The reader's envelope and message; whatever goes wrong is this delivery's failure."""
        try:
            envelope = _envelope(email, recipient, smtputf8=self.smtputf8)
            data = email.as_bytes(recipient, smtputf8=self.smtputf8)
        except PermanentSendError:
            raise
        except Exception as exc:
            raise PermanentSendError(f"cannot build the message: {exc!r}", suppress=False) from exc
        return envelope, data if data.endswith(b"\r\n") else data + b"\r\n"

    def _smtp(self) -> smtplib.SMTP:
        if self.smtp is None:
            raise TransientSendError("not connected", connection_lost=True)
        return self.smtp

    def _one_command_at_a_time(self, smtp: smtplib.SMTP, envelope: bytes) -> None:
        mail, rcpt, data = (line + b"\r\n" for line in envelope.split(b"\r\n")[:3])
        smtp.send(mail)
        replies = [smtp.getreply()]
        if replies[0][0] == 250:
            smtp.send(rcpt)
            replies.append(smtp.getreply())
        if replies[-1][0] in (250, 251):
            smtp.send(data)
            replies.append(smtp.getreply())
        self._check_envelope(smtp, replies)

    def _check_envelope(self, smtp: smtplib.SMTP, replies: list[tuple[int, bytes]]) -> None:
        """Raise unless MAIL and RCPT were accepted and DATA got 354."""
        stages = ["MAIL", "RCPT", "DATA"]
        failure = next(
            (
                smtp_error(code, reply, stages[i])
                for i, (code, reply) in enumerate(replies[:2])
                if code not in (250, 251)
            ),
            None,
        )
        data_code = replies[2][0] if len(replies) == 3 else 0
        if data_code == 354 and failure is not None:
            smtp.send(b".\r\n")  # end the DATA the pipeline opened, then forget the transaction
            smtp.getreply()
        if failure is not None or data_code != 354:
            smtp.rset()
            raise failure or smtp_error(data_code, replies[2][1], "DATA")


@contextmanager
def _lost_connection_is_transient() -> Iterator[None]:
    try:
        yield
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        raise TransientSendError(f"connection lost: {exc!r}", connection_lost=True) from exc


def _envelope(email: CampaignEmail, recipient: Recipient, *, smtputf8: bool = False) -> bytes:
    """MAIL, RCPT and DATA for one reader: the domain in ASCII, SMTPUTF8 only when the
    local part needs it (and the server offers it, else the delivery fails, the reader stays)."""
    try:
        to = sendable_address(recipient.email, smtputf8=smtputf8)
    except UnsendableAddress as exc:
        raise PermanentSendError(f"cannot send to this address: {exc}", suppress=False) from None
    mail = b"MAIL FROM:<" + email.sender_address.encode("ascii", "replace") + b">"
    if not to.isascii():
        mail += b" SMTPUTF8"
    return mail + b"\r\nRCPT TO:<" + to.encode() + b">\r\nDATA\r\n"
