"""The two newsroom roles as Django groups: Editors and Authors.

Editors do everything, including publish, schedule and unpublish. Authors
create and edit their own articles until they are published and submit them
for review; they never publish. The groups carry the permissions; the services
and the admin add the "own articles" rule.

Imports no models so the data migration can use it with historical models.
"""

from typing import Any

EDITORS = "Editors"
AUTHORS = "Authors"

GROUP_PERMISSIONS: dict[str, list[str]] = {
    EDITORS: [
        "add_article", "change_article", "delete_article", "view_article",
        "submit_article", "approve_article", "schedule_article", "publish_article", "unpublish_article",
        "view_articleinreview", "change_articleinreview",
        "add_author", "change_author", "delete_author", "view_author",
        "add_topic", "change_topic", "delete_topic", "view_topic",
        "change_sitesettings", "view_sitesettings",
        "view_historicalarticle", "view_articletransition",
    ],
    AUTHORS: [
        "add_article", "change_article", "view_article", "submit_article",
        "view_author", "view_topic",
    ],
}  # fmt: skip


def ensure_groups(group_model: Any = None, permission_model: Any = None) -> None:
    """Create (or complete) both groups. Safe to run again."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.add(
            *permission_model.objects.filter(content_type__app_label="articles", codename__in=codenames)
        )
