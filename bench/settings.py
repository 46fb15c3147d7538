"""Settings for `make bench-web`: the project's, plus the framework-ceiling view."""

from euro_prospects.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
