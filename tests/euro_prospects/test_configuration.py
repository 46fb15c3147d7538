"""docs/configuration.md is the one table of environment variables: it names every variable
the settings read, and names none they do not (but the few read elsewhere, as it says)."""

import re

from tests.support.workers import ROOT

# Read by the Makefile or by prometheus_client, not by the settings; documented all the same.
READ_ELSEWHERE = {"PORT", "PROMETHEUS_MULTIPROC_DIR", "TEST_REDIS_URL"}
SETTINGS_FILES = ["euro_prospects/settings.py", "euro_prospects/env.py"]


def variables_the_settings_read() -> set[str]:
    reads = re.compile(r'(?:os\.getenv|os\.environ\.get|env(?:bool|int|float|list))\(\s*"([A-Z][A-Z0-9_]*)"')
    return {name for path in SETTINGS_FILES for name in reads.findall((ROOT / path).read_text())}


def variables_the_table_names() -> set[str]:
    rows = [line for line in (ROOT / "docs" / "configuration.md").read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_the_table_names_every_variable_the_settings_read():
    assert sorted(variables_the_settings_read() - variables_the_table_names()) == []


def test_the_table_names_no_variable_nothing_reads():
    assert sorted(variables_the_table_names() - variables_the_settings_read() - READ_ELSEWHERE) == []
    assert variables_the_table_names() >= READ_ELSEWHERE


def test_the_check_finds_the_settings_variables():
    found = variables_the_settings_read()
    assert {"SECRET_KEY", "DATABASE_URL", "EMAIL_URL", "NEWSLETTER_BATCH_SIZE"} <= found
    assert len(found) > 90
