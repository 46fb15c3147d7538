"""The body's opening as plain text, stored with the article (search snippets are cut from it).

Existing articles get theirs here, a thousand at a time; ``Article.save`` keeps it up to date.
"""

from typing import Any

from django.db import migrations, models

from articles.html import opening_text


def fill(apps: Any, schema_editor: Any) -> None:
    Article = apps.get_model("articles", "Article")
    batch = []
    for article in Article.objects.only("id", "body").iterator(chunk_size=1000):
        article.opening_text = opening_text(article.body)
        batch.append(article)
        if len(batch) == 1000:
            Article.objects.bulk_update(batch, ["opening_text"])
            batch = []
    Article.objects.bulk_update(batch, ["opening_text"])


class Migration(migrations.Migration):
    dependencies = [("articles", "0011_article_listed_indexes")]

    operations = [
        migrations.AddField(
            model_name="article",
            name="opening_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
