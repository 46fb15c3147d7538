"""The newsroom's admin: one site whose home is the dashboard and whose menu is the newsroom.

The site wires the two apps' admin pages together, as ``urls.py`` wires their URLs:
the dashboard shows ``articles.dashboard`` and, for those who watch the newsletter,
``newsletter.dashboard``. Everything it shows comes from those selectors.

The menu puts the newsroom's work first (articles, review queue, authors, topics,
site settings, campaigns, subscribers). Security and technical models (login
attempts, two-factor devices, API tokens, accounts, groups, the ledger, suppressions,
imports, tracking events) are listed for superusers only, below the newsroom; others
who have a right to one of them still reach it from the page that links to it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from articles import dashboard as article_dashboard
from articles.models import SiteSettings
from newsletter import dashboard as newsletter_dashboard
from newsletter import previews as newsletter_previews

# (section name, app whose index page the section links to, [(app label, model name), ...]) in menu order.
NEWSROOM_MENU: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "Newsroom",
        "articles",
        [
            ("articles", "article"),
            ("articles", "articleinreview"),
            ("articles", "author"),
            ("articles", "topic"),
            ("articles", "sitesettings"),
        ],
    ),
    ("Newsletter", "newsletter", [("newsletter", "campaign"), ("newsletter", "subscriber")]),
]


class NewsroomAdminSite(admin.AdminSite):
    site_title = "Newsroom"
    index_title = "Today in the newsroom"
    index_template = "admin/newsroom_dashboard.html"

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        name = SiteSettings.load().site_name
        context["site_header"] = f"{name} newsroom"
        context["site_title"] = f"{name} newsroom"
        return context

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:  # an app's own page lists all of its models
            return apps
        return newsroom_menu(apps, show_technical=request.user.is_superuser)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {**(extra_context or {}), "dashboard": article_dashboard.for_user(request.user)}
        if request.user.has_perm("newsletter.view_campaign"):
            context["newsletter_dashboard"] = newsletter_dashboard.overview()
        return super().index(request, context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        email_preview = self.admin_view(newsletter_previews.article_email_preview)
        return [
            path("newsroom/email-preview/<int:pk>/", email_preview, name="newsroom_email_preview"),
            *super().get_urls(),
        ]


def newsroom_menu(apps: list[dict[str, Any]], *, show_technical: bool) -> list[dict[str, Any]]:
    """Django's app list regrouped: the newsroom sections first, then (for superusers) the rest."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {
        (app["app_label"], model["object_name"].lower()): model for app in apps for model in app["models"]
    }
    menu: list[dict[str, Any]] = []
    for name, app_label, keys in NEWSROOM_MENU:
        models = [by_key.pop(key) for key in keys if key in by_key]
        if models:
            source = next(app for app in apps if app["app_label"] == app_label) if _has(apps, app_label) else None
            menu.append(
                {
                    "name": name,
                    "app_label": app_label,
                    "app_url": source["app_url"] if source else "",
                    "has_module_perms": True,
                    "models": models,
                }
            )
    if show_technical:
        shown = {id(model) for section in menu for model in section["models"]}
        for app in apps:
            rest = [model for model in app["models"] if id(model) not in shown]
            if rest:
                menu.append({**app, "name": f"{app['name']} (technical)", "models": rest})
    return menu


def _has(apps: list[dict[str, Any]], app_label: str) -> bool:
    return any(app["app_label"] == app_label for app in apps)
