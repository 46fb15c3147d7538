"""A real HTTP server for tests that speaks ESPs' send APIs on loopback, as django-anymail
calls them, records the emails the ESP would deliver and can answer errors.

Mailgun (``POST /v3/<domain>/messages``): a form with one ``to`` per reader, ``h:``
headers and ``recipient-variables``; like Mailgun, the server makes one email per ``to``
address, filling ``%recipient.KEY%`` in the subject, bodies and headers with that
reader's variables, and refuses the whole call (400) when one address is invalid.

Unisender Go (``POST /email/send.json``): JSON with ``recipients``, each with its
``substitutions`` for ``{{KEY}}``; unlike Mailgun it sends to the good addresses of a
call and reports the others in ``failed_emails`` (e.g. ``invalid``)."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import email.utils
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.support.smtp import free_port

_RECIPIENT_VARIABLE = re.compile(r"%recipient\.([^%]+)%")
_SUBSTITUTION = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


@dataclass
class DeliveredEmail:
    """One reader's copy, as the ESP would deliver it."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]


@dataclass
class APICall:
    to: list[str]
    status: int


@dataclass
class ESPState:
    calls: list[APICall] = field(default_factory=list)
    delivered: list[DeliveredEmail] = field(default_factory=list)
    # call number (1 = first) -> (HTTP status, message) answered for that whole call
    call_faults: dict[int, tuple[int, str]] = field(default_factory=dict)
    # addresses (lower case) that make Mailgun refuse any call naming them
    invalid_addresses: set[str] = field(default_factory=set)
    # address (lower case) -> Unisender Go's failed_emails code, e.g. "invalid", "permanent_unavailable"
    failed_emails: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # called with a call's addresses once the ESP has taken the call, before it answers
    before_answer: Callable[[list[str]], None] | None = None

    def to(self, address: str) -> list[DeliveredEmail]:
        with self.lock:
            return [d for d in self.delivered if d.to.lower() == address.lower()]

    def recipients(self) -> list[str]:
        with self.lock:
            return [d.to.lower() for d in self.delivered]


def _form_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The request's form, url-encoded or multipart (requests uses multipart only with files)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode(), keep_blank_values=True)
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields.setdefault(str(name), []).append(payload.decode() if isinstance(payload, bytes) else "")
    return fields


class _ESPHandler(BaseHTTPRequestHandler):
    state: ESPState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test output shows failures
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if re.fullmatch(r"/v3/[^/]+/messages", self.path):
            return self._mailgun(body)
        if self.path == "/email/send.json":
            return self._unisender_go(body)
        return self._answer(404, {"message": "not found"})

    def _mailgun(self, body: bytes) -> None:
        form = _form_fields(self.headers.get("Content-Type", ""), body)
        to = form.get("to", [])
        with self.state.lock:
            number = len(self.state.calls) + 1
            fault = self.state.call_faults.get(number)
            if fault is None and any(_address(a).lower() in self.state.invalid_addresses for a in to):
                fault = (400, "'to' parameter is not a valid address. please check documentation")
            self.state.calls.append(APICall(to=[_address(a) for a in to], status=fault[0] if fault else 200))
            if fault is None:
                self.state.delivered.extend(_expand(form, address) for address in to)
        if fault is not None:
            return self._answer(fault[0], {"message": fault[1]})
        if self.state.before_answer is not None:
            self.state.before_answer([_address(a) for a in to])
        return self._answer(200, {"id": f"<{uuid.uuid4().hex}@mailgun.test>", "message": "Queued. Thank you."})

    def _unisender_go(self, body: bytes) -> None:
        message = json.loads(body)["message"]
        recipients = message["recipients"]
        with self.state.lock:
            number = len(self.state.calls) + 1
            fault = self.state.call_faults.get(number)
            self.state.calls.append(APICall(to=[r["email"] for r in recipients], status=fault[0] if fault else 200))
            if fault is not None:
                return self._answer(fault[0], {"status": "error", "message": fault[1], "code": 0})
            failed = {
                r["email"]: self.state.failed_emails[r["email"].lower()]
                for r in recipients
                if r["email"].lower() in self.state.failed_emails
            }
            sent = [r for r in recipients if r["email"] not in failed]
            self.state.delivered.extend(_substituted(message, r) for r in sent)
        job = {
            "status": "success",
            "job_id": uuid.uuid4().hex,
            "emails": [r["email"] for r in sent],
            "failed_emails": failed,
        }
        return self._answer(200, job)

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        with contextlib.suppress(ConnectionError):  # a test may have killed the client
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


def _address(to: str) -> str:
    return email.utils.parseaddr(to)[1]


def _expand(form: dict[str, list[str]], to: str) -> DeliveredEmail:
    """The copy Mailgun makes for ``to``: its recipient variables filled in everywhere."""
    variables = json.loads(form.get("recipient-variables", ["{}"])[0]).get(_address(to), {})

    def fill(text: str) -> str:
        return _RECIPIENT_VARIABLE.sub(lambda m: str(variables.get(m.group(1), "")), text)

    headers = {name[2:]: fill(values[0]) for name, values in form.items() if name.startswith("h:")}
    return DeliveredEmail(
        to=_address(to),
        subject=fill(form.get("subject", [""])[0]),
        text=fill(form.get("text", [""])[0]),
        html=fill(form.get("html", [""])[0]),
        headers=headers,
    )


def _substituted(message: dict[str, Any], recipient: dict[str, Any]) -> DeliveredEmail:
    """The copy Unisender Go makes for ``recipient``: its substitutions filled in everywhere."""
    variables = {**message.get("global_substitutions", {}), **recipient.get("substitutions", {})}

    def fill(text: str) -> str:
        return _SUBSTITUTION.sub(lambda m: str(variables.get(m.group(1), "")), text)

    body = message.get("body", {})
    return DeliveredEmail(
        to=recipient["email"],
        subject=fill(message.get("subject", "")),
        text=fill(body.get("plaintext", "")),
        html=fill(body.get("html", "")),
        headers={name: fill(value) for name, value in message.get("headers", {}).items()},
    )


class ESPServer:
    def __init__(self) -> None:
        self.state = ESPState()
        self.port = free_port()
        handler = type("Handler", (_ESPHandler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ESPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
