"""The role matrix through the API: anonymous, Author (Cora) and Editor (Eva) against every action."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from articles import services
from articles.models import Article

pytestmark = pytest.mark.django_db

TOMORROW = {"publish_at": "2100-01-01T09:00:00Z"}


@pytest.fixture
def coras_draft(cora):
    return services.create_draft(by=cora, title="Coras draft")


@pytest.fixture
def evas_draft(eva):
    return services.create_draft(by=eva, title="Evas draft")


@pytest.fixture
def coras_published(cora, eva):
    article = services.create_draft(by=cora, title="Coras published piece")
    return services.publish_article(article=article, by=eva)


def call(client: Any, action: str, article: Article) -> int:
    path = f"/api/v1/articles/{article.pk}/"
    if action == "read":
        return client.get(path).status_code
    if action == "update":
        return client.patch(path, {"standfirst": "Changed."}, format="json").status_code
    body = TOMORROW if action == "schedule" else None
    return client.post(f"{path}{action}/", body, format="json").status_code


@pytest.mark.parametrize(
    ("who", "action", "whose", "expected"),
    [
        # Anonymous callers read published pieces only and write nothing.
        ("anonymous", "read", "coras_draft", 404),
        ("anonymous", "read", "coras_published", 200),
        ("anonymous", "update", "coras_draft", 401),
        ("anonymous", "submit", "coras_draft", 401),
        ("anonymous", "approve", "coras_draft", 401),
        ("anonymous", "schedule", "coras_draft", 401),
        ("anonymous", "publish", "coras_draft", 401),
        ("anonymous", "unpublish", "coras_published", 401),
        # Authors write and submit their own pieces; they never approve, schedule or publish.
        ("as_cora", "read", "coras_draft", 200),
        ("as_cora", "update", "coras_draft", 200),
        ("as_cora", "submit", "coras_draft", 200),
        ("as_cora", "approve", "coras_draft", 403),
        ("as_cora", "schedule", "coras_draft", 403),
        ("as_cora", "publish", "coras_draft", 403),
        ("as_cora", "unpublish", "coras_published", 403),
        ("as_cora", "update", "coras_published", 403),
        # Other people's drafts are invisible to Authors.
        ("as_cora", "read", "evas_draft", 404),
        ("as_cora", "update", "evas_draft", 404),
        ("as_cora", "publish", "evas_draft", 404),
        # Editors do everything.
        ("as_eva", "read", "coras_draft", 200),
        ("as_eva", "update", "coras_draft", 200),
        ("as_eva", "submit", "coras_draft", 200),
        ("as_eva", "schedule", "coras_draft", 200),
        ("as_eva", "publish", "coras_draft", 200),
        ("as_eva", "unpublish", "coras_published", 200),
    ],
)
def test_the_role_matrix(request, who, action, whose, expected):
    client = request.getfixturevalue(who)
    article = request.getfixturevalue(whose)
    before = Article.objects.get(pk=article.pk).status
    assert call(client, action, article) == expected
    if expected != 200 or action in ("read", "update"):
        assert Article.objects.get(pk=article.pk).status == before


def test_an_editor_approves_a_piece_in_review(as_eva, cora, coras_draft):
    services.submit_for_review(article=coras_draft, by=cora)
    response = as_eva.post(f"/api/v1/articles/{coras_draft.pk}/approve/")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"


def test_a_refusal_says_why_in_json(as_cora, coras_draft):
    response = as_cora.post(f"/api/v1/articles/{coras_draft.pk}/publish/")
    assert response.status_code == 403
    assert response.json() == {"detail": "You may not publish “Coras draft”.", "code": "permission_denied"}


def test_staff_lists_show_what_each_role_may_see(as_eva, as_cora, anonymous, coras_draft, evas_draft, coras_published):
    def ids(client: Any) -> set[int]:
        return {a["id"] for a in client.get("/api/v1/articles/?page_size=100").json()["results"]}

    assert ids(anonymous) == {coras_published.pk}
    assert ids(as_cora) == {coras_draft.pk, coras_published.pk}
    assert ids(as_eva) == {coras_draft.pk, evas_draft.pk, coras_published.pk}
    drafts = as_eva.get("/api/v1/articles/?status=draft").json()["results"]
    assert {a["id"] for a in drafts} == {coras_draft.pk, evas_draft.pk}


def test_a_published_piece_by_someone_else_is_readable_but_not_writable_by_an_author(as_cora, eva):
    article = services.publish_article(article=services.create_draft(by=eva, title="Evas piece"), by=eva)
    assert as_cora.get(f"/api/v1/articles/{article.pk}/").status_code == 200
    assert as_cora.patch(f"/api/v1/articles/{article.pk}/", {"title": "Mine now"}, format="json").status_code == 403
    assert Article.objects.get(pk=article.pk).title == "Evas piece"


def test_a_scheduled_piece_goes_live_only_at_its_time(as_eva, anonymous, evas_draft, time_machine):
    time_machine.move_to("2026-11-30 10:00Z", tick=False)
    when = timezone.now() + dt.timedelta(hours=2)

    url = f"/api/v1/articles/{evas_draft.pk}/schedule/"
    response = as_eva.post(url, {"publish_at": when.isoformat()}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "scheduled"
    assert dt.datetime.fromisoformat(response.json()["publish_at"]) == when
    assert anonymous.get(f"/api/v1/articles/{evas_draft.pk}/").status_code == 404
    time_machine.move_to(when - dt.timedelta(minutes=1), tick=False)
    assert services.publish_scheduled_articles() == []
    assert anonymous.get(f"/api/v1/articles/{evas_draft.pk}/").status_code == 404
    time_machine.move_to(when, tick=False)
    assert services.publish_scheduled_articles() == [evas_draft.pk]
    response = anonymous.get(f"/api/v1/articles/{evas_draft.pk}/")
    assert response.status_code == 200
    assert dt.datetime.fromisoformat(response.json()["published_at"]) == when
