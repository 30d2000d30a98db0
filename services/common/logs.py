"""Structured JSON logging with request, user and session ids taken from contextvars; no credentials."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from services.common.context import request_id_var, session_id_var, user_id_var

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

# Credentials in the shapes they take in text: an Authorization value, a JWT anywhere, a
# cookie or token header line, a token in a query string or a JSON field. Code should never
# log them; this is the net under the code (a library's exception quoting a request, say).
REDACTED = "[redacted]"
_CREDENTIAL = re.compile(
    r"(?P<scheme>\b(?:bearer|(?-i:Basic))\s+)[A-Za-z0-9._~+/=-]{4,}"
    r"|eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}"
    r"|(?P<header>\b(?:authorization|proxy-authorization|cookie|set-cookie|x-tandem-service-token)"
    r"\\?[\"']?(?:\s*[:=]\s*|(?<=[\"']),\s*)\\?[\"']?)[^\r\n\\\"']{4,}"
    r"|(?P<param>[?&;](?:access_token|refresh_token|id_token|token|code|state|client_secret|password)=)"
    r"[^&\s\\\"'#]+"
    r"|(?P<assign>\b(?:access_token|refresh_token|id_token|client_secret|service_token|github_token)"
    r"\s*=\s*[\"']?)[^&\s\\\"',)#]+"
    r"|(?P<field>\\?[\"'](?:access_token|refresh_token|id_token|client_secret|password|service_token|github_token)"
    r"\\?[\"']\s*:\s*\\?[\"'])[^\"'\\]+",
    re.IGNORECASE)


def _redacted(match: re.Match[str]) -> str:
    for group in ("scheme", "header", "param", "assign", "field"):
        kept = match.group(group)
        if kept is not None:
            return kept + REDACTED
    return REDACTED


# Every match of _CREDENTIAL holds one of these (lower-cased): a line without any skips the
# regex (~100 us on a 400-character line, IGNORECASE defeats its literal search; the check
# costs a few us, well under formatting the line itself).
_TRIGGERS = ("bearer", "basic", "eyj", "authorization", "cookie", "token", "code=", "state=",
             "secret", "password")


def redact(text: str) -> str:
    """`text` with every credential-shaped part replaced by [redacted]."""
    lowered = text.lower()
    for word in _TRIGGERS:
        if word in lowered:
            return _CREDENTIAL.sub(_redacted, text)
    return text


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
        return redact(orjson.dumps(entry, default=str).decode())


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
        return redact(f"{text} [rid={rid}]" if rid else text)


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
