"""What the gateway answers for each refusal of aiohttp's parser, with both of its parsers.

The C parser is what runs; the pure-Python one runs under AIOHTTP_NO_EXTENSIONS. They report
a too-long line differently, and the answer (414 for the URL, 431 for a header) must not
depend on which one refused it. The raw-socket tests in tests/security/test_parser_errors.py
check the whole answer through a real gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import http_parser
from aiohttp.base_protocol import BaseProtocol

from gateway.server import classify

PARSERS: dict[str, Any] = {"python": http_parser.HttpRequestParserPy}
try:
    from aiohttp._http_parser import HttpRequestParser as CParser
except ImportError:  # aiohttp built without its extensions
    pass
else:
    PARSERS["c"] = CParser

HEAD = b"GET /x HTTP/1.1\r\nHost: x\r\n"
REFUSALS = {
    "long url": (b"GET /x?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    "long header value": (HEAD + b"Authorization: Bearer " + b"b" * 9000 + b"\r\n\r\n", 431,
                          "headers_too_large"),
    "long value that looks like a path": (HEAD + b"X-Next: /" + b"b" * 9000 + b"\r\n\r\n", 431,
                                          "headers_too_large"),
    "long referer (a URL in a header)": (HEAD + b"Referer: http://e.example/" + b"b" * 9000 + b"\r\n\r\n",
                                         431, "headers_too_large"),
    "long header name": (HEAD + b"X" + b"b" * 9000 + b": 1\r\n\r\n", 431, "headers_too_large"),
    "too many headers": (HEAD + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n", 431,
                         "headers_too_large"),
    "malformed request line": (b"GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "bad_request"),
    "bad chunk size": (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
                       "bad_request"),
}


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_gets_its_status_and_code_whichever_parser_refused(
        loop: asyncio.AbstractEventLoop, parser: str, case: str) -> None:
    data, status, code = REFUSALS[case]
    request_parser = PARSERS[parser](BaseProtocol(loop), loop, 2**16,
                                     max_line_size=8190, max_field_size=8190)
    with pytest.raises(Exception) as refused:  # noqa: PT011 - whatever the parser raises is the input
        request_parser.feed_data(data)
    answer = classify(refused.value, 400)
    assert answer[:2] == (status, code), (type(refused.value), refused.value)
    # The message is fixed text: nothing of the request (here the letters a/b or "Bearer").
    assert "bbbb" not in answer[2]
    assert "aaaa" not in answer[2]
    assert "Bearer" not in answer[2]
