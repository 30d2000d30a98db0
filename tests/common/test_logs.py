"""Structured logs: JSON lines carrying request, user and session ids from context."""

from __future__ import annotations

import io
import json
import logging

from services.common.context import clean_request_id, request_id_var, session_id_var, user_id_var
from services.common.logs import JsonFormatter


def _render(record_msg: str, *args: object, **extra: object) -> dict[str, object]:
    logger = logging.getLogger("test.logs")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("unit"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(record_msg, *args, extra=extra)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


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
