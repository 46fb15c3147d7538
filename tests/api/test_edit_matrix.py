"""The whole edit matrix, role x field x state, through the admin form and the API: the same answer from both.

Each cell tries to change one field of Cora's piece in one workflow state, as one
role, once through the admin's change form and once through ``PATCH /api/v1/articles/ID/``,
and compares what happened (did the field change, which state is the piece in) with
each other and with ``articles.permissions.EDIT_RULES``. ``hero_image`` is left out: the
API takes no uploads (the admin's image upload is covered in tests/articles/test_admin.py).
"""

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from articles import permissions, services
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic
from articles.roles import AUTHORS
from tests.support.factories import AuthorFactory, TopicFactory
from tests.support.people import client_with_token, member_of

pytestmark = pytest.mark.django_db
Status = Article.Status
FIELDS = [field for field in permissions.EDIT_RULES if field != "hero_image"]
TEXT_FIELDS = [
    "title", "slug", "standfirst", "body", "hero_image_alt", "hero_image_credit",
    "disclaimer", "meta_title", "meta_description", "canonical_url",
]  # fmt: skip
LATER = (timezone.now() + timedelta(days=30)).replace(microsecond=0)


@pytest.fixture
def otto(db: None) -> Any:
    """Otto, another correspondent."""
    user = member_of(AUTHORS, username="otto", email="otto@example.org")
    AuthorFactory.create(name="Otto Brandl", slug="otto-brandl", user=user)
    return user


def new_values(reviewer: Author, otto: Author, economy: Topic) -> dict[str, tuple[Any, Any]]:
    """field -> (what the API is sent, what the field holds when the change happened)."""
    return {
        "title": ("A title changed", "A title changed"),
        "slug": ("a-slug-changed", "a-slug-changed"),
        "standfirst": ("A standfirst changed.", "A standfirst changed."),
        "body": ("<p>A body changed.</p>", "<p>A body changed.</p>"),
        "hero_image_alt": ("An alt text changed", "An alt text changed"),
        "hero_image_credit": ("A credit changed", "A credit changed"),
        "topics": (["economy"], ["economy"]),
        "disclaimer": ("A disclaimer changed.", "A disclaimer changed."),
        "meta_title": ("A meta title changed", "A meta title changed"),
        "meta_description": ("A meta description changed", "A meta description changed"),
        "canonical_url": ("https://elsewhere.example/piece", "https://elsewhere.example/piece"),
        "authors": (["cora-lindqvist", "otto-brandl"], ["cora-lindqvist", "otto-brandl"]),
        "editor": ("ilse-moravec", "ilse-moravec"),
        "is_featured": (True, True),
        "send_to_subscribers": (False, False),
        "publish_at": (LATER.isoformat(), LATER),
        "status": ("published", "published"),
        "published_at": ("2030-01-01T09:00:00Z", "2030-01-01T09:00:00Z"),
    }


def observed(article: Article, field: str) -> Any:
    article = Article.objects.get(pk=article.pk)
    if field == "topics":
        return [link.topic.slug for link in ArticleTopic.objects.filter(article=article).order_by("position")]
    if field == "authors":
        return [link.author.slug for link in ArticleAuthor.objects.filter(article=article).order_by("position")]
    if field == "editor":
        return article.editor.slug if article.editor else None
    if field == "published_at":
        return article.published_at.isoformat().replace("+00:00", "Z") if article.published_at else None
    return getattr(article, field)


def put_in_state(article: Article, state: str) -> None:
    if state in (Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED):
        services.submit_for_review(article=article, by=None)
    if state in (Status.APPROVED, Status.SCHEDULED):
        services.approve_article(article=article, by=None)
    if state == Status.SCHEDULED:
        services.schedule_article(article=article, by=None, publish_at=LATER - timedelta(days=1))
    if state in (Status.PUBLISHED, Status.UNPUBLISHED):
        services.publish_article(article=article, by=None)
    if state == Status.UNPUBLISHED:
        services.unpublish_article(article=article, by=None)
    assert Article.objects.get(pk=article.pk).status == state


def admin_form(article: Article, field: str, value: Any, otto: Author, economy: Topic) -> dict[str, Any]:
    """The change form as the page posts it, with ``field`` changed."""
    article = Article.objects.get(pk=article.pk)
    data: dict[str, Any] = {name: getattr(article, name) for name in TEXT_FIELDS}
    data["editor"] = article.editor_id or ""
    when = timezone.localtime(article.publish_at) if article.publish_at else None
    data["publish_at_0"] = when.strftime("%Y-%m-%d") if when else ""
    data["publish_at_1"] = when.strftime("%H:%M:%S") if when else ""
    for flag in ["is_featured", "send_to_subscribers"]:
        if getattr(article, flag):
            data[flag] = "on"
    for prefix in ["article_authors", "article_topics", "transitions"]:
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    if field in ("editor",):
        data["editor"] = Author.objects.get(slug=value).pk
    elif field == "publish_at":
        local = timezone.localtime(value)
        data["publish_at_0"], data["publish_at_1"] = local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")
    elif field in ("is_featured", "send_to_subscribers"):
        if value:
            data[field] = "on"
        else:
            data.pop(field, None)
    elif field == "topics":
        [topic_link] = ArticleTopic.objects.filter(article=article)
        data.update(
            {
                "article_topics-TOTAL_FORMS": "1",
                "article_topics-INITIAL_FORMS": "1",
                "article_topics-0-id": topic_link.pk,
                "article_topics-0-article": article.pk,
                "article_topics-0-topic": economy.pk,
                "article_topics-0-position": "0",
            }
        )
    elif field == "authors":
        [author_link] = ArticleAuthor.objects.filter(article=article)
        data.update(
            {
                "article_authors-TOTAL_FORMS": "2",
                "article_authors-INITIAL_FORMS": "1",
                "article_authors-0-id": author_link.pk,
                "article_authors-0-article": article.pk,
                "article_authors-0-author": author_link.author_id,
                "article_authors-0-position": "0",
                "article_authors-1-article": article.pk,
                "article_authors-1-author": otto.pk,
                "article_authors-1-position": "1",
            }
        )
    else:
        data[field] = value
    return data


def attempt(change: Any) -> tuple[bool, str]:
    """Run ``change`` and undo it afterwards; return (did the field change, the state it left the piece in)."""
    savepoint = transaction.savepoint()
    try:
        return change()
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.mark.parametrize("state", permissions.EDIT_STATES)
@pytest.mark.parametrize("role", ["editor", "owner", "other_author"])
def test_the_admin_and_the_api_give_the_same_answer_in_every_cell(role, state, cora, otto, eva):
    reviewer = AuthorFactory.create(name="Ilse Moravec", slug="ilse-moravec")
    energy = TopicFactory.create(name="Energy", slug="energy")
    economy = TopicFactory.create(name="Economy", slug="economy")
    otto_profile = Author.objects.get(user=otto)
    article = services.create_draft(by=cora, title="Ferries in the Baltic", body="<p>Text.</p>", topics=[energy])
    put_in_state(article, state)
    user = {"editor": eva, "owner": cora, "other_author": otto}[role]
    api = client_with_token(user)
    admin = Client()
    admin.force_login(user)
    values = new_values(reviewer, otto_profile, economy)
    url = f"/admin/articles/article/{article.pk}/change/"
    differences = []
    for field in FIELDS:
        sent, held = values[field]

        before = observed(article, field)

        def outcome(field: str = field, held: Any = held, before: Any = before) -> tuple[bool, str]:
            changed = before != held and observed(article, field) == held
            return changed, Article.objects.get(pk=article.pk).status

        def through_admin(field: str = field, held: Any = held, sent: Any = sent) -> tuple[bool, str]:
            form_value = held if field in ("publish_at",) else sent
            admin.post(url, admin_form(article, field, form_value, otto_profile, economy))
            return outcome()

        def through_api(field: str = field, sent: Any = sent) -> tuple[bool, str]:
            api.patch(f"/api/v1/articles/{article.pk}/", {field: sent}, format="json")
            return outcome()

        access = permissions.field_access(field, state)
        may = before != held and permissions.role_may({"editor": "editor", "owner": "author"}.get(role), access)
        back_to_review = may and role == "owner" and access is permissions.Access.REVIEW
        expected = (may, Status.IN_REVIEW if back_to_review else state)
        answers = {"admin": attempt(through_admin), "api": attempt(through_api), "rule": expected}
        if len(set(answers.values())) != 1:
            differences.append((field, answers))
    assert differences == []


def test_the_table_gives_authors_these_fields(cora, eva):
    """The rule as docs/editorial.md states it, spelled out (the table could be wrong in the same way as the code)."""
    article = services.create_draft(by=cora, title="Ferries in the Baltic")
    content = [
        "title", "slug", "standfirst", "body", "hero_image", "hero_image_alt", "hero_image_credit",
        "topics", "disclaimer", "meta_title", "meta_description",
    ]  # fmt: skip
    every = [*content, "canonical_url", "authors", "editor", "is_featured", "send_to_subscribers", "publish_at"]
    for state, for_authors in [
        (Status.DRAFT, content),
        (Status.IN_REVIEW, content),
        (Status.APPROVED, content),
        (Status.SCHEDULED, content),
        (Status.PUBLISHED, []),
        (Status.UNPUBLISHED, []),
    ]:
        article.status = state
        assert permissions.editable_fields(cora, article) == for_authors, state
        assert permissions.editable_fields(eva, article) == every, state
        assert permissions.editable_fields(None, article) == [], state
    assert permissions.editable_fields(cora, None) == content
