"""Who may call what. The CMS roles themselves are checked by the article services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import permissions

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class IsStaffOrReadOnly(permissions.BasePermission):
    """Anyone may read; writing needs a staff account (the services then check its CMS role)."""

    message = "Only staff accounts may change articles."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class CanWatchCampaigns(permissions.BasePermission):
    """Editors (and anyone given the newsletter's view permission) watch sends; Authors do not."""

    message = "Only editors may see newsletter campaigns."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        return user.has_perm("newsletter.view_campaign")


class CanChangeCampaigns(CanWatchCampaigns):
    """Resuming a campaign takes the permission the admin's cancel and resume take."""

    message = "Only editors may resume newsletter campaigns."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return super().has_permission(request, view) and request.user.has_perm("newsletter.change_campaign")
