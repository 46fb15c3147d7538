import re

from django import forms
from django.core.exceptions import ValidationError

from articles.images import contributor_image_help_text, validate_hero_image
from articles.models import Topic
from euro_prospects.text import validate_single_line

MAX_BODY_CHARS = 40_000
MAX_TOPICS = 3
_TAG = re.compile(r"</?[a-zA-Z!?]|&#|javascript:", re.IGNORECASE)


def no_html(value: str) -> None:
    if _TAG.search(value or ""):
        raise ValidationError(
            "Please write plain text without HTML tags; leave a blank line between paragraphs.", code="html"
        )


class WriteForm(forms.Form):
    """The public "write for us" form. Plain text only: the body becomes paragraphs."""

    name = forms.CharField(
        max_length=120, validators=[no_html, validate_single_line], help_text="As it should appear in the byline."
    )
    email = forms.EmailField(help_text="Only the editors see it; we reply to this address.")
    bio = forms.CharField(
        label="Short bio",
        max_length=600,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[no_html],
        help_text="Two or three sentences about you, shown with your article.",
    )
    title = forms.CharField(max_length=200, validators=[no_html, validate_single_line])
    standfirst = forms.CharField(
        max_length=600,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[no_html, validate_single_line],
        help_text="One paragraph that sums up the piece, without line breaks.",
    )
    body = forms.CharField(
        max_length=MAX_BODY_CHARS,
        widget=forms.Textarea(attrs={"rows": 20}),
        validators=[no_html],
        help_text=f"Plain text, up to {MAX_BODY_CHARS:,} characters. Leave a blank line between paragraphs.",
    )
    topics = forms.ModelMultipleChoiceField(
        queryset=Topic.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        help_text=f"Pick one to {MAX_TOPICS}; the first is the main one.",
    )
    image = forms.FileField(
        label="Image (optional)",
        required=False,
        validators=[validate_hero_image],
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
        help_text=contributor_image_help_text(),
    )
    image_alt = forms.CharField(
        label="Describe the image",
        required=False,
        max_length=250,
        validators=[no_html, validate_single_line],
        help_text="For readers who cannot see it. Needed with an image.",
    )
    image_credit = forms.CharField(
        label="Image credit",
        required=False,
        max_length=200,
        validators=[no_html, validate_single_line],
        help_text="Who made it, shown as “Image credit: …”. Needed with an image.",
    )
    consent = forms.BooleanField(
        label="I wrote this piece, I agree to the terms for contributors and to being contacted about it.",
    )
    # A field people never see (the `hidden` attribute); form-filling bots do.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def clean_topics(self) -> list[Topic]:
        topics = list(self.cleaned_data["topics"])
        if len(topics) > MAX_TOPICS:
            raise ValidationError(f"Pick at most {MAX_TOPICS} topics.", code="too_many")
        return topics

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("image"):
            for name, what in (("image_alt", "a description"), ("image_credit", "a credit")):
                if not data.get(name):
                    self.add_error(name, f"An image needs {what}.")
        return data

    def is_bot(self) -> bool:
        return bool(self.data.get("website"))
