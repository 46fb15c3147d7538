"""API tokens: hashed at rest (django-rest-knox), expiring after API_TOKEN_TTL, revocable.

The key is shown once, when it is made; the database keeps its SHA-512 digest and
its first characters (``token_key``), which name the token in lists and URLs.
Only someone who signed in with a password, and with two factors where their
account needs them, makes a token: a token cannot make another one, so no chain
of tokens outlives the expiry. An operator with shell access makes one with
``manage.py drf_create_token USER``. Owners and Editors list and revoke tokens,
here under /api/v1/tokens/ and in the admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from articles.permissions import is_editor
from euro_prospects.twofactor import requires_two_factor

KEY_START_PATTERN = r"[0-9a-f]{1,15}"


# --- rules ------------------------------------------------------------------------------------


def signed_in_with_every_factor(user: Any) -> bool:
    """True for a password session that also passed two-factor where this account needs it."""
    if requires_two_factor(user):
        is_verified = getattr(user, "is_verified", None)
        return bool(is_verified and is_verified())
    return True


def create_api_token(*, user: AbstractBaseUser) -> tuple[AuthToken, str]:
    """A new token for ``user``, expiring after API_TOKEN_TTL; returns the row and the key (shown once)."""
    return AuthToken.objects.create(user=user)


def tokens_visible_to(user: Any) -> QuerySet[AuthToken]:
    """Live tokens: every one for Editors, their own for everybody else."""
    tokens = AuthToken.objects.select_related("user").filter(expiry__gt=timezone.now()).order_by("-created")
    return tokens if is_editor(user) else tokens.filter(user=user)


def can_revoke(user: Any, token: AuthToken) -> bool:
    return bool(user.is_active and (token.user_id == user.pk or is_editor(user)))


def revoke_api_token(*, token: AuthToken, by: Any) -> None:
    if not can_revoke(by, token):
        raise PermissionDenied("Only the token's owner or an editor may revoke it.")
    token.delete()


# --- /api/v1/tokens/ --------------------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer[AuthToken]):
    id = serializers.CharField(source="token_key", read_only=True, help_text="The key's first characters.")
    user = serializers.CharField(source="user.get_username", read_only=True)

    class Meta:
        model = AuthToken
        fields = ["id", "user", "created", "expiry"]


class NewTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The key itself: shown this once, never again.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class TokenList(APIView):
    """List your live API tokens (Editors: everyone's), or make a new one from a signed-in session."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(TokenSerializer(tokens_visible_to(request.user), many=True).data)

    @extend_schema(request=None, responses={201: NewTokenSerializer})
    def post(self, request: Request) -> Response:
        if request.auth is not None:
            raise PermissionDenied("Make a new token from a signed-in session (the admin), not with a token.")
        if not request.user.is_staff:
            raise PermissionDenied("Only staff accounts use API tokens.")
        if not signed_in_with_every_factor(request.user):
            raise PermissionDenied("Sign in with your two-factor code before making a token.")
        token, key = create_api_token(user=request.user)
        token.token = key
        return Response(NewTokenSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetail(APIView):
    """Revoke a token: its owner or an Editor. Anyone else is told it does not exist."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: str) -> Response:
        token = tokens_visible_to(request.user).filter(token_key=token_id).first()
        if token is None:
            raise Http404("No such token.")
        revoke_api_token(token=token, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
