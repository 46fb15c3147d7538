from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from anymail.exceptions import AnymailError
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from articles.admin import ArticleAdmin
from articles.models import Article
from euro_prospects.celery import QueueUnavailable
from euro_prospects.emails import failure_reason, worth_retrying
from euro_prospects.text import spreadsheet_cell
from newsletter import corrections, sending, services
from newsletter.admin_corrections import correction_panel, correction_urls
from newsletter.digests import preview_digest
from newsletter.engagement.admin import ReaderClickInline
from newsletter.imports import start_import_job
from newsletter.models import Campaign, Delivery, ImportJob, Subscriber, Suppression
from newsletter.selectors import campaign_progress, confirmed_by_week
from newsletter.sending.message import CampaignEmail, Recipient, UnsendableAddress, render_campaign_email

EXPORT_FIELDS = ["email", "name", "status", "source", "all_topics", "topics", "cadence", "created_at", "confirmed_at"]
# The campaign of an article published this recently may still be on its way to a worker.
CAMPAIGN_STARTS_WITHIN = timedelta(minutes=10)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row: email, optional name and topics (slugs separated by ';').")
    confirmed = forms.BooleanField(
        required=False, help_text="These readers consented elsewhere: import them confirmed, send no confirmation."
    )

    def clean_file(self) -> Any:
        """Refuse at once a file whose first line is no header with an 'email' column."""
        upload = self.cleaned_data["file"]
        head = upload.read(64 * 1024)
        upload.seek(0)
        first_line = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
        columns = next(csv.reader(first_line), [])
        if "email" not in [column.strip().lower() for column in columns]:
            raise forms.ValidationError(
                "The first row must be a header with an 'email' column (optional: name, topics).", code="no_header"
            )
        return upload


class _Echo:
    def write(self, value: str) -> str:
        return value


class SubscriberForm(forms.ModelForm):
    """The admin's add and change form stores the address as sign-up does (ASCII domain)."""

    class Meta:
        model = Subscriber
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets and read-only fields decide what shows

    def clean_email(self) -> str:
        try:
            return services.normalise_email(self.cleaned_data["email"])
        except services.InvalidEmail as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberForm
    list_display = ["email", "name", "status", "source", "all_topics", "soft_bounce_count", "created_at"]
    list_filter = ["status", "source", "topics", "all_topics", "cadence"]
    search_fields = ["email", "name"]
    readonly_fields = [
        "consent_at",
        "consent_source",
        "consent_ip",
        "consent_user_agent",
        "consent_version",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "confirmation_sent_at",
        "suppressed_at",
        "suppression_reason",
        "soft_bounce_count",
    ]
    actions = ["export_csv", "undo_suppression", "email_data_export", "erase"]
    inlines = [ReaderClickInline]
    change_list_template = "admin/newsletter/subscriber/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="newsletter_subscriber_import"),
            path(
                "import/<int:pk>/",
                self.admin_site.admin_view(self.import_job_view),
                name="newsletter_subscriber_import_job",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        counts = dict(Subscriber.objects.values_list("status").annotate(count=Count("id")).order_by())
        extra_context = {
            **(extra_context or {}),
            "status_counts": [(label, counts.get(value, 0)) for value, label in Subscriber.Status.choices],
            "confirmed_chart": confirmed_by_week(),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV: a worker imports it (ImportJob) while the job's page shows the progress."""
        if not self.has_add_permission(request):
            return HttpResponse("You may not add subscribers.", status=403)
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            job = start_import_job(
                upload=form.cleaned_data["file"], confirmed=form.cleaned_data["confirmed"], by=request.user
            )
            return HttpResponseRedirect(reverse("admin:newsletter_subscriber_import_job", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "jobs": ImportJob.objects.select_related("created_by")[:10],
        }
        return TemplateResponse(request, "admin/newsletter/subscriber/import.html", context)

    def import_job_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse("You may not add subscribers.", status=403)
        job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import of {job.file_name}",
            "job": job,
            "reasons": sorted(job.skipped_by_reason.items()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/subscriber/import_job.html", context)

    @admin.action(description="Export selected subscribers as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> StreamingHttpResponse:
        writer = csv.writer(_Echo())

        def rows() -> Iterator[str]:
            yield writer.writerow(EXPORT_FIELDS)
            for subscriber in queryset.prefetch_related("topics").iterator(chunk_size=2000):
                topics = ";".join(topic.slug for topic in subscriber.topics.all())
                # Readers choose their own names (and addresses): a cell a spreadsheet
                # would run as a formula is written as text.
                cells = [
                    subscriber.email,
                    subscriber.name,
                    subscriber.status,
                    subscriber.source,
                    subscriber.all_topics,
                    topics,
                    subscriber.cadence,
                    subscriber.created_at.isoformat(),
                    subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else "",
                ]
                yield writer.writerow([spreadsheet_cell(cell) for cell in cells])

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
        return response

    @admin.action(description="Undo bounce/complaint suppression", permissions=["change"])
    def undo_suppression(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        changed = 0
        for subscriber in queryset.filter(status__in=services.SUPPRESSED):
            services.unsuppress_subscriber(subscriber=subscriber, by=request.user)
            changed += 1
        self.message_user(request, f"Lifted the suppression of {changed} subscriber(s).")

    @admin.action(description="Email selected readers their data (privacy request)", permissions=["change"])
    def email_data_export(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        queued = 0
        try:
            for subscriber in queryset:
                services.request_data_export(subscriber=subscriber)
                queued += 1
        except QueueUnavailable:
            self.message_user(
                request,
                f"Queued {queued} data export(s); the queue (Redis) is down: try the rest later.",
                messages.ERROR,
            )
            return
        self.message_user(request, f"Queued the data export for {queued} subscriber(s).")

    @admin.action(description="Erase selected readers (privacy request; cannot be undone)", permissions=["delete"])
    def erase(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> HttpResponse | None:
        if request.POST.get("confirm_erase") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "subscribers": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return render(request, "admin/newsletter/subscriber/erase_confirm.html", context)
        count = 0
        for subscriber in queryset:
            services.erase_subscriber(subscriber=subscriber, reason=f"erased by {request.user}")
            count += 1
        self.message_user(request, f"Erased {count} subscriber(s); their addresses are suppressed from imports.")
        return None

    # Django's own "Delete" (the button and "Delete selected") erases too: a plain
    # delete would forget that the reader asked to go, and the next import would
    # add the address back.
    def delete_model(self, request: HttpRequest, obj: Subscriber) -> None:
        services.erase_subscriber(subscriber=obj, reason=f"deleted by {request.user}")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        for subscriber in queryset:
            services.erase_subscriber(subscriber=subscriber, reason=f"deleted by {request.user}")


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email_hash", "reason", "created_at"]
    search_fields = ["email_hash", "reason"]
    readonly_fields = ["email_hash", "reason", "created_at"]


CAMPAIGN_FIELDS = [
    "article",
    "subject",
    "status",
    "paused_reason",
    "recipients",
    "created_at",
    "planned_at",
    "paused_at",
    "finished_at",
    "cancelled_at",
]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "recipients", "progress_link", "created_at", "finished_at"]
    list_filter = ["status", "digest"]
    search_fields = ["article__title", "subject"]
    fields = tuple(CAMPAIGN_FIELDS)
    readonly_fields = [name for name in CAMPAIGN_FIELDS if name != "subject"]  # editors change the subject only
    actions = ["cancel_campaigns", "resume_campaigns", "retry_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns start when an article is published

    @admin.display(description="progress")
    def progress_link(self, campaign: Campaign) -> str:
        url = reverse("admin:newsletter_campaign_progress", args=[campaign.pk])
        return format_html('<a href="{}">Live progress</a>', url)

    @admin.action(description="Cancel the selected campaigns", permissions=["change"])
    def cancel_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            sending.cancel_campaign(campaign=campaign)
        self.message_user(request, f"Cancelled {queryset.count()} campaign(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected paused campaigns", permissions=["change"])
    def resume_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        resumed = 0
        for campaign in queryset.filter(status=Campaign.Status.PAUSED):
            sending.resume_campaign(campaign=campaign)
            resumed += 1
        skipped = queryset.count() - resumed
        note = f" {skipped} selected campaign(s) were not paused." if skipped else ""
        self.message_user(request, f"Resumed {resumed} campaign(s).{note}", messages.SUCCESS)

    @admin.action(description="Retry failed deliveries", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        count = sum(sending.retry_failed_deliveries(campaign=campaign) for campaign in queryset)
        self.message_user(request, f"{count} failed deliveries will be tried again.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        # admin_view asks only for a staff login: each view checks the campaign permission it needs.
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/progress/", view(self.progress_view), name="newsletter_campaign_progress"),
            path("<int:pk>/progress.json", view(self.progress_json), name="newsletter_campaign_progress_json"),
            path("<int:pk>/resume/", view(self.resume_view), name="newsletter_campaign_resume"),
            path("preview/<int:article_id>/", view(self.preview_view), name="newsletter_campaign_preview"),
            path("send-test/<int:article_id>/", view(self.send_test_view), name="newsletter_campaign_send_test"),
            path("digest-preview/", view(self.digest_preview_view), name="newsletter_campaign_digest_preview"),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign.objects.select_related("article"), pk=pk)
        errors = campaign.deliveries.exclude(last_error="").order_by("-updated_at")[:50]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sending: {campaign.title}",
            "campaign": campaign,
            "progress": campaign_progress(campaign),
            "errors": errors,
            "opts": self.model._meta,
            "can_send_test": self.has_change_permission(request, campaign),
            "can_resume": campaign.status == Campaign.Status.PAUSED and self.has_change_permission(request, campaign),
            "can_view_deliveries": request.user.has_perm("newsletter.view_delivery"),
        }
        return TemplateResponse(request, "admin/newsletter/campaign_progress.html", context)

    def progress_json(self, request: HttpRequest, pk: int) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(campaign_progress(get_object_or_404(Campaign, pk=pk)))

    def resume_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The Resume button of a paused campaign's page."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponse("Use the Resume button on the campaign's page (POST).", status=405)
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            sending.resume_campaign(campaign=campaign)
        except sending.NotPaused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, "Resumed: every reader not yet sent to gets the email once.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:newsletter_campaign_progress", args=[pk]))

    def _sample_email(self, article_id: int) -> CampaignEmail:
        article = get_object_or_404(Article, pk=article_id)
        campaign = Campaign.objects.filter(article=article).first() or Campaign(article=article, pk=0)
        return render_campaign_email(campaign)

    def preview_view(self, request: HttpRequest, article_id: int) -> HttpResponse:
        """The email as a reader sees it (links point at a sample reader)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        _, html = self._sample_email(article_id).bodies(
            Recipient(delivery_id=0, subscriber_id=0, email="reader@example.org")
        )
        return HttpResponse(html)

    def digest_preview_view(self, request: HttpRequest) -> HttpResponse:
        """The next daily or weekly digest as a given reader would get it if it went now."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return digest_preview(request, self.admin_site.each_context(request))

    def send_test_view(self, request: HttpRequest, article_id: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponse("Use the button on the preview page (POST).", status=405)
        user_email = getattr(request.user, "email", "")
        if not user_email:
            self.message_user(request, "Your account has no email address to send the test to.", messages.ERROR)
        else:
            email = self._sample_email(article_id)
            try:
                message = email.as_message(Recipient(delivery_id=0, subscriber_id=0, email=user_email))
            except UnsendableAddress as exc:
                self.message_user(request, f"Cannot send the test to {user_email}: {exc}.", messages.ERROR)
            else:
                try:
                    message.send()
                except (OSError, AnymailError) as exc:  # smtplib's errors are OSErrors
                    self.message_user(request, unsent_test_notice(user_email, exc), messages.ERROR)
                else:
                    self.message_user(request, f"Test email sent to {user_email}.", messages.SUCCESS)
        return HttpResponseRedirect(request.POST.get("next") or reverse("admin:newsletter_campaign_changelist"))


def unsent_test_notice(address: str, exc: Exception) -> str:
    advice = "Try again in a moment." if worth_retrying(exc) else "Check EMAIL_URL and the mail server's settings."
    return f"The test email to {address} was not sent: {failure_reason(exc)}. {advice}"


class DigestPreviewForm(forms.Form):
    digest = forms.ChoiceField(choices=Campaign.Digest.choices)
    reader = forms.CharField(max_length=320, help_text="The reader's email address.")


def digest_preview(request: HttpRequest, admin_context: dict[str, Any]) -> HttpResponse:
    form = DigestPreviewForm(request.GET or None)
    context = {**admin_context, "title": "Preview a digest", "form": form, "message": ""}
    if not form.is_valid():
        return TemplateResponse(
            request, "admin/newsletter/digest_preview.html", context, status=400 if form.errors else 200
        )
    subscriber = Subscriber.objects.filter(email__iexact=form.cleaned_data["reader"].strip()).first()
    if subscriber is None:
        context["message"] = "No reader has this address."
        return TemplateResponse(request, "admin/newsletter/digest_preview.html", context, status=404)
    email = preview_digest(subscriber=subscriber, digest=form.cleaned_data["digest"])
    if email is None:
        context["message"] = (
            f"{subscriber.email} would get no {form.cleaned_data['digest']} digest now: "
            "it is not their cadence, they are not subscribed, or nothing new is on their topics."
        )
        return TemplateResponse(request, "admin/newsletter/digest_preview.html", context)
    _, html = email.bodies(Recipient(delivery_id=0, subscriber_id=subscriber.pk, email=subscriber.email))
    return HttpResponse(html)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["email", "campaign", "status", "attempts", "last_error", "sent_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["email"]
    list_select_related = ["campaign__article"]
    raw_id_fields = ["campaign", "subscriber"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# --- The article's newsletter on the article admin ------------------------------


def why_no_campaign(article: Article) -> str:
    """What an editor should know about an article that has no campaign (yet)."""
    if not article.send_to_subscribers:
        return "Not sent to subscribers: “Send to subscribers” is off."
    if article.status == Article.Status.PUBLISHED:
        if article.published_at and timezone.now() - article.published_at < CAMPAIGN_STARTS_WITHIN:
            return "Starting: a worker plans the campaign moments after publishing. Reload to follow it."
        return (
            "Published without a campaign: “Send to subscribers” was off when it was published, "
            "or no Celery worker has run since."
        )
    if article.status == Article.Status.SCHEDULED and article.publish_at:
        when = date_format(timezone.localtime(article.publish_at), "DATETIME_FORMAT")
        return f"Will be sent to subscribers when it is published ({when})."
    if article.status == Article.Status.UNPUBLISHED:
        return "Will be sent to subscribers if it is published again."
    return "Will be sent to subscribers when it is published."


class NewsletterFilter(admin.SimpleListFilter):
    title = "newsletter"
    parameter_name = "newsletter"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("none", "No campaign"), *Campaign.Status.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "none":
            return queryset.filter(campaign__isnull=True)
        if self.value() in Campaign.Status.values:
            return queryset.filter(campaign__status=self.value())
        return queryset


class ArticleWithNewsletterAdmin(ArticleAdmin):
    """The article admin plus the article's campaign: totals on its page, a column and a filter on the list.

    It replaces the article app's registration from here because ``articles`` never
    imports ``newsletter``; everything else is the article app's own admin.
    """

    change_form_template = "admin/newsletter/article_change_form.html"
    list_display = [*ArticleAdmin.list_display, "newsletter"]
    list_select_related = [*ArticleAdmin.list_select_related, "campaign"]

    def get_urls(self) -> list[Any]:
        return correction_urls(self) + super().get_urls()

    def can_watch_campaigns(self, request: HttpRequest) -> bool:
        """The campaign admin's view permission: Editors have it, Authors see no trace of the newsletter."""
        return self.admin_site.get_model_admin(Campaign).has_view_permission(request)

    def get_list_display(self, request: HttpRequest) -> Sequence[Any]:
        shown = super().get_list_display(request)
        return shown if self.can_watch_campaigns(request) else [name for name in shown if name != "newsletter"]

    def get_list_filter(self, request: HttpRequest) -> Sequence[Any]:
        shown = super().get_list_filter(request)
        return [*shown, NewsletterFilter] if self.can_watch_campaigns(request) else shown

    @admin.display(description="newsletter", ordering="campaign__status")
    def newsletter(self, article: Article) -> str:
        campaign: Campaign | None = getattr(article, "campaign", None)  # joined by list_select_related
        if campaign is None:
            return "—"
        url = reverse("admin:newsletter_campaign_progress", args=[campaign.pk])
        return format_html(
            '<a href="{}">{}, {} recipients</a>', url, campaign.get_status_display(), campaign.recipients
        )

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        article = context.get("original")
        if article is not None and self.can_watch_campaigns(request):
            campaign = Campaign.objects.filter(article=article).first()
            context["newsletter"] = {
                "campaign": campaign,
                "progress": campaign_progress(campaign) if campaign else None,
                "why_no_campaign": "" if campaign else why_no_campaign(article),
                "corrections": correction_panel(article) if corrections.may_send(request.user) else [],
            }
        return super().render_change_form(request, context, *args, **kwargs)


admin.site.unregister(Article)
admin.site.register(Article, ArticleWithNewsletterAdmin)
