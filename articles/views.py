from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from articles.models import Article, Author, Topic


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
