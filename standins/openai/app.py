"""aiohttp app of the OpenAI stand-in: the /v1 API, fault injection, /_standin control routes."""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
import uuid
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from standins.openai.config import OpenAIStandinConfig
from standins.openai.faults import (
    FAULT_HEADER,
    SLOW_MS_HEADER,
    AppliedFaults,
    Fault,
    FaultBoard,
    FaultSpecError,
    parse_fault_header,
    parse_fault_names,
    parse_slow_ms,
)
from standins.openai.reviewer import compose_answer
from standins.openai.state import STATE, RequestLog, RequestRecord, StandinState
from standins.openai.wire import (
    ChatRequest,
    Completion,
    OpenAIError,
    completion_body,
    make_completion,
    model_object,
    parse_chat_request,
    stream_chunks,
)

logger = logging.getLogger(__name__)

# How often a sleeping handler checks whether its client is still there; aiohttp does not
# cancel handlers on disconnect, and the request log should say so promptly.
_DISCONNECT_POLL_S = 0.05


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _error_response(error: OpenAIError) -> web.Response:
    return _json(error.body(), status=error.status, headers=error.headers)


def _redact(key: str) -> str:
    # OpenAI echoes a wrong key with its middle masked; never echo a whole key.
    return f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"


def _check_auth(request: web.Request, config: OpenAIStandinConfig) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise OpenAIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="invalid_api_key",
        )
    if not hmac.compare_digest(key.encode(), config.api_key.encode()):
        raise OpenAIError(
            401, f"Incorrect API key provided: {_redact(key)}.", code="invalid_api_key"
        )


def _model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


async def _read_json(request: web.Request) -> object:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise OpenAIError(413, "Request body too large.", code="request_too_large") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise OpenAIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
        ) from None


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _sleep_unless_gone(request: web.Request, seconds: float) -> bool:
    """Sleep; False as soon as the client has disconnected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if _client_gone(request):
            return False
        await asyncio.sleep(min(left, _DISCONNECT_POLL_S))
    return not _client_gone(request)


def _drop_connection(request: web.Request) -> None:
    # close() flushes what was already written and then closes; aiohttp's own attempt to
    # finish the response afterwards fails with ConnectionError, which it treats as a
    # client disconnect, so the client sees a body cut short and nothing is logged as a bug.
    if request.transport is not None:
        request.transport.close()


def _record_request(record: RequestRecord, chat: ChatRequest) -> None:
    record.model = chat.model
    record.stream = chat.stream
    record.message_count = len(chat.messages)
    record.message_chars = [len(m.text) for m in chat.messages]
    record.prompt_tokens = chat.prompt_tokens
    record.max_tokens = chat.max_tokens


def _applied_faults(request: web.Request, state: StandinState) -> AppliedFaults:
    try:
        header_faults = parse_fault_header(request.headers.get(FAULT_HEADER))
        header_slow = request.headers.get(SLOW_MS_HEADER)
        slow_override = parse_slow_ms(header_slow) if header_slow is not None else None
    except FaultSpecError as exc:
        raise OpenAIError(400, f"{FAULT_HEADER}/{SLOW_MS_HEADER}: {exc}") from None
    # Taken last, after every validation, so a rejected request does not use up `times`.
    board_faults, board_slow = state.board.take()
    slow_ms = next(
        (ms for ms in (slow_override, board_slow) if ms is not None), state.config.slow_ms
    )
    return AppliedFaults(header_faults | board_faults, slow_ms)


def _rate_limited(model: str) -> OpenAIError:
    return OpenAIError(
        429,
        f"Rate limit reached for {model} in organization org-standin on requests per min "
        "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.",
        type_="requests",
        code="rate_limit_exceeded",
        headers={
            "Retry-After": "1",
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
        },
    )


def _server_error() -> OpenAIError:
    return OpenAIError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type_="server_error",
    )


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    state = request.app[STATE]
    record = state.requests.start()
    try:
        return await _answer_chat(request, state, record)
    except OpenAIError as error:
        record.status, record.outcome, record.error_code = error.status, "rejected", error.code
        return _error_response(error)


async def _answer_chat(
    request: web.Request, state: StandinState, record: RequestRecord
) -> web.StreamResponse:
    config = state.config
    # OpenAI's order: authentication, then the body, then the model, then the context size.
    _check_auth(request, config)
    chat = parse_chat_request(await _read_json(request))
    _record_request(record, chat)
    if chat.model != config.model:
        raise _model_not_found(chat.model)
    if chat.prompt_tokens > config.context_limit_tokens:
        raise OpenAIError(
            400,
            f"This model's maximum context length is {config.context_limit_tokens} tokens. "
            f"However, your messages resulted in {chat.prompt_tokens} tokens. "
            "Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    faults = _applied_faults(request, state)
    record.faults = faults.names()

    if Fault.SLOW in faults and not await _sleep_unless_gone(request, faults.slow_ms / 1000):
        record.outcome = "client_disconnected"
        return web.Response(status=499)  # never reaches the client; satisfies aiohttp
    if Fault.RATE_LIMIT in faults:
        raise _rate_limited(chat.model)
    if Fault.SERVER_ERROR in faults:
        raise _server_error()

    content = compose_answer(
        chat.prompt,
        out_of_range=Fault.OUT_OF_RANGE in faults,
        malformed=Fault.MALFORMED in faults,
    )
    completion = make_completion(
        id_=f"chatcmpl-{uuid.uuid4().hex[:24]}",
        created=int(time.time()),
        request=chat,
        content=content,
    )
    record.finish_reason = completion.finish_reason
    if chat.stream:
        return await _stream(
            request, state, record, chat=chat, completion=completion, faults=faults
        )
    if Fault.DISCONNECT in faults:
        # A server that dies after reading the request: no status line at all.
        record.outcome = "dropped"
        _drop_connection(request)
        return web.Response(status=499)
    # Logged before sending, so a client that reads the log right after the answer sees it.
    record.status, record.outcome = 200, "completed"
    return _json(completion_body(completion))


async def _stream(
    request: web.Request,
    state: StandinState,
    record: RequestRecord,
    *,
    chat: ChatRequest,
    completion: Completion,
    faults: AppliedFaults,
) -> web.StreamResponse:
    chunks = stream_chunks(
        completion, chunk_chars=state.config.chunk_chars, include_usage=chat.include_usage
    )
    # disconnect: the role chunk and the first half (rounded up) of the content chunks are
    # sent, then the connection is cut, so the client holds a partial answer.
    content_chunks = math.ceil(len(completion.content) / state.config.chunk_chars)
    cut_at = 1 + (content_chunks + 1) // 2 if Fault.DISCONNECT in faults else None
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"},
    )
    record.status = 200
    try:
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if index == cut_at:
                record.outcome = "dropped"
                _drop_connection(request)
                return response
            between = index > 0 and Fault.SLOW in faults
            if between and not await _sleep_unless_gone(request, faults.slow_ms / 1000):
                record.outcome = "client_disconnected"
                return response
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            record.chunks_sent += 1
        record.outcome = "completed"
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionError:
        record.outcome = "client_disconnected"
    return response


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    config = request.app[STATE].config
    _check_auth(request, config)
    return _json({"object": "list", "data": [model_object(config.model)]})


async def get_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model}``."""
    config = request.app[STATE].config
    _check_auth(request, config)
    model = request.match_info["model"]
    if model != config.model:
        raise _model_not_found(model)
    return _json(model_object(model))


def _control_error(message: str) -> OpenAIError:
    return OpenAIError(400, message, code="invalid_control_request")


async def set_faults(request: web.Request) -> web.Response:
    """``POST /_standin/faults`` ``{"faults": [...], "times"?: N, "slow_ms"?: ms}``."""
    board = request.app[STATE].board
    body = await _read_json(request)
    if not isinstance(body, dict):
        raise _control_error("body must be a JSON object")
    names = body.get("faults")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _control_error("'faults' must be an array of fault names")
    times = body.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise _control_error("'times' must be a positive integer or null")
    try:
        faults = parse_fault_names(names)
        slow_ms = parse_slow_ms(body["slow_ms"]) if body.get("slow_ms") is not None else None
    except FaultSpecError as exc:
        raise _control_error(str(exc)) from None
    board.set(faults, times, slow_ms)
    return _json(board.describe())


async def get_faults(request: web.Request) -> web.Response:
    """``GET /_standin/faults``."""
    return _json(request.app[STATE].board.describe())


async def clear_faults(request: web.Request) -> web.Response:
    """``DELETE /_standin/faults``."""
    request.app[STATE].board.clear()
    return web.Response(status=204)


async def list_requests(request: web.Request) -> web.Response:
    """``GET /_standin/requests``: oldest first."""
    return _json({"items": request.app[STATE].requests.as_json()})


async def clear_requests(request: web.Request) -> web.Response:
    """``DELETE /_standin/requests``."""
    request.app[STATE].requests.clear()
    return web.Response(status=204)


async def health(request: web.Request) -> web.Response:
    """``GET /_standin/health``: liveness; the stand-in has no dependencies."""
    return _json({"status": "ok", "standin": "openai", "model": request.app[STATE].config.model})


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as OpenAI's JSON error body, including aiohttp's 404/405/413."""
    try:
        return await handler(request)
    except OpenAIError as error:
        return _error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"Invalid URL ({request.method} {request.path})" if exc.status in (404, 405) else exc.reason
        return _error_response(OpenAIError(exc.status, message))
    except Exception:
        # A bug in the stand-in; still answer in OpenAI's shape so clients parse it.
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(_server_error())


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # OpenAI tags every response; clients log it, so it should be there to log.
    response.headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex}")


def create_app(config: OpenAIStandinConfig) -> web.Application:
    """Build the stand-in app; all state lives on the app, so several can run side by side."""
    # Big enough that an over-long prompt is answered with context_length_exceeded (what
    # OpenAI says) rather than aiohttp's generic 413.
    client_max_size = max(8 * 1024 * 1024, config.context_limit_tokens * 4 * 4)
    app = web.Application(middlewares=[openai_errors], client_max_size=client_max_size)
    app[STATE] = StandinState(
        config=config, board=FaultBoard(), requests=RequestLog(config.request_log_size)
    )
    app.on_response_prepare.append(_add_request_id)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", get_model)
    app.router.add_post("/_standin/faults", set_faults)
    app.router.add_get("/_standin/faults", get_faults)
    app.router.add_delete("/_standin/faults", clear_faults)
    app.router.add_get("/_standin/requests", list_requests)
    app.router.add_delete("/_standin/requests", clear_requests)
    app.router.add_get("/_standin/health", health)
    return app
