from datetime import timedelta

from django.utils import timezone

from articles.models import Article
from newsletter.models import Subscriber
from tests.factories import ArticleFactory, SubscriberFactory, TopicFactory


def test_published_leaves_out_drafts_and_future_dates(db):
    live = ArticleFactory.create()
    ArticleFactory.create(status=Article.Status.DRAFT, published_at=None)
    ArticleFactory.create(published_at=timezone.now() + timedelta(hours=1))
    assert list(Article.objects.published()) == [live]


def test_wanting_finds_all_topic_readers_and_those_who_chose_the_topic(db):
    energy, economy = TopicFactory.create(), TopicFactory.create()
    everything = SubscriberFactory.create(all_topics=True)
    energy_only = SubscriberFactory.create(all_topics=False)
    energy_only.topics.set([energy])
    economy_only = SubscriberFactory.create(all_topics=False)
    economy_only.topics.set([economy])
    wanting = set(Subscriber.objects.confirmed().wanting([energy]))
    assert wanting == {everything, energy_only}
