"""Plain-text API tokens (DRF's authtoken app) are gone: drop their table and its traces.

Tokens are now django-rest-knox's hashed, expiring ones; the old keys stop working
and their owners make new ones (docs/deploy.md, "Upgrades").
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import StateApps


def drop_authtoken(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    connection = schema_editor.connection
    if "authtoken_token" in connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name('authtoken_token')}")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission.objects.using(connection.alias).filter(content_type__app_label="authtoken").delete()
    ContentType.objects.using(connection.alias).filter(app_label="authtoken").delete()
    # Forget its migrations, so installing the app again would create its table again.
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(drop_authtoken, migrations.RunPython.noop)]
