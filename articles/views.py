"""The public site: home, article, topic, author and search pages, robots.txt."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.views.decorators.http import require_http_methods, require_safe

from articles import contributors, permissions, selectors, services
from articles.cache import cache_public_page, per_generation
from articles.forms import WriteForm
from articles.html import paragraphs_from_text
from articles.links import cached_reverse
from articles.models import Article, Author, SiteSettings, Topic
from articles.structured_data import news_article_json_ld
from euro_prospects import ratelimit
from euro_prospects.jinja2 import html_datetime
from euro_prospects.security import client_ip


def paginate(
    request: HttpRequest,
    articles: QuerySet[Article],
    per_page: int = selectors.PAGE_SIZE,
    also_credit: list[Article] | None = None,
) -> Page[Article]:
    """The requested page of ``articles``, with authors and topics attached; 404 past the end.

    ``also_credit``: other articles on the page that need authors and topics,
    fetched in the same two queries.
    """
    paginator = Paginator(articles, per_page, allow_empty_first_page=True)
    try:
        page = paginator.page(request.GET.get("page") or 1)
    except InvalidPage:
        raise Http404("No such page") from None
    page.object_list = list(page.object_list)
    selectors.with_credits([*page.object_list, *(also_credit or [])])
    return page


def listing_page(request: HttpRequest, kind: str, other: int | None = None) -> Page[selectors.Card]:
    """The requested page of a listing (selectors.listing: one query), as cards; 404 past the end."""
    try:
        number = int(request.GET.get("page") or 1)
    except ValueError:
        raise Http404("No such page") from None
    if not 1 <= number < 10**9:  # past 10**9 the offset would not fit the database's integers
        raise Http404("No such page")
    per_page = selectors.PAGE_SIZE
    cards, total = selectors.listing(kind, other=other, limit=per_page, offset=(number - 1) * per_page)
    paginator: Paginator[int] = Paginator(range(total), per_page, allow_empty_first_page=True)
    try:
        paginator.validate_number(number)
    except InvalidPage:
        raise Http404("No such page") from None
    return Page(cards, number, paginator)  # type: ignore[arg-type]


def absolute(path: str) -> str:
    return settings.SITE_URL + path


def article_page_context(article: Article, links: selectors.ArticleLinks) -> dict[str, Any]:
    """Everything article_detail.html shows beyond the article itself.

    The staff preview calls this too, so it must work for an unpublished article.
    """
    site: SiteSettings = per_generation("site-settings", SiteSettings.load)
    canonical = article.canonical_url or absolute(article.get_absolute_url())
    return {
        "article": article,
        "authors": links.authors,
        "topics": links.topics,
        "editor": links.editor,
        "primary_topic": links.primary_topic,
        "related": links.related,
        "site": site,
        "disclaimer": article.disclaimer or site.default_disclaimer,
        "canonical_url": canonical,
        **_page_dates(article),
        "write_url": cached_reverse("articles:write"),
        "meta_title": article.meta_title or article.title,
        "meta_description": article.meta_description or article.standfirst,
        **share_image(article, site),
        "corrections": [
            {"kind": note.kind, "label": note.label, "text": note.text, **_note_date(note.noted_at)}
            for note in links.corrections
        ],
        "json_ld": news_article_json_ld(article, links=links, site=site, canonical_url=canonical),
    }


def share_image(article: Article, site: SiteSettings) -> dict[str, str]:
    """The picture a shared link shows: the hero image, else the site's default share image."""
    if article.hero_image:
        return {"og_image": absolute(article.hero_image.url), "og_image_alt": article.hero_image_alt}
    if site.default_share_image:
        return {"og_image": absolute(site.default_share_image.url), "og_image_alt": site.default_share_image_alt}
    return {"og_image": "", "og_image_alt": ""}


def _note_date(noted_at: Any) -> dict[str, str]:
    return {"iso": html_datetime(noted_at), "display": date_format(timezone.localtime(noted_at), "F j, Y")}


def _page_dates(article: Article) -> dict[str, str]:
    """The article's dates as its page shows them, each formatted once (local time)."""
    dates = {"modified_iso": html_datetime(article.updated_at)}
    if article.published_at:
        published = timezone.localtime(article.published_at)
        dates["published_iso"] = html_datetime(published)
        dates["published_display"] = date_format(published, "F j, Y | H:i")
    return dates


@require_safe
@cache_public_page
def home(request: HttpRequest) -> HttpResponse:
    featured = None
    if "page" not in request.GET:
        found, _ = selectors.listing("featured", limit=1)
        featured = found[0] if found else None
    page = listing_page(request, "all-but" if featured else "all", featured.id if featured else None)
    return render(
        request,
        "articles/home.html",
        {"featured": featured, "page": page, "canonical_url": absolute(reverse("articles:home"))},
    )


@require_safe
@cache_public_page(query_params=())
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    found = selectors.article_for_page(slug)
    if found is None:
        raise Http404("No such article")
    context = article_page_context(*found)
    return render(request, "articles/article_detail.html", context)


@require_safe
@cache_public_page
def topic_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _listing_of(request, "topic", get_object_or_404(Topic, slug=slug))


@require_safe
@cache_public_page
def author_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _listing_of(request, "author", get_object_or_404(Author, slug=slug))


def _listing_of(request: HttpRequest, kind: str, subject: Topic | Author) -> HttpResponse:
    """A topic's or an author's page: their published pieces, newest first."""
    page = listing_page(request, kind, subject.pk)
    context = {kind: subject, "page": page, "canonical_url": absolute(subject.get_absolute_url())}
    return render(request, f"articles/{kind}.html", context)


@require_safe
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    page = None
    results: list[selectors.SearchResult] = []
    if query:
        page = paginate(request, selectors.search_articles(query), per_page=selectors.SEARCH_PAGE_SIZE)
        results = selectors.search_results(page.object_list, query)
    return render(request, "articles/search.html", {"query": query, "page": page, "results": results})


@require_safe
@cache_public_page(query_params=())
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /newsletter/",
        "Disallow: /search/",
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page that names no icon (the admin, the API docs)."""
    return redirect(static("articles/favicon.svg"), permanent=True)


# --- contributor submissions and staff preview --------------------------------------------------


@require_http_methods(["GET", "POST"])
def write(request: HttpRequest) -> HttpResponse:
    """The public "write for us" form: a piece arrives in the editors' review queue."""
    if request.method != "POST":
        return render(request, "articles/write.html", {"form": WriteForm()})
    form = WriteForm(request.POST, request.FILES)
    if form.is_bot():
        return _write_refused(request, WriteForm(), "Your submission could not be accepted.", status=400)
    sender = client_ip(request) or "unknown"
    if not ratelimit.hit(f"write:{sender}", settings.WRITE_RATE_LIMIT, settings.WRITE_RATE_WINDOW):
        message = "You have sent several pieces in a short time. Please try again in an hour."
        return _write_refused(request, form, message, status=429)
    if not form.is_valid():
        return _write_refused(request, form, "Please correct the fields marked below.", status=400)
    data = form.cleaned_data
    article = services.submit_contribution(
        name=data["name"],
        email=data["email"],
        bio=data["bio"],
        title=data["title"],
        standfirst=data["standfirst"],
        body_html=paragraphs_from_text(data["body"]),
        topics=data["topics"],
        image=data.get("image"),
        image_alt=data.get("image_alt", ""),
        image_credit=data.get("image_credit", ""),
    )
    # The thank-you page is the piece's private status page: its address is the writer's to keep.
    return redirect(contributors.status_path(article, article.article_authors.get().author) + "?sent=1")


def _write_refused(request: HttpRequest, form: WriteForm, message: str, status: int) -> HttpResponse:
    return render(request, "articles/write.html", {"form": form, "error": message}, status=status)


def write_thanks(request: HttpRequest) -> HttpResponse:
    return render(request, "articles/write_thanks.html")


@staff_member_required
def article_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """Any article as its public page would show it, for staff who may see it (unpublished ones too)."""
    article = get_object_or_404(Article, slug=slug)
    if not permissions.can_view(request.user, article):
        raise PermissionDenied
    context = article_page_context(article, selectors.article_links(article)) | {"is_preview": True}
    response = render(request, "articles/article_detail.html", context)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
