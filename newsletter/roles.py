"""What the Editors group may do with the newsletter; Authors get nothing here.

The group itself belongs to ``articles`` (articles/roles.py), which never imports
``newsletter``; this app adds its own permissions to it. What each permission opens
in the admin (newsletter/admin.py):

- view campaign: the campaign list, live progress and its JSON, the email preview,
  the Newsletter box and column on the article pages;
- change campaign: cancel, retry failed deliveries, send a test to oneself;
- view delivery: the ledger;
- view subscriber: the list and the CSV export; add: the CSV import;
  change: undo a suppression, email a reader their data; delete: erase a reader;
- view/change suppression: the erased addresses' hashes.

Imports no models so the data migration can use it with historical models.
"""

from typing import Any

from articles.roles import EDITORS

EDITOR_PERMISSIONS = [
    "view_campaign", "change_campaign",
    "view_delivery",
    "view_subscriber", "add_subscriber", "change_subscriber", "delete_subscriber",
    "view_suppression", "change_suppression",
]  # fmt: skip


def _models(group_model: Any, permission_model: Any) -> tuple[Any, Any]:
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        return Group, Permission
    return group_model, permission_model


def _editor_permissions(permission_model: Any) -> Any:
    return permission_model.objects.filter(content_type__app_label="newsletter", codename__in=EDITOR_PERMISSIONS)


def grant_editor_permissions(group_model: Any = None, permission_model: Any = None) -> None:
    """Give the Editors group (created if missing) the newsletter permissions. Safe to run again."""
    group_model, permission_model = _models(group_model, permission_model)
    group, _ = group_model.objects.get_or_create(name=EDITORS)
    group.permissions.add(*_editor_permissions(permission_model))


def revoke_editor_permissions(group_model: Any = None, permission_model: Any = None) -> None:
    group_model, permission_model = _models(group_model, permission_model)
    for group in group_model.objects.filter(name=EDITORS):
        group.permissions.remove(*_editor_permissions(permission_model))
