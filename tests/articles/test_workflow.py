from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from articles import services
from articles.models import Article, ArticleTransition
from articles.signals import article_published
from tests.support.people import author_of

Status = Article.Status


@pytest.fixture
def published_signals():
    received = []

    def receiver(sender, article_id, **kwargs):
        received.append(article_id)

    article_published.connect(receiver, weak=False)
    yield received
    article_published.disconnect(receiver)


def test_a_correspondents_draft_has_them_as_byline(coras_draft, cora):
    assert coras_draft.status == Status.DRAFT
    assert coras_draft.created_by == cora
    assert [a.author for a in coras_draft.article_authors.all()] == [author_of(cora)]
    assert coras_draft.slug == "grid-talks-stall-again"


def test_the_newsroom_day_moves_a_piece_from_draft_to_scheduled(coras_draft, cora, eva):
    services.submit_for_review(article=coras_draft, by=cora)
    services.approve_article(article=coras_draft, by=eva)
    when = timezone.now() + timedelta(hours=2)
    article = services.schedule_article(article=coras_draft, by=eva, publish_at=when)
    assert article.status == Status.SCHEDULED
    assert article.publish_at == when
    steps = list(article.transitions.values_list("from_status", "to_status", "by__username"))
    assert steps == [
        ("", "draft", "cora"),
        ("draft", "in_review", "cora"),
        ("in_review", "approved", "eva"),
        ("approved", "scheduled", "eva"),
    ]


def test_each_transition_records_who_and_when(coras_draft, cora):
    before = timezone.now()
    services.submit_for_review(article=coras_draft, by=cora)
    step = ArticleTransition.objects.get(article=coras_draft, to_status=Status.IN_REVIEW)
    assert step.by == cora
    assert step.at >= before


def test_an_invalid_transition_raises_a_clear_error_and_changes_nothing(coras_draft, eva):
    with pytest.raises(services.InvalidTransition, match="Cannot approve “Grid talks stall again”: it is draft"):
        services.approve_article(article=coras_draft, by=eva)
    coras_draft.refresh_from_db()
    assert coras_draft.status == Status.DRAFT
    assert coras_draft.transitions.count() == 1


def test_unpublishing_a_draft_is_refused(coras_draft, eva):
    with pytest.raises(services.InvalidTransition):
        services.unpublish_article(article=coras_draft, by=eva)


def test_scheduling_in_the_past_is_refused(coras_draft, eva):
    with pytest.raises(services.InvalidTransition, match="in the past"):
        services.schedule_article(article=coras_draft, by=eva, publish_at=timezone.now() - timedelta(minutes=1))
    coras_draft.refresh_from_db()
    assert coras_draft.status == Status.DRAFT
    assert coras_draft.publish_at is None


def test_publishing_sets_the_date_and_sends_one_signal_after_commit(
    coras_draft, eva, published_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        article = services.publish_article(article=coras_draft, by=eva)
    assert article.status == Status.PUBLISHED
    assert article.published_at is not None
    assert published_signals == [article.pk]
    assert Article.objects.published().filter(pk=article.pk).exists()


def test_no_signal_before_the_transaction_commits(
    coras_draft, eva, published_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.publish_article(article=coras_draft, by=eva)
    assert published_signals == []
    for callback in callbacks:
        callback()
    assert len(published_signals) == 1


def test_a_refused_publish_sends_no_signal(
    coras_draft, cora, eva, published_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(PermissionDenied):
            services.publish_article(article=coras_draft, by=cora)
        services.publish_article(article=coras_draft, by=eva)
        with pytest.raises(services.InvalidTransition):
            services.publish_article(article=coras_draft, by=eva)
    assert published_signals == [coras_draft.pk]


def test_unpublish_and_republish_keep_the_first_publication_date(coras_draft, eva):
    first = services.publish_article(article=coras_draft, by=eva).published_at
    services.unpublish_article(article=coras_draft, by=eva)
    assert not Article.objects.published().filter(pk=coras_draft.pk).exists()
    assert services.publish_article(article=coras_draft, by=eva).published_at == first


def test_an_editor_can_send_a_piece_back_to_draft(coras_draft, cora, eva):
    services.submit_for_review(article=coras_draft, by=cora)
    services.return_to_draft(article=coras_draft, by=eva, note="Needs sources")
    assert coras_draft.status == Status.DRAFT
    assert coras_draft.transitions.last().note == "Needs sources"


def test_update_refuses_to_change_the_status_directly(coras_draft, eva):
    with pytest.raises(services.InvalidTransition):
        services.update_article(article=coras_draft, by=eva, status=Status.PUBLISHED)
    coras_draft.refresh_from_db()
    assert coras_draft.status == Status.DRAFT


def test_every_saved_change_is_kept_as_a_revision(coras_draft, cora, eva):
    services.update_article(article=coras_draft, by=cora, title="Grid talks resume")
    services.update_article(article=coras_draft, by=eva, standfirst="An edited summary.")
    revisions = list(coras_draft.history.order_by("history_date"))
    assert [r.history_user for r in revisions] == [cora, cora, eva]
    delta = revisions[2].diff_against(revisions[1])
    assert delta.changed_fields == ["standfirst"]
    assert revisions[1].title == "Grid talks resume"
    assert revisions[0].title == "Grid talks stall again"
