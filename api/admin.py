"""API tokens in the admin: owners see and revoke their own, Editors everyone's.

"Add" makes a token for the signed-in user and shows its key once. knox's own
admin is replaced: it shows digests and lets anyone with its permissions make
tokens for other accounts.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from knox.models import AuthToken

from api.tokens import can_revoke, create_api_token, signed_in_with_every_factor
from articles.permissions import is_editor

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ["key_start", "user", "created", "expiry", "is_live"]
    list_filter = ["expiry"]
    search_fields = ["token_key", "user__username"]
    ordering = ["-created"]
    fields = ("key_start", "user", "created", "expiry")
    readonly_fields = fields

    @admin.display(description="key starts with")
    def key_start(self, token: AuthToken) -> str:
        return f"{token.token_key[:8]}…"

    @admin.display(description="live", boolean=True)
    def is_live(self, token: AuthToken) -> bool:
        return token.expiry is None or token.expiry > timezone.now()

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuthToken]:
        tokens = super().get_queryset(request).select_related("user")
        return tokens if is_editor(request.user) else tokens.filter(user=request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return self.has_module_permission(request) and (obj is None or can_revoke(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "New API token"}
        if request.method != "POST":
            return TemplateResponse(request, "admin/knox/authtoken/confirm_add.html", context)
        if not signed_in_with_every_factor(request.user):
            raise PermissionDenied("Sign in with your two-factor code before making a token.")
        token, key = create_api_token(user=request.user)  # type: ignore[arg-type]
        context |= {"token": token, "key": key, "title": "Your new API token"}
        response = TemplateResponse(request, "admin/knox/authtoken/added.html", context)
        response["Cache-Control"] = "no-store"
        return response
