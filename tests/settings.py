"""Settings of the test suite: production's, and what only tests need."""

from euro_prospects.settings import *  # noqa: F403
from euro_prospects.settings import BASE_DIR, DATABASES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tests run a real Celery worker in another process: it must see the test
    # database, so the SQLite test database is a file, not memory.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}
