"""The gateway's HTTP server: aiohttp's, but every answer it writes itself keeps the contract.

aiohttp answers a request its parser refuses (a 9 KB URL or header, a malformed request
line, bad chunked framing) from `RequestHandler.handle_error`, before any middleware or
`on_response_prepare` runs: `400 text/plain` with the parser's message, which quotes the
request's own bytes (an Authorization header among them), and it logs that message with a
traceback at ERROR. aiohttp has no hook for that answer (aio-libs/aiohttp#3287), so the
gateway runs its own `RequestHandler` subclass: the status that fits (414, 431, 400), the
standard error body, the security headers and a request id, nothing of the request echoed,
and one log line that names only the kind of refusal.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import traceback
from collections.abc import Mapping
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, HttpProcessingError, LineTooLong

from gateway.errors import HTTP_CODES, error_response
from services.common.context import new_request_id, request_id_var

log = logging.getLogger(__name__)

# aiohttp's parser limits (RequestHandler's defaults), named in the answers.
MAX_LINE_BYTES = 8190
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 128

# The C parser's callbacks that refuse a too-long request line (the URL) rather than a header.
_REQUEST_LINE_CALLBACKS = frozenset({"cb_on_url", "cb_on_status"})


def classify(exc: BaseException | None, status: int) -> tuple[int, str, str]:
    """(status, code word, message) for what aiohttp's protocol layer refused.

    Messages are fixed text: the parser's own messages quote the request's bytes.
    """
    if isinstance(exc, LineTooLong):
        if _refused_request_line(exc):
            return 414, "uri_too_long", f"request line too long (limit {MAX_LINE_BYTES} bytes)"
        return 431, "headers_too_large", f"request header too long (limit {MAX_FIELD_BYTES} bytes)"
    if isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received":
        return 431, "headers_too_large", f"too many request headers (limit {MAX_HEADERS})"
    if isinstance(exc, HttpProcessingError) or status == 400:
        return 400, "bad_request", "the request is not valid HTTP/1.1"
    if status == 504:
        return 504, "timeout", "the request took too long"
    return status, HTTP_CODES.get(status, "internal"), "internal error"


def _refused_request_line(exc: LineTooLong) -> bool:
    """Whether the line that was too long is the request line (so the URL), not a header.

    The C parser (what runs in practice) raises from a callback named for the part it was
    reading; the pure-Python parser (AIOHTTP_NO_EXTENSIONS) quotes the whole line, and only
    a request line starts with a method and a space (a header name cannot hold a space).
    """
    # Cython names its frames with the module ("aiohttp._http_parser.cb_on_url").
    frames = {frame.name.rpartition(".")[2] for frame in traceback.extract_tb(exc.__traceback__)}
    if frames & _REQUEST_LINE_CALLBACKS:
        return True
    if any(name.startswith("cb_on_header") for name in frames):
        return False
    line = exc.args[0] if exc.args else b""
    head = bytes(line[:32]) if isinstance(line, bytes | bytearray) else str(line)[:32].encode()
    method, space, _ = head.partition(b" ")
    return bool(space) and method.isalpha() and method.isupper()


class ContractRequestHandler(web_protocol.RequestHandler):
    """aiohttp's protocol, with its own answers in the gateway's terms."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            self._fail_body_cut_by_parse_error()

    def _fail_body_cut_by_parse_error(self) -> None:
        """A parse error inside a body that is already being read belongs to that request.

        aiohttp queues it as a next request and leaves the body waiting for bytes that never
        come, so the handler would hang until the client gives up. Instead the body fails
        (the handler's read raises RequestPayloadError, answered 400 by the middleware), the
        queued answer is dropped and the connection ends after that request.
        """
        message, _ = self._messages[-1]
        if not isinstance(message, web_protocol._ErrInfo):
            return
        bodies = [p for m, p in list(self._messages)[:-1] if not isinstance(m, web_protocol._ErrInfo)]
        if self._current_request is not None:
            bodies.insert(0, self._current_request.content)
        cut = [body for body in bodies if not body.is_eof()]
        if not cut:
            return  # the error is a request of its own, after complete ones
        self._messages.pop()
        for body in cut:
            body.set_exception(web.RequestPayloadError("malformed request body framing"))
        # Reading the rest of a body that has failed would only raise again.
        self._lingering_time = 0.0
        self.close()

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        rid = request_id_var.get() if status >= 500 else None
        rid = rid or new_request_id()
        request_id_var.set(rid)
        code_status, code, text = classify(exc, status)
        if code_status >= 500:
            # Our own fault, past the middleware (which answers every handler error itself).
            log.error("error handling request", exc_info=exc,
                      extra={"status": code_status, "remote": request.remote})
        elif self._request_count == 1 and isinstance(exc, BadHttpMethod):
            # TLS or other non-HTTP traffic on the port: the internet's background noise.
            log.debug("refused a request that is not HTTP", extra={"remote": request.remote})
        else:
            # The parser's message quotes the request (maybe a credential): only its kind.
            log.info("refused a request the parser could not read",
                     extra={"status": code_status, "code": code, "remote": request.remote,
                            "reason": type(exc).__name__ if exc is not None else None})
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response "
                                  "with the error message")
        manager = self._manager
        headers = manager.answer_headers if isinstance(manager, ContractServer) else {}
        answer = error_response(code_status, code, text, headers=dict(headers))
        answer.force_close()
        return answer


class ContractServer(web.Server):
    """aiohttp's low-level server making ContractRequestHandler protocols."""

    def __init__(self, *args: Any, answer_headers: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answer_headers = dict(answer_headers)

    def __call__(self) -> web_protocol.RequestHandler:
        return ContractRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """web.AppRunner serving through ContractServer."""

    def __init__(self, app: web.Application, *, answer_headers: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._answer_headers = answer_headers

    async def _make_server(self) -> web.Server:
        # The app's own start-up (on_startup, freezing) and its handler arguments, as aiohttp
        # makes them; only the protocol class differs.
        made = await super()._make_server()
        return ContractServer(made.request_handler, request_factory=made.request_factory,
                              handler_cancellation=made.handler_cancellation, loop=made._loop,
                              answer_headers=self._answer_headers, **made._kwargs)


async def serve(app: web.Application, *, host: str, port: int, shutdown_timeout: float,
                answer_headers: Mapping[str, str], **runner_kwargs: Any) -> None:
    """Serve `app` until SIGINT or SIGTERM, then shut down as web.run_app does."""
    runner = GatewayRunner(app, answer_headers=answer_headers, shutdown_timeout=shutdown_timeout,
                           **runner_kwargs)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        # Stops listening, closes idle connections, runs on_shutdown (realtime drain), waits
        # up to shutdown_timeout for requests in flight, then the app's cleanup_ctx.
        await runner.cleanup()
