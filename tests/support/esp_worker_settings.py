"""Settings of a test's worker process that sends through the ESP on loopback (tests/support/esp.py).

Anymail reads its keys from settings only; the test passes the API's address in
``TEST_MAILGUN_API_URL``."""

import os

from euro_prospects.settings import *  # noqa: F403
from euro_prospects.settings import ANYMAIL

ANYMAIL = {**ANYMAIL, "MAILGUN_API_KEY": "test-key", "MAILGUN_API_URL": os.environ["TEST_MAILGUN_API_URL"]}
