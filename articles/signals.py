"""The one signal between the apps.

``article_published`` is sent by ``articles.services`` after the publishing
transaction commits, with ``article_id``. The newsletter app connects its
receiver in its AppConfig; ``articles`` never imports ``newsletter``.
"""

from django.dispatch import Signal

article_published = Signal()
