"""The writing room's own admin pages: autosave, and previews side by side.

Each is reached from the article's page and checks, as the article page does,
that the person may see (previews) or edit (autosave) this piece.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from articles import permissions, services, views, writing
from articles.models import Article

PREVIEW_WIDTHS = {"desktop": 1280, "phone": 390}
AUTOSAVE_SECONDS = 5


@require_POST
def autosave(request: HttpRequest, pk: int) -> JsonResponse:
    """Keep the text of the writer's draft; answers the new version, or why it did not."""
    article = get_object_or_404(Article, pk=pk)
    if not request.POST.get("opened_version"):
        return JsonResponse({"error": "Say which version the page opened (opened_version)."}, status=400)
    fields = {name: request.POST[name] for name in writing.AUTOSAVED_FIELDS if name in request.POST}
    try:
        article = writing.autosave_article(
            article=article, by=request.user, opened_version=request.POST.get("opened_version", ""), **fields
        )
    except writing.EditConflict as conflict:
        saved_at = timezone.localtime(conflict.saved_at)
        return JsonResponse(
            {
                "error": f"{conflict.saved_by} saved this piece at {saved_at:%H:%M}, after you opened it. "
                "Autosave is paused: press Save to compare and merge.",
                "saved_by": conflict.saved_by,
                "saved_at": saved_at.isoformat(),
            },
            status=409,
        )
    except PermissionDenied as error:
        return JsonResponse({"error": str(error) or "You may not edit this piece."}, status=403)
    except services.InvalidTransition as error:
        return JsonResponse({"error": str(error)}, status=409)
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse(
        {
            "version": writing.version_of(article),
            "saved_at": timezone.localtime(article.updated_at).isoformat(),
            "reading_minutes": article.reading_minutes,
        }
    )


def preview(request: HttpRequest, pk: int, admin_context: dict[str, Any]) -> TemplateResponse:
    """The public page and the email of a piece side by side, at desktop or phone width."""
    article = get_object_or_404(Article, pk=pk)
    if not permissions.can_view(request.user, article):
        raise PermissionDenied
    width = request.GET.get("width", "desktop")
    if width not in PREVIEW_WIDTHS:
        width = "desktop"
    context = {
        **admin_context,
        "title": f"Preview: {article.title}",
        "article": article,
        "original": article,
        "width": width,
        "widths": PREVIEW_WIDTHS,
        "opts": Article._meta,
    }
    return TemplateResponse(request, "admin/articles/article/preview.html", context)


@xframe_options_sameorigin
def web_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The article's preview page, which the preview side by side may frame."""
    article = get_object_or_404(Article, pk=pk)
    response = views.article_preview(request, slug=article.slug)
    response._csp_replace = {"frame-ancestors": ["'self'"]}  # type: ignore[attr-defined]  # as csp_replace sets it
    return response


def writing_room(request: HttpRequest, article: Article | None) -> dict[str, Any]:
    """What the article page's writing bar needs: whether this writer's text autosaves here."""
    autosaves = (
        article is not None
        and article.status in writing.AUTOSAVE_STATES
        and all(permissions.may_change(request.user, article, name) for name in writing.AUTOSAVED_FIELDS)
    )
    return {"autosave": autosaves, "seconds": AUTOSAVE_SECONDS}
