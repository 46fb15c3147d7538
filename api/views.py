"""The REST API under /api/v1/: thin views over QuerySets (reads) and services (writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from api.permissions import CanChangeCampaigns, CanWatchCampaigns, IsStaffOrReadOnly
from api.serializers import (
    ArticleSerializer,
    ArticleWriteSerializer,
    AuthorSerializer,
    CampaignSerializer,
    CampaignStatsSerializer,
    MessageSerializer,
    ScheduleSerializer,
    SubscribeSerializer,
    TopicSerializer,
)
from articles import permissions, selectors, services
from articles.models import Article, Author, SiteSettings, Topic
from newsletter import sending
from newsletter import views as newsletter_views
from newsletter.engagement.figures import campaign_figures
from newsletter.forms import SubscribeForm
from newsletter.models import Campaign, Subscriber
from newsletter.selectors import with_totals

# Path ids longer than this cannot be a row (and would overflow the database's bigint).
ID_PATTERN = r"[0-9]{1,18}"
SLUG_PATTERN = r"[-a-zA-Z0-9_]+"


class ArticleFilter(filters.FilterSet):
    topic = filters.CharFilter(field_name="topics__slug", help_text="A topic's slug.")
    author = filters.CharFilter(field_name="authors__slug", help_text="An author's slug.")
    published_after = filters.DateFilter(
        field_name="published_at__date", lookup_expr="gte", help_text="Published on or after this date (YYYY-MM-DD)."
    )
    status = filters.ChoiceFilter(choices=Article.Status.choices, help_text="Staff: articles in this state.")
    published_before = filters.DateFilter(
        field_name="published_at__date", lookup_expr="lte", help_text="Published on or before this date (YYYY-MM-DD)."
    )

    class Meta:
        model = Article
        fields = ["topic", "author", "published_after", "published_before", "status"]


def visible_articles(user: Any) -> QuerySet[Article]:
    """Published articles for everyone; all of them for Editors; Authors add their own."""
    published = Article.objects.published()
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return published
    if permissions.is_editor(user):
        return Article.objects.all()
    own = Article.objects.owned_by(user).values("pk")
    return Article.objects.filter(Q(pk__in=published.values("pk")) | Q(pk__in=own))


def _with_anatomy(articles: QuerySet[Article]) -> QuerySet[Article]:
    """Everything the serializer shows, in a fixed number of queries whatever the page size."""
    return articles.select_related("editor").prefetch_related(*selectors.credits_prefetches())


class WorkflowError(exceptions.APIException):
    status_code = 400
    default_code = "invalid_transition"


class ArticleViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet[Article]):
    """Articles. Anyone reads the published ones; staff see and write more, as their CMS role allows.

    Editors see every article; Authors see the published ones and their own.
    Every write goes through the same service functions as the admin.
    """

    serializer_class = ArticleSerializer
    filterset_class = ArticleFilter
    lookup_value_regex = ID_PATTERN
    permission_classes = [IsStaffOrReadOnly]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Article]:
        return _with_anatomy(visible_articles(self.request.user))

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["default_disclaimer"] = SiteSettings.load().default_disclaimer
        return context

    def _answer(self, article: Article, status: int = 200) -> Response:
        article = _with_anatomy(Article.objects.all()).get(pk=article.pk)
        return Response(self.get_serializer(article).data, status=status)

    @extend_schema(request=ArticleWriteSerializer, responses={201: ArticleSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a draft. Authors sign it with their own profile unless `authors` is given."""
        writing = ArticleWriteSerializer(data=request.data)
        writing.is_valid(raise_exception=True)
        fields = dict(writing.validated_data)
        article = services.create_draft(
            by=request.user, authors=fields.pop("authors", None), topics=fields.pop("topics", None), **fields
        )
        return self._answer(article, status=201)

    @extend_schema(request=ArticleWriteSerializer, responses=ArticleSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change some fields of an article (not its status: use the workflow actions)."""
        article = self.get_object()
        writing = ArticleWriteSerializer(article, data=request.data, partial=True)
        writing.is_valid(raise_exception=True)
        fields = dict(writing.validated_data)
        article = services.update_article(
            article=article, by=request.user, authors=fields.pop("authors", None), topics=fields.pop("topics", None),
            **fields,
        )  # fmt: skip
        return self._answer(article)

    def _step(self, step: Callable[..., Article], **arguments: Any) -> Response:
        article = self.get_object()
        try:
            article = step(article=article, by=self.request.user, **arguments)
        except services.InvalidTransition as exc:
            raise WorkflowError(str(exc)) from exc
        return self._answer(article)

    @extend_schema(request=None, responses=ArticleSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Submit an article for review."""
        return self._step(services.submit_for_review)

    @extend_schema(request=None, responses=ArticleSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Approve an article in review (Editors)."""
        return self._step(services.approve_article)

    @extend_schema(request=ScheduleSerializer, responses=ArticleSerializer)
    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, pk: str) -> Response:
        """Schedule an article to go live at `publish_at` (Editors)."""
        when = ScheduleSerializer(data=request.data)
        when.is_valid(raise_exception=True)
        return self._step(services.schedule_article, publish_at=when.validated_data["publish_at"])

    @extend_schema(request=None, responses=ArticleSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str) -> Response:
        """Publish an article now (Editors); subscribers get it by email."""
        return self._step(services.publish_article)

    @extend_schema(request=None, responses=ArticleSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, pk: str) -> Response:
        """Take a published article off the site (Editors)."""
        return self._step(services.unpublish_article)

    @extend_schema(responses=ArticleSerializer)
    @action(detail=False, url_path=f"by-slug/(?P<slug>{SLUG_PATTERN})", filterset_class=None, pagination_class=None)
    def by_slug(self, request: Request, slug: str) -> Response:
        """An article by its slug, the last part of its address on the site."""
        article = self.get_queryset().filter(slug=slug).first()
        if article is None:
            raise exceptions.NotFound("No article you may see has this slug.")
        return Response(self.get_serializer(article).data)


class TopicViewSet(viewsets.ReadOnlyModelViewSet[Topic]):
    queryset = Topic.objects.all()
    serializer_class = TopicSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN
    permission_classes = [AllowAny]


class AuthorViewSet(viewsets.ReadOnlyModelViewSet[Author]):
    queryset = Author.objects.all()
    serializer_class = AuthorSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN
    permission_classes = [AllowAny]


class CampaignViewSet(viewsets.ReadOnlyModelViewSet[Campaign]):
    """Newsletter campaigns, newest first, with their progress (Editors)."""

    serializer_class = CampaignSerializer
    permission_classes = [CanWatchCampaigns]
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Campaign]:
        return with_totals(Campaign.objects.select_related("article")).order_by("-created_at", "-pk")

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: MessageSerializer})
    @action(detail=True, methods=["post"], permission_classes=[CanChangeCampaigns])
    def resume(self, request: Request, pk: str) -> Response:
        """Resume a paused campaign (Editors): each reader not yet sent to gets the email once."""
        campaign = self.get_object()
        try:
            sending.resume_campaign(campaign=campaign)
        except sending.NotPaused as exc:
            raise CampaignNotPaused(str(exc)) from exc
        return Response(self.get_serializer(self.get_queryset().get(pk=campaign.pk)).data)

    @extend_schema(responses=CampaignStatsSerializer)
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        """What happened after sending: clicks, scanner hits, visits, unsubscribes, bounces, complaints."""
        return Response(CampaignStatsSerializer(campaign_figures(self.get_object())).data)


class CampaignNotPaused(exceptions.APIException):
    status_code = 409
    default_code = "not_paused"


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
def not_found(request: Request, *args: object, **kwargs: object) -> Response:
    """Unknown addresses under /api/ answer JSON, not the site's HTML 404 page."""
    raise exceptions.NotFound("There is nothing at this address. The API starts at /api/v1/.")


@extend_schema(request=SubscribeSerializer, responses={202: MessageSerializer})
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@parser_classes([JSONParser, FormParser])
def subscribe(request: Request) -> Response:
    """Subscribe to the newsletter: the sign-up form's double opt-in, answered in JSON.

    The answer is the same whether the address is new, pending or already
    subscribed, so nobody can learn who reads us; a confirmation link goes by
    email. Shares the form's rate limits (per IP and per address).
    """
    if not newsletter_views.ip_allowed(request, "subscribe"):
        raise exceptions.Throttled(detail=newsletter_views.RATE_LIMITED)
    incoming = SubscribeSerializer(data=request.data)
    incoming.is_valid(raise_exception=True)
    form = SubscribeForm(dict(incoming.validated_data))
    if not form.is_valid():
        raise exceptions.ValidationError({field: [str(m) for m in messages] for field, messages in form.errors.items()})
    email = form.cleaned_data["email"]
    if not form.is_bot():
        if not newsletter_views.address_allowed(email, "subscribe"):
            raise exceptions.Throttled(detail=newsletter_views.RATE_LIMITED)
        newsletter_views.subscribe_from(form, request, source=Subscriber.Source.API, consent_source="api")
    return Response({"detail": "Check your inbox: we sent a link to confirm the subscription."}, status=202)
