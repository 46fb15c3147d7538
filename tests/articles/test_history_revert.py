"""History → Revert is an edit of the current article: the same rules, the workflow log, no workflow fields."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from articles import services
from articles.models import Article, ArticleTransition
from tests.support.factories import AuthorFactory

Status = Article.Status


def version_url(article: Article, version: Any) -> str:
    return f"/admin/articles/article/{article.pk}/history/{version.history_id}/"


def first_version(article: Article) -> Any:
    return article.history.earliest("history_date")


@pytest.fixture
def coras_published(coras_draft, cora, eva):
    services.update_article(article=coras_draft, by=cora, title="Grid talks stall, then resume", body="<p>Later.</p>")
    return services.publish_article(article=coras_draft, by=eva)


def test_a_correspondent_cannot_rewrite_a_published_piece_through_history(client, cora, coras_published):
    client.force_login(cora)
    url = version_url(coras_published, first_version(coras_published))
    response = client.post(url, {"title": "Rewritten after publication", "slug": coras_published.slug})
    assert response.status_code == 403
    article = Article.objects.get(pk=coras_published.pk)
    assert (article.title, article.body, article.status) == (
        "Grid talks stall, then resume",
        "<p>Later.</p>",
        Status.PUBLISHED,
    )
    assert not ArticleTransition.objects.filter(article=article, note__startswith="Restored").exists()


def test_the_version_page_offers_a_correspondent_no_revert_on_a_published_piece(client, cora, coras_published):
    client.force_login(cora)
    page = client.get(version_url(coras_published, first_version(coras_published))).content.decode()
    assert "Grid talks stall again" in page  # the old version is shown
    assert "Press the 'Revert' button" not in page
    assert 'name="_save"' not in page


def test_an_editors_revert_restores_the_text_but_no_workflow_or_newsletter_field(client, eva, coras_draft):
    reviewer = AuthorFactory.create(name="Ilse Reviewer", slug="ilse-reviewer")
    when = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    services.update_article(
        article=coras_draft,
        by=eva,
        title="A later title",
        body="<p>Later text.</p>",
        editor=reviewer,
        is_featured=True,
        send_to_subscribers=False,
        publish_at=when,
    )
    services.publish_article(article=coras_draft, by=eva)
    client.force_login(eva)
    response = client.post(version_url(coras_draft, first_version(coras_draft)))
    assert response.status_code == 302
    article = Article.objects.get(pk=coras_draft.pk)
    assert (article.title, article.body) == ("Grid talks stall again", "<p>Words.</p>")
    assert article.status == Status.PUBLISHED
    assert (article.editor, article.is_featured, article.send_to_subscribers) == (reviewer, True, False)
    assert article.publish_at == when
    step = ArticleTransition.objects.filter(article=article).last()
    assert step is not None
    assert (step.from_status, step.to_status, step.by) == (Status.PUBLISHED, Status.PUBLISHED, eva)
    assert step.note.startswith("Restored the version of ")


def test_a_correspondents_revert_of_an_approved_piece_sends_it_back_to_review(client, cora, eva, coras_draft):
    services.update_article(article=coras_draft, by=cora, title="A reviewed title")
    services.submit_for_review(article=coras_draft, by=cora)
    services.approve_article(article=coras_draft, by=eva)
    client.force_login(cora)
    assert client.post(version_url(coras_draft, first_version(coras_draft))).status_code == 302
    article = Article.objects.get(pk=coras_draft.pk)
    assert article.title == "Grid talks stall again"
    assert article.status == Status.IN_REVIEW
    step = ArticleTransition.objects.filter(article=article).last()
    assert step is not None
    assert (step.from_status, step.to_status, step.by) == (Status.APPROVED, Status.IN_REVIEW, cora)
    assert "back to review" in step.note


def test_a_revert_through_the_service_follows_the_rules_of_the_current_state(cora, coras_published):
    with pytest.raises(PermissionDenied):
        services.restore_version(article=coras_published, by=cora, history_id=first_version(coras_published).history_id)
    assert Article.objects.get(pk=coras_published.pk).title == "Grid talks stall, then resume"


def test_an_unknown_version_is_a_404(client, eva, coras_draft):
    client.force_login(eva)
    assert client.post(f"/admin/articles/article/{coras_draft.pk}/history/999999/").status_code == 404
    assert client.post(f"/admin/articles/article/{coras_draft.pk}/history/abc/").status_code == 404
