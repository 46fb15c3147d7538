"""Request ids in responses, JSON log lines, Celery tasks; Sentry only with a DSN."""

import gzip
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from euro_prospects.observability import JsonFormatter, RequestIdFilter, RequestIdMiddleware
from tests.support import celery_probe
from tests.support.workers import WorkerProcess, wait_until


def test_every_response_carries_a_request_id(client, db):
    first = client.get("/")["X-Request-ID"]
    second = client.get("/")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_a_sane_incoming_request_id_is_kept_and_a_forged_one_replaced(client, db):
    assert client.get("/", HTTP_X_REQUEST_ID="nginx-0123456789abcdef")["X-Request-ID"] == "nginx-0123456789abcdef"
    forged = client.get("/", HTTP_X_REQUEST_ID="bad id\nwith a newline {json}")["X-Request-ID"]
    assert forged != "bad id\nwith a newline {json}"
    assert len(forged) == 32


def test_log_lines_are_json_with_the_request_id(caplog):
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("euro_prospects.test")
    logger.addHandler(handler)
    try:

        def view(request):
            logger.info("article viewed", extra={"slug": "a-slow-road"})
            return HttpResponse("ok")

        response = RequestIdMiddleware(view)(RequestFactory().get("/"))
    finally:
        logger.removeHandler(handler)
    line = json.loads(records[0])
    assert line["message"] == "article viewed"
    assert line["level"] == "INFO"
    assert line["slug"] == "a-slow-road"
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.integration
def test_the_request_id_follows_a_task_into_the_worker_log(transactional_db):
    worker = WorkerProcess(extra_env={"LOG_FORMAT": "json"}).start(timeout=60)
    try:
        marker = f"probe-{uuid.uuid4().hex}"

        def view(request):
            celery_probe.log_line.delay(marker)
            return HttpResponse("queued")

        response = RequestIdMiddleware(view)(RequestFactory().get("/"))
        request_id = response["X-Request-ID"]

        def logged_line():
            for raw in worker.log_path.read_text().splitlines():
                line = json.loads(raw) if raw.startswith("{") else {}
                if line.get("logger") == "tests.support.celery_probe" and line.get("message") == marker:
                    return line
            return None

        line = wait_until(logged_line, timeout=60)
    finally:
        worker.stop()
    assert line["request_id"] == request_id
    assert line["task_name"] == "tests.support.celery_probe.log_line"


class SentryIntake(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def run_with_sentry(dsn: str | None, probe: str = "probe from the test") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    if dsn:
        env["SENTRY_DSN"] = dsn
    script = (
        "import django; django.setup(); import sentry_sdk;"
        "print('active' if sentry_sdk.get_client().is_active() else 'inactive');"
        f"sentry_sdk.capture_message({probe!r}); sentry_sdk.flush(5)"
    )
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)


def test_errors_go_to_sentry_when_a_dsn_is_set():
    SentryIntake.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SentryIntake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_with_sentry(f"http://publickey@127.0.0.1:{server.server_port}/1")
    finally:
        server.shutdown()
    assert result.stdout.strip() == "active", result.stderr
    assert any(b"probe from the test" in body for body in SentryIntake.received)


def test_nothing_goes_to_sentry_without_a_dsn():
    result = run_with_sentry(None)
    assert result.stdout.strip() == "inactive", result.stderr


def test_no_readers_token_goes_to_sentry():
    token = "MTIzNA:1uTqZk:Xb3rLq9vK2mW7yR1tN8cH0dF6gP4sA"
    SentryIntake.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SentryIntake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        probe = f"failed on /newsletter/preferences/{token}/"
        result = run_with_sentry(f"http://publickey@127.0.0.1:{server.server_port}/1", probe=probe)
    finally:
        server.shutdown()
    assert result.stdout.strip() == "active", result.stderr
    assert any(b"/newsletter/preferences/[token]/" in body for body in SentryIntake.received)
    assert not any(token.encode() in body for body in SentryIntake.received)
