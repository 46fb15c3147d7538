"""The admin's home and menu as each newsroom role sees them (euro_prospects/admin_site.py)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from articles import services
from articles.models import Article, SiteSettings
from newsletter.models import Subscriber
from tests.support.factories import (
    ArticleFactory,
    AuthorFactory,
    CampaignFactory,
    DeliveryFactory,
    SubscriberFactory,
    UserFactory,
)

Status = Article.Status
HOME = "/admin/"


def menu_of(response):
    sections = response.context["app_list"]
    return {section["name"]: [model["object_name"] for model in section["models"]] for section in sections}


@pytest.fixture
def coras_pieces(cora):
    """Two of Cora's pieces submitted a day apart, one of another writer's drafts, one scheduled piece."""
    with time_machine.travel(timezone.now() - timedelta(days=2), tick=False):
        older = services.create_draft(by=cora, title="Ferry lines change owners", body="<p>Words.</p>")
        services.submit_for_review(article=older, by=cora)
    with time_machine.travel(timezone.now() - timedelta(days=1), tick=False):
        newer = services.create_draft(by=cora, title="Harbour cranes go electric", body="<p>Words.</p>")
        services.submit_for_review(article=newer, by=cora)
    draft = ArticleFactory.create(
        title="Notes on the grid code", status=Status.DRAFT, published_at=None, authors=[AuthorFactory.create()]
    )
    scheduled = ArticleFactory.create(
        title="Budget week preview",
        status=Status.SCHEDULED,
        published_at=None,
        publish_at=timezone.now() + timedelta(hours=5),
    )
    return {"older": older, "newer": newer, "draft": draft, "scheduled": scheduled}


def test_an_editor_arrives_on_the_dashboard_with_the_oldest_submission_first(client, eva, coras_pieces):
    client.force_login(eva)
    response = client.get(HOME)
    dashboard = response.context["dashboard"]
    waiting = [article.title for article in dashboard.waiting]
    assert waiting == ["Ferry lines change owners", "Harbour cranes go electric"]
    assert [article.title for article in dashboard.scheduled] == ["Budget week preview"]
    assert "Notes on the grid code" in [article.title for article in dashboard.drafts]
    page = response.content.decode()
    waiting = page[page.index('id="waiting-for-review"') : page.index('id="scheduled"')]
    assert "Cora Lindqvist" in waiting
    assert "2\xa0days" in waiting  # how long the oldest has waited
    assert waiting.index("Ferry lines change owners") < waiting.index("Harbour cranes go electric")


def test_the_dashboard_shows_the_last_campaigns_with_their_figures_and_today_s_sign_ups(client, eva):
    article = ArticleFactory.create(title="Ports and power")
    campaign = CampaignFactory.create(article=article, recipients=3, status="sending")
    readers = SubscriberFactory.create_batch(3, status=Subscriber.Status.CONFIRMED, confirmed_at=timezone.now())
    DeliveryFactory.create(campaign=campaign, subscriber=readers[0], email=readers[0].email, status="sent")
    DeliveryFactory.create(campaign=campaign, subscriber=readers[1], email=readers[1].email, status="failed")
    DeliveryFactory.create(campaign=campaign, subscriber=readers[2], email=readers[2].email)
    SubscriberFactory.create(status=Subscriber.Status.PENDING)
    client.force_login(eva)
    response = client.get(HOME)
    news = response.context["newsletter_dashboard"]
    shown = news.campaigns[0]
    assert (shown.pk, shown.sent, shown.failed, shown.total) == (campaign.pk, 1, 1, 3)
    assert news.signups_today == 4
    assert news.confirmed_today == 3
    assert news.growth.days[-1].new == 3
    page = response.content.decode()
    assert f'data-progress-url="/admin/newsletter/campaign/{campaign.pk}/progress.json"' in page
    assert '<svg class="growth-chart"' in page


def test_an_author_sees_her_own_pieces_by_state_and_the_editor_s_note(client, cora, eva, coras_pieces):
    services.return_to_draft(article=coras_pieces["older"], by=eva, note="Needs a second source on the sale.")
    client.force_login(cora)
    response = client.get(HOME)
    dashboard = response.context["dashboard"]
    assert not dashboard.is_editor
    assert dashboard.waiting == []
    states = {label: [article.title for article in pieces] for label, pieces in dashboard.own.by_state}
    assert states == {"Draft": ["Ferry lines change owners"], "In review": ["Harbour cranes go electric"]}
    assert [article.title for article in dashboard.own.sent_back] == ["Ferry lines change owners"]
    page = response.content.decode()
    assert "Needs a second source on the sale." in page
    assert "Notes on the grid code" not in page  # someone else's draft
    assert "newsletter_dashboard" not in response.context


def test_an_editor_s_menu_is_the_newsroom_without_the_technical_models(client, eva):
    client.force_login(eva)
    menu = menu_of(client.get(HOME))
    assert menu == {
        "Newsroom": ["Article", "ArticleInReview", "Author", "Topic", "SiteSettings"],
        "Newsletter": ["Campaign", "Subscriber"],
    }


def test_a_superuser_finds_the_technical_models_below_the_newsroom(client, db):
    root = UserFactory.create(username="root", is_superuser=True)
    client.force_login(root)
    response = client.get(HOME)
    menu = menu_of(response)
    assert list(menu)[:2] == ["Newsroom", "Newsletter"]
    technical = [name for section, names in list(menu.items())[2:] for name in names]
    for model in ["Delivery", "Suppression", "User", "Group", "AuthToken", "TOTPDevice", "AccessAttempt"]:
        assert model in technical
    assert all(section.endswith("(technical)") for section in list(menu)[2:])


def test_an_author_s_menu_has_only_what_she_may_open(client, cora):
    client.force_login(cora)
    assert menu_of(client.get(HOME)) == {"Newsroom": ["Article", "Author", "Topic"]}


def test_the_header_names_the_publication_s_newsroom_from_the_site_settings(client, eva):
    settings_row = SiteSettings.load()
    settings_row.site_name = "Baltic Ledger"
    settings_row.save()
    client.force_login(eva)
    page = client.get(HOME).content.decode()
    assert "Baltic Ledger newsroom" in page
    assert "Django administration" not in page
    assert "articles/newsroom-admin.css" in page
