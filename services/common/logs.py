"""Structured JSON logging with request, user and session ids taken from contextvars."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from services.common.context import request_id_var, session_id_var, user_id_var

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra= fields are merged in."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "process": self._process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, var in (("request_id", request_id_var), ("user_id", user_id_var),
                         ("session_id", session_id_var)):
            value = var.get()
            if value is not None:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """Readable single lines for a developer's terminal."""

    def __init__(self, process: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s " + process + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        # extra= fields carry the detail (e.g. which dependency is down): show them too.
        extras = " ".join(f"{key}={value}" for key, value in record.__dict__.items()
                          if key not in _RESERVED and not key.startswith("_"))
        if extras:
            text = f"{text} {extras}"
        rid = request_id_var.get()
        return f"{text} [rid={rid}]" if rid else text


def setup_logging(process: str, level: str = "info", fmt: str = "json") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else ConsoleFormatter(process))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter at INFO would drown our own lines.
    for noisy in ("aiohttp.access", "psycopg.pool", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
