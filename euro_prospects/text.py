"""Text from outside, made safe where it lands: single-line fields and spreadsheet cells.

One home for both checks, so the admin, the API, the public forms and the CSV
import refuse the same characters with the same message.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# C0 controls (CR and LF among them), DEL, the C1 controls (U+0085 is a line break to
# Python's str.splitlines, which the email package uses) and the Unicode line and
# paragraph separators. A single-line field holding one of them can end a header line
# in an email, a CSV row or a log line.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Cells a spreadsheet would read as a formula (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def first_control_character(value: str) -> str | None:
    """The first control character in ``value`` as ``U+000D``, or None."""
    found = CONTROL_CHARACTERS.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def validate_single_line(value: object) -> None:
    """Refuse line breaks and other control characters in a one-line field."""
    if not isinstance(value, str):
        return
    found = first_control_character(value)
    if found:
        raise ValidationError(
            "Enter a single line of text, without line breaks or control characters (found %(character)s).",
            code="control_characters",
            params={"character": found},
        )


def spreadsheet_cell(value: object) -> object:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs as a formula.

    Strings starting with ``= + - @``, a tab or a carriage return get a leading
    single quote; other values are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
