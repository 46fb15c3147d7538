"""Engagement in the admin: the figures page over the latest campaigns, and a reader's own
clicks on their page (only recorded with NEWSLETTER_PER_READER_STATS)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from newsletter.engagement.figures import click_rate_by_topic, recent_campaigns
from newsletter.engagement.models import CampaignFigures, ReaderClick
from newsletter.models import Campaign

RECENT_CAMPAIGNS = 30


class ReaderClickInline(admin.TabularInline):
    model = ReaderClick
    fields = ["at", "campaign", "link"]
    readonly_fields = ["at", "campaign", "link"]
    extra = 0
    can_delete = False
    verbose_name_plural = "clicks (kept only with NEWSLETTER_PER_READER_STATS)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return settings.NEWSLETTER_PER_READER_STATS and super().has_view_permission(request, obj)


@admin.register(CampaignFigures)
class CampaignFiguresAdmin(admin.ModelAdmin):
    """Click rate per campaign and per topic over the latest campaigns, to compare pieces."""

    def _campaigns(self) -> admin.ModelAdmin:
        return self.admin_site.get_model_admin(Campaign)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._campaigns().has_view_permission(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = recent_campaigns(RECENT_CAMPAIGNS)
        context = {
            **self.admin_site.each_context(request),
            "title": "Engagement figures",
            "opts": self.model._meta,
            "rows": rows,
            "topics": click_rate_by_topic(rows),
            "track_opens": settings.NEWSLETTER_TRACK_OPENS,
        }
        return TemplateResponse(request, "admin/newsletter/engagement/figures.html", context)
