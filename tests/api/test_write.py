"""Staff writing through the API: the CMS roles hold here exactly as in the admin."""

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from articles import services
from articles.models import Article, ArticleTransition
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory, UserFactory

pytestmark = pytest.mark.django_db


def draft_by(user: Any, **fields: Any) -> Article:
    return services.create_draft(by=user, title=fields.pop("title", "A draft in progress"), **fields)


def test_an_editor_creates_publishes_and_reads_back_an_article(as_eva, anonymous):
    TopicFactory.create(slug="energy", name="Energy")
    AuthorFactory.create(slug="mara-velden", name="Mara Velden", role="Energy Correspondent")
    created = as_eva.post(
        "/api/v1/articles/",
        {
            "title": "Interconnectors and the winter",
            "standfirst": "Why cables matter.",
            "body": "<h2>Cables</h2><p>Words.</p><script>alert(1)</script>",
            "authors": ["mara-velden"],
            "topics": ["energy"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    article = created.json()
    assert article["status"] == "draft"
    assert article["slug"] == "interconnectors-and-the-winter"
    assert "<script>" not in article["body"]
    assert anonymous.get(f"/api/v1/articles/{article['id']}/").status_code == 404

    published = as_eva.post(f"/api/v1/articles/{article['id']}/publish/")
    assert published.status_code == 200, published.json()
    assert published.json()["status"] == "published"

    seen = anonymous.get("/api/v1/articles/by-slug/interconnectors-and-the-winter/").json()
    assert seen["authors"][0]["name"] == "Mara Velden"
    assert seen["topic_line"] == "Energy"
    assert seen["published_at"]
    assert ArticleTransition.objects.filter(article_id=article["id"], to_status="published").count() == 1


def test_a_draft_is_signed_by_its_writer_when_no_authors_are_given(as_cora):
    response = as_cora.post("/api/v1/articles/", {"title": "Baltic ferries"}, format="json")
    assert response.status_code == 201
    assert [a["name"] for a in response.json()["authors"]] == ["Cora Lindqvist"]


def test_a_token_made_by_the_management_command_works(eva, capsys):
    call_command("drf_create_token", "eva")
    key = capsys.readouterr().out.split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.post("/api/v1/articles/", {"title": "By token"}, format="json").status_code == 201


def test_session_authentication_works_for_staff(client, eva):
    client.force_login(eva)
    response = client.post("/api/v1/articles/", {"title": "By session"}, content_type="application/json")
    assert response.status_code == 201


def test_updating_changes_fields_and_the_byline_order(as_eva, eva):
    first, second = AuthorFactory.create(slug="first"), AuthorFactory.create(slug="second")
    article = draft_by(eva)
    response = as_eva.patch(
        f"/api/v1/articles/{article.pk}/", {"standfirst": "New summary.", "authors": ["second", "first"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["standfirst"] == "New summary."
    assert [a["slug"] for a in response.json()["authors"]] == ["second", "first"]
    assert [link.author for link in Article.objects.get(pk=article.pk).article_authors.order_by("position")] == [
        second,
        first,
    ]


def test_scheduling_needs_a_future_time(as_eva, eva):
    article = draft_by(eva)
    past = as_eva.post(
        f"/api/v1/articles/{article.pk}/schedule/", {"publish_at": "2020-01-01T09:00:00Z"}, format="json"
    )
    assert past.status_code == 400
    assert "past" in past.json()["detail"]
    when = (timezone.now() + dt.timedelta(days=1)).isoformat()
    future = as_eva.post(f"/api/v1/articles/{article.pk}/schedule/", {"publish_at": when}, format="json")
    assert future.status_code == 200
    assert future.json()["status"] == "scheduled"
    assert future.json()["publish_at"]


def test_an_invalid_step_is_a_400_with_the_reason(as_eva, eva):
    article = draft_by(eva)
    response = as_eva.post(f"/api/v1/articles/{article.pk}/unpublish/")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_transition"
    assert "draft" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "Fine", "authors": ["nobody"]}, "authors"),
        ({"title": "Fine", "topics": "energy"}, "topics"),
        ({"title": "Fine", "canonical_url": "not a url"}, "canonical_url"),
        ({"title": "Fine", "slug": "not a slug"}, "slug"),
        ({"title": "Fine", "editor": "nobody"}, "editor"),
    ],
)
def test_bad_drafts_are_refused_with_the_field_named(as_eva, body, field):
    response = as_eva.post("/api/v1/articles/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Article.objects.count() == 0


def test_an_author_named_twice_is_refused(as_eva):
    AuthorFactory.create(slug="twice")
    response = as_eva.post("/api/v1/articles/", {"title": "T", "authors": ["twice", "twice"]}, format="json")
    assert response.status_code == 400
    assert "once" in response.json()["errors"]["authors"][0]


def test_a_taken_slug_is_refused(as_eva):
    ArticleFactory.create(slug="taken")
    response = as_eva.post("/api/v1/articles/", {"title": "T", "slug": "taken"}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]


def test_malformed_json_is_a_400(as_eva):
    response = as_eva.post("/api/v1/articles/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_wrong_token_is_a_401(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token " + "x" * 40)
    response = anonymous.post("/api/v1/articles/", {"title": "T"}, format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_a_reader_account_without_staff_rights_cannot_write(db):
    reader = UserFactory.create(username="reader", is_staff=False)
    client = APIClient()
    client.force_authenticate(reader)
    response = client.post("/api/v1/articles/", {"title": "T"}, format="json")
    assert response.status_code == 403


def test_whole_replacement_and_deletion_are_not_offered(as_eva, eva):
    article = draft_by(eva)
    assert as_eva.put(f"/api/v1/articles/{article.pk}/", {"title": "New"}, format="json").status_code == 405
    assert as_eva.delete(f"/api/v1/articles/{article.pk}/").status_code == 405
    assert Article.objects.filter(pk=article.pk).exists()
