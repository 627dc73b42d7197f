"""The one error tree shared by every API client.

::

    ApiError                      any failed call; carries status, message, method, path
    ├── BadRequest                400: the body or arguments were rejected
    ├── Unauthorized              401: credentials missing, wrong or expired
    ├── Forbidden                 403: identified, but not allowed
    ├── NotFound                  404: no such resource
    ├── Conflict                  409: another operation is running on that resource
    ├── Timeout                   408/504, or no answer in time (the action may have happened)
    ├── ServerError               500/502/503 and other 5xx (500 may carry a support nonce)
    │   └── NotSupportedByApi     501: the API does not implement this operation
    ├── ConnectionFailed          could not connect, or the connection dropped mid-answer
    │   └── NotConnected          no connection was made: the request never left
    └── UnusableAnswer            a 2xx answer the client cannot use (not JSON, a field
                                  missing or of an unusable type); names the field

``outcome`` tells a person whether the action happened: ``"not done"`` when the
server refused it or it never reached the server, ``"unknown"`` when a mutating
request reached the server but no answer came back.

Messages never contain a secret: clients build them from the method, the path and
the server's own error text, and every error passes its message, code and support
reference through the process's redactor (core.redaction) when it is made, then
cuts them (`MESSAGE_LIMIT`, `CODE_LIMIT` characters): a server that echoes the
posted form, the bearer token or a password shows none of them, in `str`, `repr`
or `args`.
"""

from __future__ import annotations

from typing import Literal

from core.redaction import redact_and_cut

Outcome = Literal["not done", "unknown"]
MESSAGE_LIMIT = 300
CODE_LIMIT = 80


class ApiError(Exception):
    """A call to a provider API failed."""

    status: int | None = None
    label = "API error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        provider: str = "",
        kind: str = "",
        code: str | None = None,
        nonce: str | None = None,
        outcome: Outcome = "not done",
    ) -> None:
        message = redact_and_cut(message, MESSAGE_LIMIT)
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.method = method
        self.path = redact_and_cut(path, MESSAGE_LIMIT)
        self.provider = provider
        self.kind = kind
        self.code = None if code is None else redact_and_cut(code, CODE_LIMIT)
        self.nonce = None if nonce is None else redact_and_cut(nonce, CODE_LIMIT)
        self.outcome: Outcome = outcome

    @property
    def source(self) -> str:
        """`console (graphenedb): `: the provider's name and kind, as a reply starts; or ""."""
        if not self.provider:
            return ""
        return f"{self.provider} ({self.kind}): " if self.kind else f"{self.provider}: "

    def describe(self) -> str:
        """One line for a person: which provider (name and kind), what failed, the
        server's reason, and whether it happened."""
        where = f"{self.method} {self.path}".strip()
        text = self.source + self.label
        if self.status:
            text += f" ({self.status})"
        if where:
            text += f" on {where}"
        text += f": {self.message}"
        if self.code:
            text += f" [code {self.code}]"
        if self.nonce:
            text += f" (support reference {self.nonce})"
        if self.outcome == "unknown":
            text += ". The request reached the server; whether it took effect is unknown"
        elif self.method and self.method.upper() not in ("GET", "HEAD", "OPTIONS"):
            text += ". It was not done: nothing was changed"
        return text

    def __str__(self) -> str:
        return self.describe()


class BadRequest(ApiError):
    status = 400
    label = "Rejected as invalid"


class Unauthorized(ApiError):
    status = 401
    label = "Not authenticated"


class Forbidden(ApiError):
    status = 403
    label = "Not allowed by the API"


class NotFound(ApiError):
    status = 404
    label = "Not found"


class Conflict(ApiError):
    """409: the API says why (another operation in progress, the database locked):
    the label does not say it again."""

    status = 409
    label = "Busy"


class Timeout(ApiError):
    label = "Timed out"


class ServerError(ApiError):
    label = "Server error"


class NotSupportedByApi(ServerError):
    status = 501
    label = "Not implemented by the API"


class ConnectionFailed(ApiError):
    label = "Connection failed"


class NotConnected(ConnectionFailed):
    """No connection could be made, so the request provably never reached the server."""


class UnusableAnswer(ApiError):
    """The server answered, but not in a shape the client can use.

    The message names the thing and the field (``operation 42: no `id` in the
    answer``). For a mutating request a 2xx status means the server accepted it.
    """

    label = "Unusable answer"

    def describe(self) -> str:
        accepted = (
            self.status is not None
            and 200 <= self.status < 300
            and self.method.upper() not in ("", "GET", "HEAD", "OPTIONS")
        )
        if not accepted:
            return super().describe()
        where = f"{self.method} {self.path}".strip()
        return (
            f"{self.source}{self.label} on {where}: {self.message}. The server accepted the "
            f"request (HTTP {self.status}), so it has probably taken effect"
        )


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: Timeout,
    409: Conflict,
    501: NotSupportedByApi,
    504: Timeout,
}


def error_for_status(status: int) -> type[ApiError]:
    """The error class for an HTTP status (any other 4xx is a BadRequest, 5xx a ServerError)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return BadRequest
