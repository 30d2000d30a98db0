"""GitHub-style JSON bodies, errors, ETags and pagination shared by every route."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

DOCS = "https://docs.github.com/rest"
JSON_TYPE = "application/json"
# GitHub varies every API answer on these; caches between Tandem and us must too.
VARY = "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding"

T = TypeVar("T")


class ApiError(Exception):
    """An error answered the way api.github.com answers it."""

    def __init__(
        self,
        status: int,
        message: str,
        documentation_url: str = DOCS,
        errors: Sequence[object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url
        self.errors = errors
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = list(self.errors)
        body["documentation_url"] = self.documentation_url
        body["status"] = str(self.status)
        return json_body(body, status=self.status, headers=self.headers)


def not_found(documentation_url: str = DOCS) -> ApiError:
    return ApiError(404, "Not Found", documentation_url)


def dumps(data: object) -> bytes:
    # api.github.com pretty-prints; matching it keeps curl sessions readable.
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


def json_body(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data),
        status=status,
        headers=dict(headers or {}),
        content_type=JSON_TYPE,
        charset="utf-8",
    )


def http_exception_response(exc: web.HTTPException) -> web.Response:
    """aiohttp's own 404/405/413 and friends, reworded as GitHub would answer them."""
    if exc.status == 405:
        # GitHub answers an unsupported method on a known path with 404.
        return not_found().response()
    if exc.status == 404:
        return not_found().response()
    if exc.status == 413:
        return ApiError(413, "Payload too large").response()
    return ApiError(exc.status, exc.reason).response()


def etag_of(body: bytes, variant: str = "") -> str:
    return '"' + hashlib.sha256(variant.encode() + b"\0" + body).hexdigest() + '"'


def if_none_match(request: web.Request, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match uses: W/"x" matches "x"."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def cacheable(
    request: web.Request,
    body: bytes,
    content_type: str = JSON_TYPE,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A GET answer with a strong ETag, or 304 with an empty body when the client has it."""
    etag = etag_of(body, content_type)
    common = {
        "ETag": etag,
        "Cache-Control": "private, max-age=60, s-maxage=60",
        "Vary": VARY,
        **(headers or {}),
    }
    if if_none_match(request, etag):
        return web.Response(status=304, headers=common)
    response = web.Response(body=body, headers=common)
    response.content_type = content_type
    if content_type.startswith(("application/json", "text/")):
        response.charset = "utf-8"
    return response


def cacheable_json(
    request: web.Request, data: object, headers: Mapping[str, str] | None = None
) -> web.Response:
    return cacheable(request, dumps(data), headers=headers)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; GitHub's 400 for anything that does not parse."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "Problems parsing JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Problems parsing JSON")
    return data


def invalid(field: str, value: object, expected: str, documentation_url: str = DOCS) -> ApiError:
    """GitHub's schema-validation 422, e.g. "For 'properties/event', 5 is not a string."."""
    shown = json.dumps(value) if isinstance(value, str) else repr(value)
    return ApiError(
        422,
        f"Invalid request.\n\nFor 'properties/{field}', {shown} is not {expected}.",
        documentation_url,
    )


def paginate(request: web.Request, items: Sequence[T]) -> tuple[Sequence[T], dict[str, str]]:
    """Slice by ?page=&per_page= (30 by default, at most 100) with GitHub's Link header."""
    per_page = _positive_int(request.query.get("per_page"), 30)
    per_page = min(per_page, 100)
    page = _positive_int(request.query.get("page"), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    links: list[str] = []

    def link(number: int, rel: str) -> str:
        query = dict(request.query)
        query.update(page=str(number), per_page=str(per_page))
        url = request.url.with_query(None)
        return f'<{url}?{urlencode(query)}>; rel="{rel}"'

    if page > 1:
        links.extend((link(min(page - 1, last), "prev"), link(1, "first")))
    if page < last:
        links[:0] = [link(page + 1, "next"), link(last, "last")]
    return chunk, ({"Link": ", ".join(links)} if links else {})


def _positive_int(raw: str | None, default: int) -> int:
    # GitHub quietly falls back to the default for nonsense paging values.
    if raw is None or not raw.isdigit() or int(raw) < 1:
        return default
    return int(raw)
