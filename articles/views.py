from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from articles import services
from articles.forms import WriteForm
from articles.html import paragraphs_from_text
from articles.models import Article, Author, Topic
from euro_prospects import ratelimit


def home(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.published().prefetch_related("authors", "topics")[:20]
    return render(request, "articles/home.html", {"articles": articles})


def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(Article.objects.published(), slug=slug)
    return render(request, "articles/article_detail.html", {"article": article})


def topic_detail(request: HttpRequest, slug: str) -> HttpResponse:
    topic = get_object_or_404(Topic, slug=slug)
    articles = Article.objects.published().filter(topics=topic)[:20]
    return render(request, "articles/home.html", {"articles": articles, "heading": topic.name})


def author_detail(request: HttpRequest, slug: str) -> HttpResponse:
    author = get_object_or_404(Author, slug=slug)
    articles = Article.objects.published().filter(authors=author)[:20]
    return render(request, "articles/home.html", {"articles": articles, "heading": author.name})


# --- contributor submissions and staff preview --------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


@require_http_methods(["GET", "POST"])
def write(request: HttpRequest) -> HttpResponse:
    """The public "write for us" form: a piece arrives in the editors' review queue."""
    if request.method != "POST":
        return render(request, "articles/write.html", {"form": WriteForm()})
    form = WriteForm(request.POST)
    if form.is_bot():
        return _write_refused(request, WriteForm(), "Your submission could not be accepted.", status=400)
    if not ratelimit.hit(f"write:{client_ip(request)}", settings.WRITE_RATE_LIMIT, settings.WRITE_RATE_WINDOW):
        message = "You have sent several pieces in a short time. Please try again in an hour."
        return _write_refused(request, form, message, status=429)
    if not form.is_valid():
        return _write_refused(request, form, "Please correct the fields marked below.", status=400)
    data = form.cleaned_data
    services.submit_contribution(
        name=data["name"],
        email=data["email"],
        bio=data["bio"],
        title=data["title"],
        standfirst=data["standfirst"],
        body_html=paragraphs_from_text(data["body"]),
        topics=data["topics"],
    )
    return redirect("articles:write_thanks")


def _write_refused(request: HttpRequest, form: WriteForm, message: str, status: int) -> HttpResponse:
    return render(request, "articles/write.html", {"form": form, "error": message}, status=status)


def write_thanks(request: HttpRequest) -> HttpResponse:
    return render(request, "articles/write_thanks.html")


@staff_member_required
def article_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """Any article as its public page would show it, for staff who may see it (unpublished ones too)."""
    article = get_object_or_404(Article, slug=slug)
    if not services.can_view(request.user, article):
        raise PermissionDenied
    response = render(request, "articles/article_detail.html", {"article": article, "is_preview": True})
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
