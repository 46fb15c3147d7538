from typing import Any

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token auth (``Authorization: Token KEY``), refusing malformed keys before they reach the database."""

    def authenticate_credentials(self, key: str) -> Any:
        if len(key) != 40 or not key.isalnum() or not key.isascii():
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
