"""Authors write through the API under the same rules as in the admin (articles.permissions.EDIT_RULES)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from articles import services
from articles.models import Article, ArticleTransition
from tests.support.factories import AuthorFactory

pytestmark = pytest.mark.django_db
Status = Article.Status

# What the admin shows Authors read-only, and what they tried to set through the API.
EDITORS_CALL = [
    ("editor", "ilse-moravec"),
    ("is_featured", True),
    ("send_to_subscribers", False),
    ("canonical_url", "https://elsewhere.example/first-printed-here"),
    ("authors", ["otto-brandl"]),
    ("publish_at", "2100-01-01T09:00:00Z"),
]


@pytest.fixture(autouse=True)
def other_profiles(db):
    AuthorFactory.create(name="Ilse Moravec", slug="ilse-moravec", role="Managing Editor")
    AuthorFactory.create(name="Otto Brandl", slug="otto-brandl")


@pytest.fixture
def coras_draft(cora):
    return services.create_draft(by=cora, title="Ferries in the Baltic", body="<p>First text.</p>")


def snapshot(article: Article) -> dict[str, object]:
    row: dict[str, object] = dict(Article.objects.values().get(pk=article.pk))
    row.pop("updated_at")
    return {**row, "authors": [link.author.slug for link in row_links(article)]}


def row_links(article: Article) -> list:
    return list(article.article_authors.select_related("author").order_by("position"))


@pytest.mark.parametrize(("field", "value"), EDITORS_CALL)
def test_an_author_cannot_change_what_only_editors_decide(as_cora, coras_draft, field, value):
    before = snapshot(coras_draft)
    response = as_cora.patch(f"/api/v1/articles/{coras_draft.pk}/", {field: value}, format="json")
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "permission_denied"
    assert snapshot(coras_draft) == before


@pytest.mark.parametrize(("field", "value"), EDITORS_CALL)
def test_an_author_cannot_create_a_draft_with_what_only_editors_decide(as_cora, field, value):
    response = as_cora.post("/api/v1/articles/", {"title": "A new piece", field: value}, format="json")
    assert response.status_code == 403, response.json()
    assert not Article.objects.exists()


def test_an_author_may_name_their_own_byline_when_creating(as_cora):
    response = as_cora.post("/api/v1/articles/", {"title": "Mine", "authors": ["cora-lindqvist"]}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(("field", "value"), EDITORS_CALL)
def test_an_editor_may_change_them(as_eva, coras_draft, field, value):
    response = as_eva.patch(f"/api/v1/articles/{coras_draft.pk}/", {field: value}, format="json")
    assert response.status_code == 200, response.json()


def approved(article: Article, cora, eva) -> Article:
    services.submit_for_review(article=article, by=cora)
    return services.approve_article(article=article, by=eva)


def test_an_authors_change_after_approval_sends_the_piece_back_to_review(as_cora, cora, eva, coras_draft):
    approved(coras_draft, cora, eva)
    response = as_cora.patch(f"/api/v1/articles/{coras_draft.pk}/", {"body": "<p>Unreviewed.</p>"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "in_review"
    step = ArticleTransition.objects.filter(article=coras_draft).last()
    assert step is not None
    assert (step.from_status, step.to_status, step.by) == (Status.APPROVED, Status.IN_REVIEW, cora)


def test_an_authors_change_to_a_scheduled_piece_stops_it_going_live_unreviewed(as_cora, cora, eva, coras_draft):
    approved(coras_draft, cora, eva)
    services.schedule_article(article=coras_draft, by=eva, publish_at=timezone.now() + timedelta(minutes=5))
    response = as_cora.patch(f"/api/v1/articles/{coras_draft.pk}/", {"title": "Unreviewed title"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "in_review"
    Article.objects.filter(pk=coras_draft.pk).update(publish_at=timezone.now() - timedelta(minutes=1))
    assert services.publish_scheduled_articles() == []
    assert Article.objects.get(pk=coras_draft.pk).status == Status.IN_REVIEW


def test_an_editors_change_after_approval_keeps_the_state(as_eva, cora, eva, coras_draft):
    approved(coras_draft, cora, eva)
    response = as_eva.patch(f"/api/v1/articles/{coras_draft.pk}/", {"title": "Edited title"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"


def test_a_patch_that_repeats_the_current_values_changes_nothing_and_is_allowed(as_cora, coras_draft):
    response = as_cora.patch(
        f"/api/v1/articles/{coras_draft.pk}/",
        {"title": "Ferries in the Baltic", "send_to_subscribers": True, "authors": ["cora-lindqvist"]},
        format="json",
    )
    assert response.status_code == 200


def test_the_author_api_shows_nobody_an_address(as_cora, as_eva, cora):
    AuthorFactory.create(name="Has Address", slug="has-address", email="private@example.org")
    for client in (as_cora, as_eva):
        assert "private@example.org" not in client.get("/api/v1/authors/?page_size=100").content.decode()
        assert "private@example.org" not in client.get("/api/v1/authors/has-address/").content.decode()
