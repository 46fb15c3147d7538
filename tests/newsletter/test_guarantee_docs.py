"""The sending guarantees in docs/newsletter.md each name the test that proves them: the names must exist."""

import re
from pathlib import Path

from tests.support.workers import ROOT


def test_every_test_the_docs_name_for_a_sending_guarantee_exists():
    readme = (ROOT / "docs" / "newsletter.md").read_text()
    section = readme[readme.index("Guarantees, each shown by the named test") :]
    section = section[: section.index("\n\n", section.index("\n- "))]
    named = set(re.findall(r"`([a-z0-9_]{20,})`", section))
    tests = Path(ROOT / "tests" / "newsletter" / "test_sending_guarantees.py").read_text()
    defined = set(re.findall(r"^def test_(\w+)\(", tests, flags=re.MULTILINE))
    assert len(named) >= 14
    assert named <= defined, sorted(named - defined)
