from __future__ import annotations

from typing import Any

from django import forms

from articles.models import Topic
from euro_prospects.text import validate_single_line
from newsletter.models import Subscriber
from newsletter.services import InvalidEmail, normalise_email


class EmailField(forms.CharField):
    """An address checked with email-validator (syntax only) and returned normalised."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 320)
        kwargs.setdefault("widget", forms.EmailInput(attrs={"autocomplete": "email"}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        try:
            return normalise_email(value)
        except InvalidEmail as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class SubscribeForm(forms.Form):
    email = EmailField(label="Email address")
    name = forms.CharField(label="Name (optional)", max_length=120, required=False, validators=[validate_single_line])
    # Honeypot: hidden from people by CSS; bots that fill every field fill it too.
    website = forms.CharField(label="Leave this field empty", max_length=200, required=False)
    topics = forms.ModelMultipleChoiceField(
        queryset=Topic.objects.all(), to_field_name="slug", required=False, widget=forms.CheckboxSelectMultiple
    )
    cadence = forms.ChoiceField(label="How often (optional)", choices=Subscriber.Cadence.choices, required=False)

    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))


class PreferencesForm(forms.Form):
    all_topics = forms.TypedChoiceField(
        label="What would you like to receive?",
        choices=[("1", "Every topic"), ("0", "Only the topics I choose")],
        coerce=lambda value: value == "1",
        widget=forms.RadioSelect,
    )
    topics = forms.ModelMultipleChoiceField(
        queryset=Topic.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    cadence = forms.ChoiceField(choices=Subscriber.Cadence.choices, widget=forms.RadioSelect)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("all_topics") is False and not cleaned.get("topics"):
            raise forms.ValidationError("Choose at least one topic, or every topic.")
        return cleaned


class PrivacyRequestForm(forms.Form):
    email = EmailField(label="Email address")
