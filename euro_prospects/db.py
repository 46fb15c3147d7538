"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

# psycopg's own loader of timestamps with a time zone (in C with psycopg[binary]). Django
# subclasses it, in Python, only to hand every value the connection's tzinfo object; a
# listing's dozen dates cost 50 us that way. Our statements get the same instants, in the
# session's time zone (UTC, as Django sets it), and turn them into local time themselves.
_TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
_FAST_TIMESTAMPTZ = psycopg.adapters.get_loader(_TIMESTAMPTZ, psycopg.pq.Format.TEXT)


class _PreparingCursor(psycopg.Cursor[Any]):
    """Binds parameters on the server and prepares every statement on its first run."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
        # Django leaves psycopg's threshold at None, which turns preparing off for the
        # connection. Only for this statement: with a threshold set, psycopg would also
        # keep count of every ORM query the connection runs, which it never prepares.
        threshold = self.connection.prepare_threshold
        if threshold is None:
            self.connection.prepare_threshold = 0
        try:
            return super().execute(query, params, prepare=True, **kwargs)
        finally:
            self.connection.prepare_threshold = threshold

    def _send_query_prepared(self, name: bytes, pgq: Any, **kwargs: Any) -> None:
        # psycopg keeps the statement it ran only when it did not prepare it;
        # Django's query log reads it from there.
        self._query = pgq
        super()._send_query_prepared(name, pgq, **kwargs)


def _keep_plans() -> None:
    """Have PostgreSQL plan each prepared statement once, not on every run.

    By default it plans a prepared statement afresh on each of its first five runs, and
    after them whenever the kept plan looks costlier than the fresh ones: for the listing
    statements, always (0.4-0.6 ms of planning for 0.6 ms of work). Only statements
    prepared on the server see this setting, and only ours are (Django binds the ORM's
    parameters on the client). Set once per connection, outside a transaction, where no
    rollback can undo it (inside one, it waits for the connection's next use outside).
    """
    database: Any = connection.connection
    if getattr(database, "plans_kept", False) or connection.in_atomic_block:
        return
    database.execute("SET plan_cache_mode = force_generic_plan")
    database.plans_kept = True


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A cursor for a hand-written hot statement that PostgreSQL plans once per connection.

    For statements every page view runs: planning the article page's statement
    cost PostgreSQL more than running it. Django's cursors bind parameters on
    the client, so PostgreSQL cannot keep a plan; this one binds them on the
    server and prepares each statement on first use. It is still Django's cursor
    wrapper, so query counting and logging see it. On SQLite, or with
    ``DB_PREPARED_STATEMENTS=false`` (a pooler that cannot keep prepared
    statements), it is a plain cursor.
    """
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    _keep_plans()
    raw: Any = _PreparingCursor(connection.connection)
    raw.adapters.register_loader(_TIMESTAMPTZ, _FAST_TIMESTAMPTZ)
    wrapped = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with wrapped as cursor:
        yield cursor
