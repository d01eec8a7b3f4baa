"""Domain errors of the service, mapped to HTTP responses in one place (`api.main`).

    ModeratoError
     ├── NotAuthenticated      missing / unknown / expired credential          -> 401
     ├── Forbidden             a valid credential of the wrong kind            -> 403
     ├── NotFound              no such row for this site (another site's too)  -> 404
     │    ├── SiteNotFound
     │    └── CommentNotFound
     ├── Conflict              the request contradicts stored state            -> 409
     ├── InvalidRequest        well-formed but unacceptable values             -> 422
     └── ServiceUnavailable    no bundle loaded, database down                 -> 503

Classifier errors (`classifier.errors`) are mapped alongside: InputError -> 422, BundleError -> 503.
"""

from __future__ import annotations

from typing import Any


class ModeratoError(Exception):
    """Root of the service's deliberate errors; `detail` is the stable text clients see."""

    status_code = 500

    def __init__(self, detail: Any, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class NotAuthenticated(ModeratoError):
    status_code = 401

    def __init__(self, detail: Any = "Invalid or missing API key") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ModeratoError):
    status_code = 403


class NotFound(ModeratoError):
    status_code = 404


class SiteNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Site not found: {name}")


class CommentNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Comment not found")


class Conflict(ModeratoError):
    status_code = 409


class InvalidRequest(ModeratoError):
    status_code = 422

    def __init__(self, message: str, *, loc: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__([{"type": "value_error", "loc": list(loc), "msg": message}])


class ServiceUnavailable(ModeratoError):
    status_code = 503


#: Perspective (Google API) error shape, shared by the Perspective-compatible routes and the body
#: size limit that answers them before any route runs.
GOOGLE_ERROR_TYPE = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 413: "INVALID_ARGUMENT", 503: "UNAVAILABLE"}


def google_error(code: int, message: str, *, error_type: str = "INVALID_REQUEST", **detail: Any) -> dict[str, Any]:
    """The body of a Google API error as Perspective's clients parse it."""
    status = GOOGLE_STATUS.get(code, "INVALID_ARGUMENT")
    details = [{"@type": GOOGLE_ERROR_TYPE, "errorType": error_type, **detail}]
    return {"error": {"code": code, "message": message, "status": status, "details": details}}
