from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.settings import knox_settings
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """Hashed, expiring tokens (``Authorization: Token KEY``), refusing malformed keys before they reach the database.

    Keys from the plain-text tokens of earlier versions (40 characters) are malformed here too.
    """

    def authenticate_credentials(self, token: bytes) -> Any:
        length = knox_settings.AUTH_TOKEN_CHARACTER_LENGTH
        if len(token) != length or any(byte not in b"0123456789abcdef" for byte in token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)


class TokenScheme(OpenApiAuthenticationExtension):
    """Names the token header in the OpenAPI schema."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        prefix = knox_settings.AUTH_HEADER_PREFIX
        scheme: dict[str, Any] = build_bearer_security_scheme_object(header_name="Authorization", token_prefix=prefix)
        return scheme
