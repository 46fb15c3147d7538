"""The admin of what surrounds the articles: authors (whose addresses and accounts are
private), topics and the one row of site settings. Registered on import by ``articles.admin``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from articles import permissions, services
from articles.models import Author, SiteSettings, Topic
from euro_prospects.images import reencode_image


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    """Authors. Addresses and accounts are private: only Editors see them, and each author their own."""

    list_display = ["name", "role", "email", "user", "same_email_as"]
    search_fields = ["name", "role", "email"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["user"]
    raw_id_fields = ["same_email_as"]
    actions = ["merge_selected"]

    def _sees_private(self, request: HttpRequest, obj: Author | None = None) -> bool:
        return permissions.sees_private_author_fields(request.user, obj)

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))
        if self._sees_private(request):
            return columns
        return [name for name in columns if name not in permissions.AUTHOR_PRIVATE_FIELDS]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [("same_email_as", admin.EmptyFieldListFilter)] if self._sees_private(request) else []

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        fields = list(super().get_search_fields(request))
        return fields if self._sees_private(request) else [name for name in fields if name != "email"]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if self._sees_private(request, obj) else list(permissions.AUTHOR_PRIVATE_FIELDS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not (request.user.has_perm("articles.change_author") and request.user.has_perm("articles.delete_author")):
            actions.pop("merge_selected", None)
        return actions

    @admin.action(description="Merge into the author with the same address")
    def merge_selected(self, request: HttpRequest, queryset: QuerySet[Author]) -> None:
        for author in queryset:
            try:
                target = services.merge_author(author=author, by=request.user)
            except (services.InvalidTransition, PermissionDenied) as error:
                messages.error(request, str(error))
                continue
            messages.success(request, f"“{author.name}” is merged into “{target.name}”.")

    def save_model(self, request: HttpRequest, obj: Author, form: forms.ModelForm, change: bool) -> None:
        if "photo" in form.changed_data and obj.photo:
            obj.photo = reencode_image(obj.photo)
        super().save_model(request, obj, form, change)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not SiteSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        settings_row = SiteSettings.load()
        return HttpResponseRedirect(reverse("admin:articles_sitesettings_change", args=[settings_row.pk]))
