"""Per-call context (request id, user id, session id) carried through contextvars."""

from __future__ import annotations

import contextvars
import secrets

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)
session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "session_id", default=None
)

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_METADATA = "x-request-id"
# A client-sent request id is echoed only when it is short and printable, so
# it cannot be used to inject into logs or headers.
_MAX_REQUEST_ID = 128


def new_request_id() -> str:
    """A fresh request id: 128 random bits, hex."""
    return secrets.token_hex(16)


def clean_request_id(value: str | None) -> str:
    """Keep a caller's request id when it is safe to echo, else make a new one."""
    if value and len(value) <= _MAX_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return new_request_id()
