"""Imports that meet bad rows, imports that break off, and admin imports run by a worker."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from newsletter.imports import ImportFileError, import_subscribers, run_import_job
from newsletter.models import ImportFileChunk, ImportJob, Subscriber
from tests.support.factories import TopicFactory
from tests.support.workers import wait_until

IMPORT_URL = "/admin/newsletter/subscriber/import/"

# Rows 2 to 11: bad rows between good ones, so they fall in several chunks of 3.
BAD_FILE = (
    b"email,name,topics\r\n"
    b"good.one@example.org,Good One,energy\r\n"  # row 2
    b"nul.name@example.org,Nul\x00Name,\r\n"  # row 3
    b"nul\x00email@example.org,,\r\n"  # row 4
    b'crlf.name@example.org,"Line\r\nBreak",\r\n'  # row 5
    b"not-an-address,Broken,\r\n"  # row 6
    b"good.two@example.org,,\r\n"  # row 7
    b"bell@example.org,,energy\x07\r\n"  # row 8
    b"ls@example.org,Sep\xe2\x80\xa8arator,\r\n"  # row 9
    b"\x00\x00\x00,\x00,\x00\r\n"  # row 10
    b"good.three@example.org,Good Three,\r\n"  # row 11
)
EXPECTED_SKIPS = {
    3: "control character in name: U+0000",
    4: "control character in email: U+0000",
    5: "control character in name: U+000D",
    6: "invalid email",
    8: "control character in topics: U+0007",
    9: "control character in name: U+2028",
    10: "control character in email: U+0000",
}
GOOD = {"good.one@example.org", "good.two@example.org", "good.three@example.org"}


@pytest.fixture
def energy(db: None) -> Any:
    return TopicFactory.create(slug="energy", name="Energy")


def test_rows_with_nul_bytes_control_characters_or_bad_addresses_are_skipped_with_their_row_number(energy):
    skipped: dict[int, str] = {}

    def on_skip(row: int, email: str, reason: str) -> None:
        skipped[row] = reason

    report = import_subscribers(
        file=io.TextIOWrapper(io.BytesIO(BAD_FILE), encoding="utf-8", newline=""),
        confirmed=True,
        consent_source="test",
        chunk_size=3,
        on_skip=on_skip,
    )
    assert sorted(skipped) == sorted(EXPECTED_SKIPS)
    for row, reason in EXPECTED_SKIPS.items():
        assert skipped[row].startswith(reason), (row, skipped[row])
    assert (report.rows, report.imported, report.skipped_total) == (10, 3, 7)
    assert set(Subscriber.objects.values_list("email", flat=True)) == GOOD
    assert set(Subscriber.objects.values_list("name", flat=True)) == {"Good One", "", "Good Three"}


def test_the_command_lists_the_bad_rows_and_imports_the_rest(energy, tmp_path):
    path = tmp_path / "readers.csv"
    path.write_bytes(BAD_FILE)
    out = io.StringIO()
    call_command("import_subscribers", str(path), "--confirmed", stdout=out)
    output = out.getvalue()
    for row, reason in EXPECTED_SKIPS.items():
        assert re.search(rf"^row {row}: skipped .*: {re.escape(reason)}", output, re.M), (row, output)
    assert "Imported 3 of 10 rows" in output
    assert set(Subscriber.objects.values_list("email", flat=True)) == GOOD


def test_a_file_that_breaks_off_says_exactly_which_rows_were_imported(db, tmp_path):
    rows = [f"reader{n}@example.org" for n in range(2, 9)]  # rows 2 to 8
    broken = "email\n" + "\n".join(rows) + '\n"unclosed"x@example.org\nafter@example.org\n'  # row 9 is broken
    with pytest.raises(ImportFileError) as caught:
        import_subscribers(file=io.StringIO(broken), confirmed=True, consent_source="test", chunk_size=3)
    message = str(caught.value)
    assert "not valid CSV" in message
    assert (
        "Rows 2 to 8 were imported as reported (7 new subscribers, 0 rows skipped); "
        "nothing after row 8 was imported." in message
    )
    assert set(Subscriber.objects.values_list("email", flat=True)) == set(rows)

    path = tmp_path / "broken.csv"
    path.write_text(broken)
    Subscriber.objects.all().delete()
    with pytest.raises(CommandError, match="Rows 2 to 8 were imported as reported"):
        call_command("import_subscribers", str(path), "--confirmed", stdout=io.StringIO())


def test_a_chunk_the_database_refuses_is_reported_with_its_rows_and_what_came_before(db, monkeypatch):
    from django.db import DataError

    from newsletter import imports

    real = imports._import_chunk
    calls = []

    def failing_second_chunk(chunk: list[Any], **kwargs: Any) -> None:
        calls.append(chunk)
        if len(calls) == 2:
            raise DataError("value refused")
        real(chunk, **kwargs)

    monkeypatch.setattr(imports, "_import_chunk", failing_second_chunk)
    text = "email\n" + "\n".join(f"r{n}@example.org" for n in range(6)) + "\n"
    with pytest.raises(ImportFileError) as caught:
        import_subscribers(file=io.StringIO(text), confirmed=True, consent_source="test", chunk_size=3)
    assert str(caught.value) == (
        "Rows 5 to 7 could not be stored (value refused). Rows 2 to 4 were imported as reported "
        "(3 new subscribers, 0 rows skipped); nothing after row 4 was imported."
    )
    assert Subscriber.objects.count() == 3


# --- the admin: a job a worker runs -----------------------------------------------------


def upload(content: bytes, name: str = "readers.csv") -> io.BytesIO:
    file = io.BytesIO(content)
    file.name = name
    return file


@pytest.fixture
def editor_client(client: Client, eva: Any) -> Client:
    client.force_login(eva)
    return client


def test_the_admin_shows_the_bad_rows_of_an_import_with_their_numbers(editor_client, run_tasks, energy):
    response = editor_client.post(IMPORT_URL, {"file": upload(BAD_FILE), "confirmed": "on"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Imported 3 of 10 rows; skipped 7." in page
    for row, reason in EXPECTED_SKIPS.items():
        assert re.search(rf"<tr><td>{row}</td><td>[^<]*</td><td>{re.escape(reason)}", page), row
    assert set(Subscriber.objects.values_list("email", flat=True)) == GOOD
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FINISHED
    assert not ImportFileChunk.objects.exists()  # the uploaded list is not kept


def test_the_admin_refuses_a_file_without_an_email_header_at_once(editor_client):
    response = editor_client.post(IMPORT_URL, {"file": upload(b"name\nSomeone\n")})
    assert response.status_code == 200
    assert "header with an &#x27;email&#x27; column" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_job_that_breaks_off_shows_what_it_kept(editor_client, run_tasks):
    content = b"email\nfirst@example.org\nsecond@example.org\n\xff\xfe@example.org\n"
    response = editor_client.post(IMPORT_URL, {"file": upload(content), "confirmed": "on"}, follow=True)
    page = response.content.decode()
    assert "Stopped" in page
    assert "not UTF-8" in page
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert job.imported == Subscriber.objects.count()
    assert "were imported as reported" in job.error or job.error.endswith("Nothing was imported.")


def test_a_job_runs_once(editor_client, run_tasks):
    editor_client.post(IMPORT_URL, {"file": upload(b"email\nonce@example.org\n"), "confirmed": "on"})
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FINISHED
    assert run_import_job(job_id=job.pk) is None  # a second delivery of the task
    assert Subscriber.objects.count() == 1


def test_an_author_may_not_import_or_watch_imports(client, cora, eva):
    client.force_login(cora)
    assert client.get(IMPORT_URL).status_code == 403
    job = ImportJob.objects.create(file_name="x.csv", created_by=eva)
    assert client.get(f"{IMPORT_URL}{job.pk}/").status_code == 403


ROWS = 200_000


@pytest.mark.integration
def test_a_200000_row_file_is_imported_by_a_worker_while_the_admin_shows_progress(
    transactional_db, eva, celery_worker_process
):
    client = Client()
    client.force_login(eva)
    lines = [b"email,name"] + [f"reader{n}@example.org,Reader {n}".encode() for n in range(ROWS)]
    response = client.post(IMPORT_URL, {"file": upload(b"\n".join(lines) + b"\n", "big.csv"), "confirmed": "on"})
    assert response.status_code == 302
    job_url = response["Location"]

    seen: list[tuple[str, int]] = []

    def finished() -> bool:
        page = client.get(job_url).content.decode()
        status = re.search(r'data-status="(\w+)"', page)
        rows = re.search(r'data-field="rows">(\d+)<', page)
        assert status
        assert rows
        seen.append((status[1], int(rows[1])))
        return status[1] in ("finished", "failed")

    wait_until(finished, timeout=600, interval=0.5)
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FINISHED, job.error
    assert (job.rows, job.imported, job.skipped) == (ROWS, ROWS, 0)
    assert Subscriber.objects.count() == ROWS
    # The page showed the import under way, part done, before it finished.
    assert any(status == "running" and 0 < rows < ROWS for status, rows in seen), seen[:20]
    assert not ImportFileChunk.objects.exists()


@pytest.mark.integration
def test_an_import_whose_worker_dies_goes_on_from_its_last_chunk_on_another_worker(transactional_db, eva):
    from euro_prospects.celery import app as celery_app
    from tests.support.workers import WorkerProcess

    rows = 60_000
    client = Client()
    client.force_login(eva)
    celery_app.control.purge()
    lease = {"NEWSLETTER_LEASE_SECONDS": "3"}
    first = WorkerProcess(extra_env=lease).start(timeout=60)
    try:
        lines = [b"email"] + [f"survivor{n}@example.org".encode() for n in range(rows)]
        response = client.post(IMPORT_URL, {"file": upload(b"\n".join(lines) + b"\n", "big.csv"), "confirmed": "on"})
        assert response.status_code == 302
        wait_until(lambda: ImportJob.objects.filter(status="running", rows__gt=0).exists(), timeout=300, interval=0.05)
        first.kill()
    finally:
        first.stop()
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.RUNNING
    assert 0 < job.rows < rows
    # Once the dead worker's lease has run out, the next worker to start takes the job on.
    wait_until(lambda: ImportJob.objects.get().updated_at < timezone.now() - timedelta(seconds=3), timeout=30)
    second = WorkerProcess(extra_env=lease).start(timeout=60)
    try:
        wait_until(lambda: not ImportJob.objects.get().is_active, timeout=600, interval=0.5)
    finally:
        second.stop()
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FINISHED, job.error
    assert Subscriber.objects.count() == rows
    assert job.rows == rows
    # At most the one chunk committed but not recorded when the worker died is read twice.
    assert job.imported + job.skipped == rows
    assert job.skipped <= 10_000
