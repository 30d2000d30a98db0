"""Structured logs: JSON lines carrying request, user and session ids from context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

from services.common.context import clean_request_id, request_id_var, session_id_var, user_id_var
from services.common.logs import JsonFormatter, redact


def _capture(log: Callable[[logging.Logger], None]) -> dict[str, object]:
    """The one JSON line `log` writes through the formatter."""
    logger = logging.getLogger("test.logs")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("unit"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        log(logger)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def _render(record_msg: str, *args: object, **extra: object) -> dict[str, object]:
    return _capture(lambda logger: logger.warning(record_msg, *args, extra=extra))


def test_json_line_has_context_ids_and_extras() -> None:
    tokens = (request_id_var.set("req-1"), user_id_var.set("user-1"), session_id_var.set("sess-1"))
    try:
        entry = _render("hello %s", "world", attempt=3)
    finally:
        request_id_var.reset(tokens[0])
        user_id_var.reset(tokens[1])
        session_id_var.reset(tokens[2])
    assert entry["msg"] == "hello world"
    assert entry["request_id"] == "req-1"
    assert entry["user_id"] == "user-1"
    assert entry["session_id"] == "sess-1"
    assert entry["attempt"] == 3
    assert entry["level"] == "warning"
    assert entry["process"] == "unit"


def test_context_ids_absent_when_unset() -> None:
    entry = _render("plain")
    assert "request_id" not in entry
    assert "user_id" not in entry


def test_request_id_is_echoed_only_when_safe() -> None:
    assert clean_request_id("abc-123") == "abc-123"
    for bad in ("x" * 500, "line\nbreak", "ünïcode", "", None):
        cleaned = clean_request_id(bad)
        assert cleaned != bad
        assert len(cleaned) == 32


JWT = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
SECRET = "S3cr3tV4lu3xyz"


def _render_exception(message: str) -> dict[str, object]:
    def log(logger: logging.Logger) -> None:
        try:
            raise ValueError(message)
        except ValueError:
            logger.exception("failed")

    return _capture(log)


def test_credentials_in_messages_extras_and_tracebacks_are_redacted() -> None:
    cases = {
        "bearer in a parser's quote": f"Got more than 8190 bytes when reading: b'Bearer {SECRET}bbbb...'",
        "authorization header": f"headers: Authorization: Basic {SECRET}",
        "cookie": f"Cookie: session={SECRET}; theme=dark",
        "service token": f"x-tandem-service-token: {SECRET}",
        "query token": f"GET /api/v1/sessions/1/doc?access_token={SECRET}&x=1",
        "oauth code": f"/api/v1/auth/github/callback?code={SECRET}&state={SECRET}",
        "bare jwt": f"token was {JWT} for you",
        "metadata as a tuple": f"metadata=[('x-tandem-service-token', '{SECRET}')]",
        "a python dict": f"body {{'refresh_token': '{SECRET}'}}",
        "a bare assignment": f"client_secret='{SECRET}' refresh_token={SECRET}",
    }
    for name, text in cases.items():
        line = json.dumps(_render("%s", text))
        assert SECRET not in line, (name, line)
        assert JWT[:20] not in line, (name, line)
        assert "[redacted]" in line, (name, line)
    extra = json.dumps(_render("login", body={"refresh_token": SECRET, "access_token": JWT}))
    assert SECRET not in extra, extra
    assert JWT[:20] not in extra, extra
    tb = _render_exception(f"bad header b'Bearer {SECRET}'")
    assert SECRET not in json.dumps(tb), tb


def test_redaction_leaves_ordinary_lines_alone() -> None:
    for text in ("GET /api/v1/sessions/3f1c/messages 200", "access token expired",
                 "basic setup done", '{"code": "not_found"}', "refresh token reuse detected",
                 "exit code=2", "the sign-in cookie, then the callback"):
        assert redact(text) == text
