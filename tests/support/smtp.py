"""A real SMTP server for tests (aiosmtpd on loopback) that records what it
receives and can answer 4xx/5xx for chosen recipients (or everyone, as a relay that
refuses us does), refuse the sender, or drop the connection.

Like Postfix it offers PIPELINING, so the engine's pipelined path is the one tested;
``handler.pipelining = False`` tests the one-command-at-a-time path. Hooks let a test
act at an exact moment of a message: ``on_mail`` (MAIL FROM), ``mid_data`` (part of
the body received, not its final "."), ``before_accept`` (the final "." received,
before the 250). ``SMTPServer(tls=..., login=...)`` requires STARTTLS and AUTH, as a
production relay does."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def throwaway_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made for one test.

    A client trusts it through ``SSL_CERT_FILE=<certificate>`` (OpenSSL's default
    verify paths), so the client's certificate verification stays on.
    """
    certificate, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


def tls_context(certificate: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    return context


@dataclass
class ReceivedMessage:
    mail_from: str
    recipients: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)  # e.g. ["SMTPUTF8"]

    def parsed(self) -> EmailMessage:
        if "SMTPUTF8" in self.mail_options:  # RFC 6532: headers in UTF-8
            message = email.message_from_string(self.data.decode("utf-8"), policy=email.policy.default)
        else:
            message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class RecordingHandler:
    messages: list[ReceivedMessage] = field(default_factory=list)
    # address (lower case) -> reply, e.g. "450 4.2.1 Mailbox busy" or "550 5.1.1 No such user"
    rcpt_faults: dict[str, str] = field(default_factory=dict)
    # a reply to every RCPT, whoever the recipient, e.g. "554 5.7.1 Relay access denied"
    rcpt_fault_for_all: str | None = None
    # a reply to every MAIL FROM, e.g. "553 5.7.1 Sender address rejected"
    mail_fault: str | None = None
    # address (lower case) -> reply to the message's final "." (the message is not kept)
    data_faults: dict[str, str] = field(default_factory=dict)
    # drop the connection instead of accepting the message once this many were accepted
    drop_after: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    pipelining: bool = True
    # called with the message about to be accepted, before the server answers 250
    before_accept: Callable[[ReceivedMessage], None] | None = None
    # called with the envelope once the first line of its body arrived (no final "." yet)
    mid_data: Callable[[Any], None] | None = None
    # called at each MAIL FROM with the number of messages accepted so far
    on_mail: Callable[[int], None] | None = None
    # each message's session: (client address and port, over TLS, authenticated)
    sessions: list[tuple[Any, bool, bool]] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            # aiosmtpd reads commands one line at a time, so pipelined commands just work.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any) -> str:
        if self.on_mail is not None:
            with self.lock:
                accepted = len(self.messages)
            self.on_mail(accepted)
        if self.mail_fault:
            return self.mail_fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        fault = self.rcpt_fault_for_all or self.rcpt_faults.get(address.lower())
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.sessions.append((session.peer, session.ssl is not None, bool(session.authenticated)))
            if self.drop_after is not None and len(self.messages) >= self.drop_after:
                self.drop_after = None  # drop once, then accept again
                server.transport.close()
                return "421 4.3.0 Connection dropped by test"
            fault = next(
                (self.data_faults[r.lower()] for r in envelope.rcpt_tos if r.lower() in self.data_faults), None
            )
            if fault:
                return fault
            message = ReceivedMessage(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.content, list(envelope.mail_options)
            )
            if self.before_accept is not None:
                self.before_accept(message)
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt.lower() for message in self.messages for rcpt in message.recipients]

    def to(self, address: str) -> list[EmailMessage]:
        """Every message received for ``address``, parsed."""
        with self.lock:
            found = [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]
        return [message.parsed() for message in found]


class _HookedSMTP(SMTP):
    """aiosmtpd's SMTP session, calling the handler's ``mid_data`` once a body is under way."""

    async def smtp_DATA(self, arg: str) -> None:
        hook = getattr(self.event_handler, "mid_data", None)
        if hook is None:
            return await super().smtp_DATA(arg)
        reader, envelope = self._reader, self.envelope
        read_line = reader.readuntil
        called = False

        async def readuntil(separator: bytes = b"\n") -> bytes:
            nonlocal called
            line = await read_line(separator)
            if not called and line != b".\r\n":
                called = True
                hook(envelope)
            return line

        setattr(reader, "readuntil", readuntil)  # noqa: B010 - this session's reader only
        try:
            await super().smtp_DATA(arg)
        finally:
            delattr(reader, "readuntil")


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _HookedSMTP(self.handler, **self.SMTP_kwargs)


@dataclass(frozen=True)
class Login:
    user: str
    password: str

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        valid = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=valid)


class SMTPServer:
    """``smtputf8``: offer SMTPUTF8 (RFC 6531), taking UTF-8 addresses; ``tls`` and ``login``:
    require STARTTLS, then AUTH."""

    def __init__(
        self, *, smtputf8: bool = False, tls: ssl.SSLContext | None = None, login: Login | None = None
    ) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self.login = login
        options: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if login is not None:
            options.update(authenticator=login, auth_required=True, auth_require_tls=tls is not None)
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self.tls = tls is not None

    @property
    def url(self) -> str:
        scheme = "smtp+tls" if self.tls else "smtp"
        auth = f"{self.login.user}:{self.login.password}@" if self.login else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
