"""A migration operation of statements that only PostgreSQL runs (search entries, kept bylines).

SQLite, the development database, searches by substring and builds bylines in its
statements: it has none of these tables, functions and triggers.
"""

from collections.abc import Sequence
from typing import Any

from django.db import migrations


def postgresql_only(create: Sequence[str], drop: Sequence[str]) -> migrations.RunPython:
    """Runs ``create`` forwards and ``drop`` backwards, on PostgreSQL only."""

    def run(statements: Sequence[str]) -> Any:
        def operation(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                for statement in statements:
                    schema_editor.execute(statement)

        return operation

    return migrations.RunPython(run(create), run(drop))
