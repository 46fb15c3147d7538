"""Fuzz the API from its own OpenAPI schema: no input may cause a 500 or an answer the schema does not describe.

schemathesis calls the WSGI application in this process, so the requests see the
test database. The number of examples is bounded and the generation is
derandomised, so the run is repeatable and takes a predictable time.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from euro_prospects.wsgi import application
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory

CHECKS = [not_a_server_error, response_schema_conformance]


# Loaded at collection: building the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(autouse=True)
def api_data(db):
    # The test database lives in one transaction; Django's WSGI handler would
    # close that connection at the end of every request (the test client avoids
    # it the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    topic = TopicFactory.create(slug="politics", name="Politics")
    author = AuthorFactory.create(slug="a-writer", name="A Writer")
    ArticleFactory.create(slug="a-piece", topics=[topic], authors=[author])
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


BOUNDED = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@BOUNDED
def test_anonymous_callers_never_get_a_server_error_or_an_off_schema_answer(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@BOUNDED
def test_an_editor_never_gets_a_server_error_or_an_off_schema_answer(case, editor_token):
    case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Token {editor_token}"})


@pytest.fixture
def editor_token(eva):
    return AuthToken.objects.create(user=eva)[1]
