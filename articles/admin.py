"""The newsroom in the Django admin.

Status changes only through the workflow (buttons on the article page, actions
on the list), which call ``articles.services``; the services check roles again,
so the admin is a thin caller. Authors see and edit only their own articles.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django_prose_editor.widgets import AdminProseEditorWidget
from js_asset import Media
from simple_history.admin import SimpleHistoryAdmin

from articles import (
    admin_authors,  # noqa: F401  (registers the authors, topics and site settings admins)
    admin_views,
    permissions,
    previews,
    services,
)
from articles.admin_forms import ArticleAdminForm
from articles.admin_previews import preview_link_urls
from articles.models import (
    Article,
    ArticleAuthor,
    ArticleInReview,
    ArticleTopic,
    ArticleTransition,
    Correction,
)
from euro_prospects.images import reencode_image

# The editor's toolbar; ``articles.html.sanitise_html`` allows exactly this and a little more.
PROSE_EDITOR_CONFIG = {
    "extensions": {
        "Bold": True,
        "Italic": True,
        "Underline": True,
        "Strike": True,
        "Subscript": True,
        "Superscript": True,
        "Heading": {"levels": [2, 3, 4]},
        "BulletList": True,
        "OrderedList": True,
        "ListItem": True,
        "Blockquote": True,
        "HorizontalRule": True,
        "HardBreak": True,
        "Link": {"enableTarget": False},
        "Figure": True,
        "Image": True,
        "Caption": True,
        "Table": True,
        "TableRow": True,
        "TableHeader": True,
        "TableCell": True,
        "HTML": True,
    }
}

# Shown, never edited in the form: the workflow sets them, or they are derived.
ALWAYS_READONLY = ["status", "published_at", "reading_minutes", "preview_link"]
WORKFLOW_BUTTONS = [
    ("submit", "Submit for review"),
    ("approve", "Approve"),
    ("schedule", "Schedule at “Publish at”"),
    ("publish", "Publish now"),
    ("unpublish", "Unpublish"),
    ("return_to_draft", "Send back to draft"),
    ("decline", "Decline"),
]
# Steps that carry the editor's note (the "Note to the author" box); the byline authors are emailed it.
NOTED_ACTIONS = {"approve", "return_to_draft", "decline"}


class ArticlePartInline(admin.TabularInline):
    """The byline or the topics of an article: editable by whoever ``permissions.EDIT_RULES`` lets change them."""

    part: str  # the field of EDIT_RULES

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view(request.user, obj) or permissions.can_edit(request.user, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.may_change(request.user, obj, self.part)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)


class ArticleAuthorInline(ArticlePartInline):
    model = ArticleAuthor
    part = "authors"
    extra = 1
    autocomplete_fields = ["author"]
    verbose_name = "author"
    verbose_name_plural = "Authors (position 0 is the byline)"


class ArticleTopicInline(ArticlePartInline):
    model = ArticleTopic
    part = "topics"
    extra = 1
    verbose_name = "topic"
    verbose_name_plural = "Topics (position 0 is the primary topic)"


class CorrectionFormSet(forms.BaseInlineFormSet):
    """A post without this inline's rows (a page opened before the piece was published,
    a script posting the article's fields) leaves the notes as they are."""

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        prefix = kwargs.get("prefix") or self.get_default_prefix()
        if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
            data = data.copy()
            data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        super().__init__(data, *args, **kwargs)


class CorrectionInline(admin.TabularInline):
    """Correction and update notes of a published piece; Editors write them."""

    model = Correction
    formset = CorrectionFormSet
    extra = 0
    fields = ["kind", "noted_at", "text"]
    verbose_name = "correction or update"
    verbose_name_plural = "Corrections and updates (shown above the disclaimer)"
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 60})}}

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view(request.user, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and obj.published_at is not None and permissions.is_editor(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)


class ArticleTransitionInline(admin.TabularInline):
    model = ArticleTransition
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "by", "note"]
    readonly_fields = ["at", "from_status", "to_status", "by", "note"]
    verbose_name_plural = "Workflow log"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or permissions.can_view(request.user, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def run_workflow(request: HttpRequest, article: Article, action: str) -> bool:
    """Call the service for ``action``; tell the user what happened. True when it worked."""
    try:
        if action == "schedule":
            if article.publish_at is None:
                raise services.InvalidTransition(f"Set “Publish at” on “{article.title}” before scheduling it.")
            services.schedule_article(article=article, by=request.user, publish_at=article.publish_at)
        elif action in NOTED_ACTIONS:
            note = " ".join(request.POST.get("_workflow_note", "").split())[:2000]
            getattr(services, SERVICE_NAMES[action])(article=article, by=request.user, note=note)
        else:
            getattr(services, SERVICE_NAMES[action])(article=article, by=request.user)
    except (services.InvalidTransition, PermissionDenied) as error:
        messages.error(request, str(error) or "You may not do that.")
        return False
    messages.success(request, f"“{article.title}” is now {article.get_status_display().lower()}.")
    return True


SERVICE_NAMES = {
    "submit": "submit_for_review",
    "approve": "approve_article",
    "publish": "publish_article",
    "unpublish": "unpublish_article",
    "return_to_draft": "return_to_draft",
    "decline": "decline_article",
}


# An inline's rows -> (the field of EDIT_RULES, the attribute each row names).
PARTS: dict[type, tuple[str, str]] = {ArticleAuthor: ("authors", "author"), ArticleTopic: ("topics", "topic")}


def posted_part(formset: Any) -> tuple[str, list[Any]] | None:
    """The byline or topics in order as the inline posted them, or None when they did not change.

    Nothing is written (``save(commit=False)``): the services write the new order.
    """
    formset.save(commit=False)  # also lists new/changed/deleted rows for the admin's change message
    if formset.model not in PARTS or not formset.has_changed():
        return None
    name, attribute = PARTS[formset.model]
    deleted = {row.pk for row in formset.deleted_objects}
    rows = [row for row in formset.get_queryset() if row.pk not in deleted] + list(formset.new_objects)
    return name, [getattr(row, attribute) for row in sorted(rows, key=lambda row: row.position)]


def _workflow_action(action: str, description: str) -> Any:
    def run(modeladmin: ArticleAdmin, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        for article in queryset:
            run_workflow(request, article, action)

    run.__name__ = f"{action}_selected"
    return admin.action(description=f"{description}: selected articles")(run)


@admin.register(Article)
class ArticleAdmin(SimpleHistoryAdmin):
    change_form_template = "admin/articles/article/change_form.html"
    form = ArticleAdminForm  # carries the version the page opened: no silent last-save-wins
    list_display = ["title", "status", "byline", "primary_topic", "publish_at", "published_at", "updated_at"]
    list_filter = ["status", "topics", "authors", "is_featured"]
    search_fields = ["title", "standfirst", "slug", "authors__name"]
    date_hierarchy = "created_at"
    list_select_related = ["editor"]
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["editor"]
    inlines = [ArticleAuthorInline, ArticleTopicInline, CorrectionInline, ArticleTransitionInline]
    history_list_display = ["status"]
    actions = [_workflow_action(action, label) for action, label in WORKFLOW_BUTTONS]
    fieldsets = [
        (None, {"fields": ["title", "slug", "standfirst", "body"]}),
        ("Hero image", {"fields": ["hero_image", "hero_image_alt", "hero_image_credit"]}),
        ("Review and publishing", {"fields": ["status", "editor", "publish_at", "published_at", "preview_link"]}),
        ("Display", {"fields": ["disclaimer", "is_featured", "send_to_subscribers", "reading_minutes"]}),
        ("Search engines", {"fields": ["meta_title", "meta_description", "canonical_url"], "classes": ["collapse"]}),
    ]

    def get_urls(self) -> list[Any]:
        # The writing room (articles/admin_views.py); each view checks who may see or edit the piece.
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/autosave/", view(admin_views.autosave), name="articles_article_autosave"),
            path("<int:pk>/preview/", view(self.preview_view), name="articles_article_preview"),
            path("<int:pk>/preview/web/", view(admin_views.web_preview), name="articles_article_preview_web"),
            *preview_link_urls(self),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return admin_views.preview(request, pk, self.admin_site.each_context(request))

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "body":
            kwargs["widget"] = AdminProseEditorWidget(config=PROSE_EDITOR_CONFIG, preset="configurable")
        if db_field.name == "canonical_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Article]:
        queryset = super().get_queryset(request).prefetch_related("article_authors__author", "article_topics__topic")
        if permissions.is_editor(request.user):
            return queryset
        return queryset.filter(pk__in=Article.objects.owned_by(request.user).values("pk"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        editable = permissions.editable_fields(request.user, obj)
        if not editable:  # a view-only page: the admin shows every field read-only by itself
            return ALWAYS_READONLY
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        return [
            name
            for name in fields
            if name in ALWAYS_READONLY or (name in permissions.EDIT_RULES and name not in editable)
        ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return super().has_change_permission(request)
        return permissions.can_edit(request.user, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return super().has_view_permission(request)
        return permissions.can_view(request.user, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not permissions.is_editor(request.user):
            actions = {name: action for name, action in actions.items() if name == "submit_selected"}
        return actions

    @admin.display(description="byline")
    def byline(self, article: Article) -> str:
        first = next(iter(article.article_authors.all()), None)
        return first.author.name if first else "—"

    def view_on_site(self, article: Article) -> str:
        if article.status == Article.Status.PUBLISHED:
            return article.get_absolute_url()
        return reverse("articles:preview", kwargs={"slug": article.slug})

    @admin.display(description="primary topic")
    def primary_topic(self, article: Article) -> str:
        first = next(iter(article.article_topics.all()), None)
        return first.topic.name if first else "—"

    @admin.display(description="preview")
    def preview_link(self, article: Article) -> str:
        if not article.pk:
            return "Save the article first."
        url = reverse("articles:preview", kwargs={"slug": article.slug})
        return format_html('<a href="{}" target="_blank" rel="noopener">Preview the public page</a>', url)

    def save_model(self, request: HttpRequest, obj: Article, form: forms.ModelForm, change: bool) -> None:
        # Nothing is written here: save_related hands the form and its inlines to the services at once.
        if "hero_image" in form.changed_data and obj.hero_image:
            # Only pixels reach the media directory: the upload is decoded and written anew.
            obj.hero_image = reencode_image(obj.hero_image)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Create or change the article through the services, which apply ``EDIT_RULES`` to every field."""
        article: Article = form.instance
        parts = dict(part for formset in formsets if (part := posted_part(formset)) is not None)
        for formset in formsets:
            if formset.model is Correction:  # notes, not fields of the piece: EDIT_RULES do not cover them
                formset.save()
        if change:
            fields = {name: getattr(article, name) for name in form.changed_data if name in permissions.EDIT_RULES}
            status = Article.objects.values_list("status", flat=True).get(pk=article.pk)
            services.update_article(article=article, by=request.user, **parts, **fields)
            if article.status != status:
                messages.warning(
                    request,
                    f"“{article.title}” is {article.get_status_display().lower()} again: "
                    "an editor approves it again before it goes live.",
                )
            return
        fields = {name: getattr(article, name) for name in form.fields if name in permissions.EDIT_RULES}
        created = services.create_draft(by=request.user, **parts, **fields)
        article.pk = created.pk
        article._state.adding = False
        article.refresh_from_db()

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        """One old version. Revert is an edit of the current article, through ``services.restore_version``."""
        article = self.get_object(request, unquote(object_id))
        if article is None or not version_id.isdigit():
            raise Http404("No such article or version.")
        if not self.has_view_permission(request, article):
            raise PermissionDenied
        if request.method != "POST":
            return super().history_form_view(request, object_id, version_id, extra_context)
        if not self.has_change_permission(request, article):
            raise PermissionDenied
        try:
            article = services.restore_version(article=article, by=request.user, history_id=int(version_id))
        except ObjectDoesNotExist as error:
            raise Http404("No such version of this article.") from error
        except ValidationError as error:
            messages.error(request, f"This version cannot be restored: {' '.join(error.messages)}")
            return HttpResponseRedirect(request.path)
        messages.success(
            request, f"The old version is restored; “{article.title}” is {article.get_status_display().lower()}."
        )
        return HttpResponseRedirect(reverse("admin:articles_article_change", args=[article.pk]))

    def render_history_view(self, request: HttpRequest, template: str, context: dict[str, Any], **kwargs: Any) -> Any:
        adminform = context.get("adminform")
        if adminform is not None:
            # A version is shown, not edited: Revert restores its text and image as they were.
            fieldsets = list(adminform.fieldsets)
            context["adminform"] = helpers.AdminForm(
                adminform.form, fieldsets, {}, flatten_fieldsets(fieldsets), model_admin=self
            )
        return super().render_history_view(request, template, context, **kwargs)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        current = Article.objects.filter(pk=obj.pk).first() if obj is not None else None
        return (
            current is None or not permissions.can_edit(request.user, current) or super().revert_disabled(request, obj)
        )

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        article = context.get("original")
        if article is not None:
            allowed = permissions.allowed_actions(request.user, article)
            context["workflow_buttons"] = [(action, label) for action, label in WORKFLOW_BUTTONS if action in allowed]
            context["workflow_note"] = bool(NOTED_ACTIONS.intersection(allowed))
            shares = previews.may_share(request.user, article)
            context["shared_previews"] = previews.link_rows(article) if shares else None
            context["preview_link_days"] = settings.PREVIEW_LINK_DAYS
        context["writing_room"] = admin_views.writing_room(request, article)
        # The prose editor loads through an inline <script type="importmap">, which the
        # CSP blocks unless it carries this response's nonce.
        context["media"] = Media.from_media(context["media"], nonce=str(getattr(request, "csp_nonce", "")))
        return super().render_change_form(request, context, *args, **kwargs)

    def response_change(self, request: HttpRequest, obj: Article) -> HttpResponse:
        action = request.POST.get("_workflow")
        if action in dict(WORKFLOW_BUTTONS):
            run_workflow(request, obj, action)
            return HttpResponseRedirect(reverse("admin:articles_article_change", args=[obj.pk]))
        if "_overwrite" in request.POST:
            # After an edit conflict the writer sees the merged piece and goes on from there
            # (submits it, say), rather than landing on the list of articles.
            messages.success(request, f"“{obj.title}” is saved with the changes you merged.")
            return HttpResponseRedirect(reverse("admin:articles_article_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def response_add(self, request: HttpRequest, obj: Article, post_url_continue: str | None = None) -> HttpResponse:
        action = request.POST.get("_workflow")
        if action in dict(WORKFLOW_BUTTONS):
            run_workflow(request, obj, action)
            return HttpResponseRedirect(reverse("admin:articles_article_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)


@admin.register(ArticleInReview)
class ReviewQueueAdmin(admin.ModelAdmin):
    """Articles waiting for an editor, oldest submission first; each links to its article page."""

    list_display = ["title_link", "byline", "submitted", "updated_at"]
    search_fields = ["title", "standfirst", "authors__name"]
    actions = [_workflow_action("approve", "Approve"), _workflow_action("return_to_draft", "Send back to draft")]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Article]:
        return (
            Article.objects.filter(status=Article.Status.IN_REVIEW)
            .prefetch_related("article_authors__author", "transitions")
            .order_by("updated_at")
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return permissions.is_editor(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.is_editor(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.is_editor(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:articles_article_change", args=[object_id]))

    @admin.display(description="title", ordering="title")
    def title_link(self, article: Article) -> str:
        url = reverse("admin:articles_article_change", args=[article.pk])
        return format_html('<a href="{}">{}</a>', url, article.title)

    @admin.display(description="byline")
    def byline(self, article: Article) -> str:
        first = next(iter(article.article_authors.all()), None)
        return first.author.name if first else "—"

    @admin.display(description="submitted")
    def submitted(self, article: Article) -> Any:
        steps = [step for step in article.transitions.all() if step.to_status == Article.Status.IN_REVIEW]
        return steps[-1].at if steps else None
