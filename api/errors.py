"""The API's own errors. Each carries its HTTP status and a short type name; the
handler in app.py renders them as {"error": {"code", "type", "message"}}."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    type = "InternalError"

    def __init__(self, message: str, type: str | None = None):
        super().__init__(message)
        self.message = message
        if type:
            self.type = type


class BadRequest(ApiError):
    status, type = 400, "BadRequest"


class Unauthorized(ApiError):
    status, type = 401, "Unauthorized"


class Forbidden(ApiError):
    status, type = 403, "Forbidden"


class NotFound(ApiError):
    """Also for what exists but the caller may not see: existence is not leaked."""

    status, type = 404, "NotFound"


class Conflict(ApiError):
    status, type = 409, "Conflict"


class ServiceUnavailable(ApiError):
    status, type = 503, "ServiceUnavailable"


class PayloadTooLarge(ApiError):
    status, type = 413, "PayloadTooLarge"
