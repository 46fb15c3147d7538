"""The public site: home, article, topic, author and search pages, robots.txt."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.views.decorators.http import require_http_methods, require_safe

from articles import contributors, listings, permissions, search, selectors, services
from articles.cache import cache_public_page, per_generation
from articles.forms import WriteForm
from articles.html import paragraphs_from_text
from articles.links import cached_reverse
from articles.models import Article, Author, SiteSettings, Topic
from articles.structured_data import news_article_json_ld
from euro_prospects import ratelimit
from euro_prospects.jinja2 import html_datetime
from euro_prospects.security import client_ip

T = TypeVar("T")


def page_number(request: HttpRequest) -> int:
    """The page a listing request asks for; 404 if it is not a page number."""
    try:
        number = int(request.GET.get("page") or 1)
    except ValueError:
        raise Http404("No such page") from None
    if not 1 <= number < 10**9:  # past 10**9 the offset would not fit the database's integers
        raise Http404("No such page")
    return number


def listing_page(request: HttpRequest, kind: str, slug: str = "") -> tuple[listings.Listing, Page[listings.Card]]:
    """The requested page of a listing (listings.listing: one statement); 404 past the end or for no owner."""
    number = page_number(request)
    per_page = listings.PAGE_SIZE
    found = listings.listing(kind, slug=slug, limit=per_page, offset=(number - 1) * per_page)
    if found is None:
        raise Http404("No such page")
    return found, page_of(found.cards, number, per_page, total=found.total)


def page_of(items: list[T], number: int, per_page: int, *, total: int) -> Page[T]:
    """Page ``number`` of a list of ``total`` items, given the page's ``items``; 404 past the end."""
    paginator: Paginator[int] = Paginator(range(total), per_page, allow_empty_first_page=True)
    try:
        paginator.validate_number(number)
    except InvalidPage:
        raise Http404("No such page") from None
    return Page(items, number, paginator)  # type: ignore[arg-type]


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
    # The first page leads with the latest featured piece and lists the others.
    found, page = listing_page(request, "all" if "page" in request.GET else "home")
    return render(
        request,
        "articles/home.html",
        {"featured": found.featured, "page": page, "canonical_url": absolute(cached_reverse("articles:home"))},
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
    return _listing_of(request, "topic", slug)


@require_safe
@cache_public_page
def author_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _listing_of(request, "author", slug)


def _listing_of(request: HttpRequest, kind: str, slug: str) -> HttpResponse:
    """A topic's or an author's page: their published pieces, newest first (one statement)."""
    found, page = listing_page(request, kind, slug)
    subject = cast(Topic | Author, found.owner)
    context = {kind: subject, "page": page, "canonical_url": absolute(subject.get_absolute_url())}
    return render(request, f"articles/{kind}.html", context)


@require_safe
def search_results(request: HttpRequest) -> HttpResponse:
    # PostgreSQL refuses a NUL character in text: a reader's stray "%00" searches without it.
    query = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    page = None
    if query:
        number, per_page = page_number(request), search.PAGE_SIZE
        hits, total = search.search(query, limit=per_page, offset=(number - 1) * per_page)
        page = page_of(hits, number, per_page, total=total)
    return render(request, "articles/search.html", {"query": query, "page": page})


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
