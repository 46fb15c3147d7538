"""factory_boy factories for the models every test area shares. Invented data only.

Call `Factory.create(...)` (not `Factory(...)`): it is typed as returning the model.
"""

from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic
from newsletter.models import Campaign, Delivery, Subscriber


class UserFactory(factory.django.DjangoModelFactory[Any]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    is_staff = True


class TopicFactory(factory.django.DjangoModelFactory[Topic]):
    class Meta:
        model = Topic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Topic {n}")
    slug = factory.Sequence(lambda n: f"topic-{n}")


class AuthorFactory(factory.django.DjangoModelFactory[Author]):
    class Meta:
        model = Author

    name = factory.Sequence(lambda n: f"Writer Number{n}")
    slug = factory.Sequence(lambda n: f"writer-{n}")
    role = "Correspondent"


class ArticleFactory(factory.django.DjangoModelFactory[Article]):
    """A published article; pass ``authors=[...]`` and ``topics=[...]`` in order."""

    class Meta:
        model = Article
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Article number {n}")
    slug = factory.Sequence(lambda n: f"article-{n}")
    standfirst = "A short summary of the piece."
    body = "<p>Some words about the subject of the piece.</p>"
    status = Article.Status.PUBLISHED
    published_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def authors(self: Article, create: bool, extracted: list[Author] | None, **kwargs: object) -> None:
        for position, author in enumerate(extracted or []):
            ArticleAuthor.objects.create(article=self, author=author, position=position)

    @factory.post_generation
    def reading_minutes(self: Article, create: bool, extracted: int | None, **kwargs: object) -> None:
        """Pin the reading time a page test shows (saving recomputes it from the body)."""
        if extracted is not None:
            Article.objects.filter(pk=self.pk).update(reading_minutes=extracted)
            self.reading_minutes = extracted

    @factory.post_generation
    def topics(self: Article, create: bool, extracted: list[Topic] | None, **kwargs: object) -> None:
        for position, topic in enumerate(extracted or []):
            ArticleTopic.objects.create(article=self, topic=topic, position=position)


class SubscriberFactory(factory.django.DjangoModelFactory[Subscriber]):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.org")
    status = Subscriber.Status.CONFIRMED
    confirmed_at = factory.LazyFunction(timezone.now)


class CampaignFactory(factory.django.DjangoModelFactory[Campaign]):
    """A planned campaign that is sending; add its ledger with DeliveryFactory."""

    class Meta:
        model = Campaign

    article = factory.SubFactory(ArticleFactory)
    status = Campaign.Status.SENDING
    planned_at = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory[Delivery]):
    class Meta:
        model = Delivery

    campaign = factory.SubFactory(CampaignFactory)
    subscriber = factory.SubFactory(SubscriberFactory)
    email = factory.LazyAttribute(lambda delivery: delivery.subscriber.email)
    status = Delivery.Status.PENDING
