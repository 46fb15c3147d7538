import pytest

from articles.html import paragraphs_from_text, reading_minutes, sanitise_html
from tests.support.factories import ArticleFactory

XSS_PAYLOADS = [
    '<script>alert("x")</script>',
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">click</a>',
    '<a href=" javascript:alert(1)">click</a>',
    '<svg onload="alert(1)"><circle r="1"></circle></svg>',
    '<iframe src="https://evil.example/"></iframe>',
    '<p style="background:url(javascript:alert(1))" onclick="alert(1)">text</p>',
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    '<form action="https://evil.example/"><input name="password"></form>',
    '<body onload="alert(1)">',
    "<<script>script>alert(1)<</script>/script>",
    '<img src="vbscript:msgbox(1)">',
    "<!--<script>alert(1)</script>-->",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_it_removes_scripts_event_handlers_and_dangerous_urls(payload):
    cleaned = sanitise_html(f"<p>Before</p>{payload}<p>After</p>").lower()
    assert "<script" not in cleaned
    assert "javascript:" not in cleaned
    assert "vbscript:" not in cleaned
    assert "data:" not in cleaned
    assert " on" not in cleaned.replace("noopener", "")  # no onerror=, onload=, onclick=
    assert "<iframe" not in cleaned
    assert "<object" not in cleaned
    assert "<form" not in cleaned
    assert "style=" not in cleaned
    assert "<p>before</p>" in cleaned


def test_it_keeps_what_the_editor_produces():
    html = (
        "<h2>Section</h2><p><strong>Bold</strong> and <em>italic</em> with "
        '<a href="https://example.org/report">a link</a>.</p>'
        "<ul><li>one</li></ul><ol><li>two</li></ol><blockquote><p>A quote</p></blockquote>"
        '<figure><img src="/media/chart.png" alt="A chart"><figcaption>Chart</figcaption></figure>'
    )
    cleaned = sanitise_html(html)
    for fragment in [
        "<h2>Section</h2>",
        "<strong>Bold</strong>",
        "<em>italic</em>",
        'href="https://example.org/report"',
        "<ul><li>one</li></ul>",
        "<ol><li>two</li></ol>",
        "<blockquote>",
        '<img src="/media/chart.png" alt="A chart">',
        "<figcaption>Chart</figcaption>",
    ]:
        assert fragment in cleaned


def test_saving_an_article_stores_the_sanitised_body(db):
    article = ArticleFactory.create(body='<p onclick="steal()">Hello</p><script>steal()</script>')
    article.refresh_from_db()
    assert article.body == "<p>Hello</p>"


def test_reading_time_is_at_least_one_minute():
    assert reading_minutes("") == 1
    assert reading_minutes("<p>Short.</p>") == 1


def test_reading_time_counts_words_at_230_a_minute():
    assert reading_minutes("<p>" + "word " * 230 + "</p>") == 1
    assert reading_minutes("<p>" + "word " * 231 + "</p>") == 2
    assert reading_minutes("<p>" + "word " * 1840 + "</p>") == 8


def test_reading_time_adds_seconds_for_images():
    words = "<p>" + "word " * 230 + "</p>"
    # 60 s of words + 12 s for one image: rounds up to 2 minutes.
    assert reading_minutes(words + '<img src="a.png" alt="">') == 2
    # Twelve images: 12+11+...+3 = 75 s, then 3 s each for the 11th and 12th = 81 s.
    assert reading_minutes('<img src="a.png" alt="">' * 12) == 2


def test_reading_time_ignores_markup_and_script_text():
    assert reading_minutes("<p>" + "<strong>word</strong> " * 230 + "</p>") == 1
    assert reading_minutes("<script>" + "word " * 1000 + "</script>") == 1


def test_reading_time_is_refreshed_when_the_body_changes(db):
    article = ArticleFactory.create(body="<p>Short.</p>")
    assert article.reading_minutes == 1
    article.body = "<p>" + "word " * 1000 + "</p>"
    article.save()
    article.refresh_from_db()
    assert article.reading_minutes == 5


def test_plain_text_becomes_escaped_paragraphs():
    assert paragraphs_from_text("One <b>\nline\n\nTwo") == "<p>One &lt;b&gt;<br>line</p><p>Two</p>"
