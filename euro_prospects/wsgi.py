import os

from django.core.wsgi import get_wsgi_application

from euro_prospects.observability import redact_gunicorn_logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "euro_prospects.settings")

application = get_wsgi_application()
# gunicorn's access log names each request's path: no reader's token in it.
redact_gunicorn_logs()
