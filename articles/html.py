"""The HTML policy of article bodies, and the reading time and opening text derived from them.

``sanitise_html`` is the one place that decides which HTML may be stored and
shown: the admin editor, the API and the contributor form all go through it
(``Article.save`` calls it).
"""

import math
import re
from html import unescape

import nh3
from django.utils.html import escape

# What the admin's rich-text editor produces: headings, paragraphs, emphasis,
# links, lists, quotes, figures with images, tables and rules.
ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "strong", "b", "em", "i", "u", "s", "sub", "sup",
    "a", "ul", "ol", "li", "blockquote", "hr", "figure", "figcaption", "img",
    "table", "thead", "tbody", "tr", "th", "td", "code", "pre",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start", "type"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
}
# No javascript:, data: or vbscript: URLs; relative links stay allowed.
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel"}

WORDS_PER_MINUTE = 230
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
_IMAGE = re.compile(r"<img\b", re.IGNORECASE)
OPENING_LENGTH = 1000  # characters of the body's HTML that its opening text is made from
# A tag, or a tag or character reference cut short where those characters end.
_MARKUP = re.compile(r"<[^>]*(?:>|$)|&#?\w*$")


def sanitise_html(html: str) -> str:
    """Keep only the tags, attributes and URL schemes above; drop scripts and event handlers entirely."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


def text_of(html: str) -> str:
    """The readable text of an HTML fragment, tags removed."""
    return nh3.clean(html or "", tags=set(), clean_content_tags={"script", "style"})


def opening_text(body: str) -> str:
    """The first ``OPENING_LENGTH`` characters of ``body`` as one line of plain text.

    Search results cut their snippets from it (articles/search.py); it is stored with the
    article, so a search does not parse twenty bodies again on every request.
    """
    return " ".join(unescape(_MARKUP.sub(" ", (body or "")[:OPENING_LENGTH])).split())


def reading_minutes(html: str) -> int:
    """Minutes a reader needs for ``html``: words at 230 a minute, plus time for each image.

    Images count 12 seconds for the first, one second less for each next one,
    and 3 seconds from the tenth on. At least one minute, rounded up.
    """
    words = len(_WORD.findall(text_of(html)))
    images = len(_IMAGE.findall(html or ""))
    image_seconds = sum(max(12 - index, 3) for index in range(images))
    seconds = words * 60 / WORDS_PER_MINUTE + image_seconds
    return max(1, math.ceil(seconds / 60))


def paragraphs_from_text(text: str) -> str:
    """Plain text from the contributor form as HTML paragraphs: blank lines separate them."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if block.strip()]
    return "".join("<p>" + escape(block).replace("\n", "<br>") + "</p>" for block in blocks)
