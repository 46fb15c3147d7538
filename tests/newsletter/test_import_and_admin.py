"""The import command, and the subscriber admin an editor uses."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from newsletter import services
from newsletter.models import Subscriber, Suppression
from tests.support.factories import SubscriberFactory, TopicFactory


def write_csv(tmp_path, text, name="list.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_import(*args):
    out = io.StringIO()
    call_command("import_subscribers", *args, stdout=out)
    return out.getvalue()


def test_it_imports_and_reports_every_skipped_row_with_its_number(db, tmp_path):
    TopicFactory.create(slug="energy", name="Energy")
    SubscriberFactory.create(email="already@example.org")
    erased = SubscriberFactory.create(email="erased@example.org")
    services.erase_subscriber(subscriber=erased)
    path = write_csv(
        tmp_path,
        "email,name,topics\n"
        "one@example.org,Reader One,energy\n"  # row 2
        "not-an-address,Broken,\n"  # row 3
        "ONE@example.org,Again,\n"  # row 4
        "already@Example.org,,\n"  # row 5
        "erased@example.org,,\n"  # row 6
        "two@example.org,,unknown-topic\n"  # row 7
        "three@example.org,,\n",  # row 8
    )
    output = run_import(path, "--confirmed")
    assert "row 3: skipped not-an-address: invalid email" in output
    assert "row 4: skipped ONE@example.org: duplicate: same address as row 2" in output
    assert "row 5: skipped already@example.org: duplicate: already on the list" in output
    assert "row 6: skipped erased@example.org: suppressed" in output
    assert "row 7: skipped two@example.org: unknown topic: unknown-topic" in output
    assert "Imported 2 of 7 rows" in output
    one = Subscriber.objects.get(email="one@example.org")
    assert (one.name, one.status, one.source, one.all_topics) == ("Reader One", "confirmed", "import", False)
    assert [t.slug for t in one.topics.all()] == ["energy"]
    assert one.consent_source == "import of list.csv"
    assert Subscriber.objects.get(email="three@example.org").all_topics is True
    assert not Subscriber.objects.filter(email="erased@example.org").exists()


def test_duplicates_across_chunks_are_skipped(db, tmp_path):
    from newsletter.imports import import_subscribers

    lines = ["email"] + [f"r{n % 7}@example.org" for n in range(30)]
    skipped = []
    with open(write_csv(tmp_path, "\n".join(lines) + "\n"), newline="") as file:
        report = import_subscribers(
            file=file, confirmed=True, consent_source="test", chunk_size=4, on_skip=lambda *a: skipped.append(a)
        )
    assert report.imported == 7
    assert len(skipped) == 23
    assert Subscriber.objects.count() == 7


def test_without_confirmed_each_imported_reader_gets_a_confirmation(run_tasks, tmp_path):
    path = write_csv(tmp_path, "email\nnew1@example.org\nnew2@example.org\n")
    run_import(path)
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"pending"}
    assert len(run_tasks.handler.to("new1@example.org")) == 1
    assert len(run_tasks.handler.to("new2@example.org")) == 1


def test_the_skip_report_can_go_to_a_file(db, tmp_path):
    report_path = tmp_path / "skipped.csv"
    path = write_csv(tmp_path, "email\nbad\nok@example.org\n")
    output = run_import(path, "--confirmed", "--report", str(report_path))
    assert "Imported 1 of 2 rows" in output
    rows = list(csv.reader(report_path.open()))
    assert rows[0] == ["row", "email", "reason"]
    assert rows[1][:2] == ["2", "bad"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name\nSomeone\n", "'email' column"),
        (b"email\n\xff\xfe@example.org\n", "not UTF-8"),
        (b'email\n"a"b@example.org\n', "not valid CSV"),
    ],
)
def test_a_broken_file_stops_with_a_clear_message(db, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        run_import(str(path), "--confirmed")


def test_a_missing_file_stops_with_a_clear_message(db):
    with pytest.raises(CommandError, match="Cannot open"):
        run_import("/nonexistent/list.csv")


@pytest.fixture
def editor_client(client, eva):
    client.force_login(eva)  # an Editor, not a superuser
    return client


def test_the_admin_list_shows_counts_by_status_and_a_chart(editor_client):
    SubscriberFactory.create_batch(3)
    SubscriberFactory.create(status=Subscriber.Status.BOUNCED)
    response = editor_client.get("/admin/newsletter/subscriber/")
    assert response.status_code == 200
    counts = dict(response.context["status_counts"])
    assert counts["Confirmed"] == 3
    assert counts["Bounced"] == 1
    assert response.context["confirmed_chart"][-1]["total"] == 3
    assert b"<svg" in response.content
    assert b"Import CSV" in response.content


def test_the_admin_filters_by_status_topic_and_source(editor_client):
    topic = TopicFactory.create(slug="energy")
    chosen = SubscriberFactory.create(email="chosen@example.org", all_topics=False, source="import")
    chosen.topics.set([topic])
    SubscriberFactory.create(email="other@example.org")
    response = editor_client.get(f"/admin/newsletter/subscriber/?topics__id__exact={topic.pk}&source__exact=import")
    assert b"chosen@example.org" in response.content
    assert b"other@example.org" not in response.content
    response = editor_client.get("/admin/newsletter/subscriber/?q=other")
    assert b"other@example.org" in response.content


def test_an_editor_imports_a_csv_in_the_admin(editor_client, run_tasks):
    upload = io.BytesIO(b"email,name\nvia.admin@example.org,Via Admin\nbad\n")
    upload.name = "readers.csv"
    response = editor_client.post(
        "/admin/newsletter/subscriber/import/", {"file": upload, "confirmed": "on"}, follow=True
    )
    page = response.content.decode()
    assert "Imported 1 of 2 rows; skipped 1." in page
    assert "<tr><td>3</td><td>bad</td><td>invalid email:" in page
    assert Subscriber.objects.get().email == "via.admin@example.org"


def test_an_editor_exports_subscribers_as_csv(editor_client):
    reader = SubscriberFactory.create(email="export@example.org", name="Ex Port")
    response = editor_client.post(
        "/admin/newsletter/subscriber/", {"action": "export_csv", "_selected_action": [reader.pk]}
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["email", "name", "status"]
    assert rows[1][:3] == ["export@example.org", "Ex Port", "confirmed"]


def test_the_export_writes_names_a_spreadsheet_would_run_as_text(editor_client):
    # Names as they were stored before sign-ups refused control characters, and addresses
    # that are valid yet start like a formula.
    formula = SubscriberFactory.create(email="=cmd@example.org", name='=HYPERLINK("http://evil.example","Click")')
    signs = SubscriberFactory.create(email="plus@example.org", name="+1 555 0100")
    at = SubscriberFactory.create(email="at@example.org", name="@SUM(A1:A9)")
    minus = SubscriberFactory.create(email="minus@example.org", name="-2+3")
    tab = SubscriberFactory.create(email="tab@example.org", name="\tTabbed")
    plain = SubscriberFactory.create(email="plain@example.org", name="Ada Reader")
    readers = [formula, signs, at, minus, tab, plain]
    response = editor_client.post(
        "/admin/newsletter/subscriber/", {"action": "export_csv", "_selected_action": [r.pk for r in readers]}
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    cells = {row[0]: row[1] for row in rows[1:]}
    assert cells == {
        "'=cmd@example.org": '\'=HYPERLINK("http://evil.example","Click")',
        "plus@example.org": "'+1 555 0100",
        "at@example.org": "'@SUM(A1:A9)",
        "minus@example.org": "'-2+3",
        "tab@example.org": "'\tTabbed",
        "plain@example.org": "Ada Reader",
    }


def test_an_editor_lifts_a_suppression_and_erases_a_reader(editor_client):
    bounced = SubscriberFactory.create(email="b@example.org")
    services.suppress_subscriber(subscriber=bounced, status="bounced", reason="test bounce")
    editor_client.post(
        "/admin/newsletter/subscriber/", {"action": "undo_suppression", "_selected_action": [bounced.pk]}
    )
    bounced.refresh_from_db()
    assert bounced.status == Subscriber.Status.CONFIRMED

    page = editor_client.post("/admin/newsletter/subscriber/", {"action": "erase", "_selected_action": [bounced.pk]})
    assert b"Erase these subscribers?" in page.content
    assert Subscriber.objects.filter(pk=bounced.pk).exists()
    editor_client.post(
        "/admin/newsletter/subscriber/",
        {"action": "erase", "_selected_action": [bounced.pk], "confirm_erase": "yes"},
    )
    assert not Subscriber.objects.filter(pk=bounced.pk).exists()


def test_deleting_readers_in_the_admin_erases_them_so_no_import_adds_them_back(editor_client, tmp_path):
    one, two, kept = (SubscriberFactory.create(email=f"{name}@example.org") for name in ("one", "two", "kept"))
    editor_client.post(
        "/admin/newsletter/subscriber/",
        {"action": "delete_selected", "_selected_action": [one.pk, two.pk], "post": "yes"},
    )
    editor_client.post(f"/admin/newsletter/subscriber/{kept.pk}/delete/", {"post": "yes"})
    assert not Subscriber.objects.exists()
    assert Suppression.objects.count() == 3
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email\none@example.org\ntwo@example.org\nkept@example.org\n")
    call_command("import_subscribers", str(csv_file), stdout=io.StringIO())
    assert not Subscriber.objects.exists()


def test_suppress_refuses_a_status_that_is_not_a_suppression(db):
    reader = SubscriberFactory.create(confirmed_at=timezone.now())
    with pytest.raises(ValueError, match="bounced or complained"):
        services.suppress_subscriber(subscriber=reader, status="unsubscribed", reason="x")
