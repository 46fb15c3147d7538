from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from articles.models import Article
from newsletter import sending
from newsletter.emails import CampaignEmail, Recipient, render_campaign_email
from newsletter.models import Campaign, Delivery, Subscriber


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "status", "source", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["email", "name"]


# --- Campaigns and their deliveries ---------------------------------------------


def campaign_progress(campaign: Campaign) -> dict[str, Any]:
    """Counts by state, rate over the last minute and an ETA; JSON-ready."""
    counts = dict(campaign.deliveries.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    total = sum(counts.values())
    done = sum(counts.get(s, 0) for s in (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED))
    waiting = total - done
    now = timezone.now()
    recent = campaign.deliveries.filter(status=Delivery.Status.SENT, sent_at__gte=now - timedelta(seconds=60)).count()
    rate = recent / 60
    return {
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "total": total,
        "sent": counts.get(Delivery.Status.SENT, 0),
        "pending": counts.get(Delivery.Status.PENDING, 0) + counts.get(Delivery.Status.SENDING, 0),
        "retrying": counts.get(Delivery.Status.RETRYING, 0),
        "failed": counts.get(Delivery.Status.FAILED, 0),
        "skipped": counts.get(Delivery.Status.SKIPPED, 0),
        "percent": round(100 * done / total, 1) if total else 100.0,
        "rate_per_second": round(rate, 1),
        "eta_seconds": round(waiting / rate) if rate and waiting else None,
    }


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["article", "status", "recipients", "progress_link", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["article__title", "subject"]
    fields = ["article", "subject", "status", "recipients", "created_at", "planned_at", "finished_at", "cancelled_at"]
    readonly_fields = ["article", "status", "recipients", "created_at", "planned_at", "finished_at", "cancelled_at"]
    actions = ["cancel_campaigns", "retry_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns start when an article is published

    @admin.display(description="progress")
    def progress_link(self, campaign: Campaign) -> str:
        url = reverse("admin:newsletter_campaign_progress", args=[campaign.pk])
        return format_html('<a href="{}">Live progress</a>', url)

    @admin.action(description="Cancel the selected campaigns")
    def cancel_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            sending.cancel_campaign(campaign=campaign)
        self.message_user(request, f"Cancelled {queryset.count()} campaign(s).", messages.SUCCESS)

    @admin.action(description="Retry failed deliveries")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        count = sum(sending.retry_failed_deliveries(campaign=campaign) for campaign in queryset)
        self.message_user(request, f"{count} failed deliveries will be tried again.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/progress/", view(self.progress_view), name="newsletter_campaign_progress"),
            path("<int:pk>/progress.json", view(self.progress_json), name="newsletter_campaign_progress_json"),
            path("preview/<int:article_id>/", view(self.preview_view), name="newsletter_campaign_preview"),
            path("send-test/<int:article_id>/", view(self.send_test_view), name="newsletter_campaign_send_test"),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.select_related("article"), pk=pk)
        errors = campaign.deliveries.exclude(last_error="").order_by("-updated_at")[:50]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sending: {campaign.article.title}",
            "campaign": campaign,
            "progress": campaign_progress(campaign),
            "errors": errors,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/campaign_progress.html", context)

    def progress_json(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(campaign_progress(get_object_or_404(Campaign, pk=pk)))

    def _sample_email(self, article_id: int) -> CampaignEmail:
        article = get_object_or_404(Article, pk=article_id)
        campaign = Campaign.objects.filter(article=article).first() or Campaign(article=article, pk=0)
        return render_campaign_email(campaign)

    def preview_view(self, request: HttpRequest, article_id: int) -> HttpResponse:
        """The email as a reader sees it (links point at a sample reader)."""
        _, html = self._sample_email(article_id).bodies(
            Recipient(delivery_id=0, subscriber_id=0, email="reader@example.org")
        )
        return HttpResponse(html)

    def send_test_view(self, request: HttpRequest, article_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse("Use the button on the preview page (POST).", status=405)
        user_email = getattr(request.user, "email", "")
        if not user_email:
            self.message_user(request, "Your account has no email address to send the test to.", messages.ERROR)
        else:
            email = self._sample_email(article_id)
            email.as_message(Recipient(delivery_id=0, subscriber_id=0, email=user_email)).send()
            self.message_user(request, f"Test email sent to {user_email}.", messages.SUCCESS)
        return HttpResponseRedirect(request.POST.get("next") or reverse("admin:newsletter_campaign_changelist"))


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
