"""Reads on subscribers' QuerySets."""

from newsletter.models import Subscriber
from tests.support.factories import SubscriberFactory, TopicFactory


def test_wanting_finds_all_topic_readers_and_those_who_chose_the_topic(db):
    energy, economy = TopicFactory.create(), TopicFactory.create()
    everything = SubscriberFactory.create(all_topics=True)
    energy_only = SubscriberFactory.create(all_topics=False)
    energy_only.topics.set([energy])
    economy_only = SubscriberFactory.create(all_topics=False)
    economy_only.topics.set([economy])
    wanting = set(Subscriber.objects.confirmed().wanting([energy]))
    assert wanting == {everything, energy_only}
