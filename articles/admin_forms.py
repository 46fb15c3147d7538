"""The article page's form: it remembers the version it opened and refuses a silent overwrite."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from articles import writing
from articles.models import Article


class ArticleAdminForm(forms.ModelForm):
    """``opened_version`` travels with the page; a save of an older version is merged or refused.

    On a conflict the form comes back with: the fields only the other person changed
    taken from their save, the fields both changed side by side (``merge.both_changed``),
    and an "Overwrite with my version" button that posts the saved version as ``_overwrite``.
    """

    opened_version = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Article
        fields: list[str] = []  # the admin's fieldsets add the model's fields

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.merge: writing.Merge | None = None
        if self.instance.pk is not None:
            self.fields["opened_version"].initial = writing.version_of(self.instance)
        # A conflict writes the other person's changes into the form as it comes back.
        posted = self.data
        self.posted: QueryDict | dict[str, Any] = posted.copy() if isinstance(posted, QueryDict) else {**posted}
        self.data = self.posted

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is None or not ({"opened_version", "_overwrite"} & set(self.data)):
            return cleaned  # a new piece, or a post that does not say what it opened (not the admin's page)
        current = Article.objects.get(pk=self.instance.pk)
        version = writing.version_of(current)
        opened = self.data.get("_overwrite") or cleaned.get("opened_version") or ""
        if opened == version:
            return cleaned
        editable = [name for name in writing.MERGED_FIELDS if name in self.fields and name in cleaned]
        labels = {name: str(self.fields[name].label or name) for name in editable}
        self.merge = writing.merge(
            article=current,
            opened_version=cleaned.get("opened_version") or "",
            yours={name: cleaned[name] for name in editable},
            labels=labels,
        )
        for name in self.merge.taken_from_them:
            cleaned[name] = self.posted[name] = getattr(current, name)
            self[name].__dict__.pop("data", None)  # BoundField caches what it read from the post
        raise ValidationError(
            f"{self.merge.saved_by} saved this piece after you opened it. Your changes are not saved yet: "
            "check the differences below, then save again.",
            code="edit_conflict",
        )
