"""The permission matrix: each role against each action, through the services."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from articles import permissions, services
from articles.models import Article
from tests.support.factories import UserFactory

Status = Article.Status
ROLES = ["editor", "owner", "other_author", "staff_without_role"]

# action: (state the article is in, roles allowed)
MATRIX = {
    "create": (None, {"editor", "owner", "other_author"}),
    "edit_draft": (Status.DRAFT, {"editor", "owner"}),
    "edit_in_review": (Status.IN_REVIEW, {"editor", "owner"}),
    "edit_published": (Status.PUBLISHED, {"editor"}),
    "submit": (Status.DRAFT, {"editor", "owner"}),
    "approve": (Status.IN_REVIEW, {"editor"}),
    "return_to_draft": (Status.IN_REVIEW, {"editor"}),
    "schedule": (Status.APPROVED, {"editor"}),
    "publish": (Status.APPROVED, {"editor"}),
    "unpublish": (Status.PUBLISHED, {"editor"}),
}


def put_in_state(article, state):
    if state in (Status.IN_REVIEW, Status.APPROVED):
        services.submit_for_review(article=article, by=None)
    if state == Status.APPROVED:
        services.approve_article(article=article, by=None)
    if state == Status.PUBLISHED:
        services.publish_article(article=article, by=None)
    article.refresh_from_db()
    assert article.status == state


def perform(action, article, user):
    if action == "create":
        return services.create_draft(by=user, title="Another piece")
    if action.startswith("edit_"):
        return services.update_article(article=article, by=user, standfirst="Changed.")
    if action == "schedule":
        return services.schedule_article(article=article, by=user, publish_at=timezone.now() + timedelta(hours=1))
    name = {
        "submit": "submit_for_review",
        "approve": "approve_article",
        "return_to_draft": "return_to_draft",
        "publish": "publish_article",
        "unpublish": "unpublish_article",
    }[action]
    return getattr(services, name)(article=article, by=user)


# The state each workflow action leaves the article in.
STATUS_AFTER = {
    "submit": Status.IN_REVIEW,
    "approve": Status.APPROVED,
    "return_to_draft": Status.DRAFT,
    "schedule": Status.SCHEDULED,
    "publish": Status.PUBLISHED,
    "unpublish": Status.UNPUBLISHED,
}


def assert_done(action, article, result, status_before):
    """The allowed action really happened, as a user would see it."""
    if action == "create":
        assert (result.title, result.status) == ("Another piece", Status.DRAFT)
        return
    article.refresh_from_db()
    if action.startswith("edit_"):
        assert (article.standfirst, article.status) == ("Changed.", status_before)
    else:
        assert article.status == STATUS_AFTER[action]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(MATRIX))
def test_permission_matrix(action, role, coras_draft, cora, otto, eva):
    users = {"editor": eva, "owner": cora, "other_author": otto, "staff_without_role": UserFactory.create()}
    state, allowed = MATRIX[action]
    if state is not None:
        put_in_state(coras_draft, state)
    before = Article.objects.values().get(pk=coras_draft.pk)
    count_before = Article.objects.count()
    if role in allowed:
        result = perform(action, coras_draft, users[role])
        assert_done(action, coras_draft, result, before["status"])
        assert Article.objects.count() == count_before + (action == "create")
    else:
        with pytest.raises(PermissionDenied):
            perform(action, coras_draft, users[role])
        assert Article.objects.values().get(pk=coras_draft.pk) == before
        assert Article.objects.count() == count_before


def test_allowed_actions_offer_authors_only_submit(coras_draft, cora, eva):
    assert permissions.allowed_actions(cora, coras_draft) == ["submit"]
    assert permissions.allowed_actions(eva, coras_draft) == ["submit", "schedule", "publish"]


def test_an_inactive_editor_can_do_nothing(coras_draft, eva):
    eva.is_active = False
    eva.save()
    with pytest.raises(PermissionDenied):
        services.publish_article(article=coras_draft, by=eva)
