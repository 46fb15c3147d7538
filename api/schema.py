from typing import Any

from drf_spectacular.openapi import AutoSchema

from api.errors import ErrorSerializer

ERROR_CODES = ["400", "401", "403", "404", "429"]


class ApiSchema(AutoSchema):
    """Adds the JSON error answers (see api.errors) to every operation in the OpenAPI schema."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = ERROR_CODES if self.method == "GET" else [*ERROR_CODES, "405", "415"]
        for code in codes:
            responses.setdefault(code, self._get_response_for_code(ErrorSerializer, code, direction=direction))
        return responses
