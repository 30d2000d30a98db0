"""OpenAI Chat Completions wire format: request validation, errors, completion and chunk bodies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FinishReason = Literal["stop", "length"]

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
# Returned by OpenAI in every completion; a constant keeps our output reproducible.
SYSTEM_FINGERPRINT = "fp_tandem_standin"
# Arbitrary fixed "created" for the model object (OpenAI reports when a model was published).
MODEL_CREATED = 1_700_000_000


class OpenAIError(Exception):
    """An error answered with OpenAI's body ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends with this status."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def estimate_tokens(chars: int) -> int:
    """Deterministic stand-in for a tokenizer: about four characters per token."""
    return math.ceil(chars / 4)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A request message reduced to what the stand-in needs."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated ``POST /v1/chat/completions`` body."""

    model: str
    messages: tuple[ChatMessage, ...]
    stream: bool
    include_usage: bool
    max_tokens: int | None

    @property
    def prompt(self) -> str:
        """The last user message: the one that carries the file blocks."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return ""

    @property
    def prompt_tokens(self) -> int:
        """Token estimate over the text of every message."""
        return estimate_tokens(sum(len(m.text) for m in self.messages))


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "an unsupported value")


def _invalid_type(param: str, expected: str, value: object) -> OpenAIError:
    return OpenAIError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> OpenAIError:
    return OpenAIError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _content_text(content: object, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise _invalid_type(param, "one of a string or array of objects", content)
    texts: list[str] = []
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise _invalid_type(f"{param}[{index}]", "an object", part)
        if part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid_type(f"{param}[{index}].text", "a string", text)
            texts.append(text)
    return "\n".join(texts)


def _parse_messages(value: object) -> tuple[ChatMessage, ...]:
    if value is None:
        raise _missing("messages")
    if not isinstance(value, list):
        raise _invalid_type("messages", "an array", value)
    if not value:
        raise OpenAIError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    messages: list[ChatMessage] = []
    for index, raw in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(raw, dict):
            raise _invalid_type(where, "an object", raw)
        role = raw.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES)
            raise OpenAIError(
                400,
                f"Invalid value: {role!r}. Supported values are: {supported}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        # Only an assistant turn (e.g. one with tool calls) may omit its content.
        if "content" not in raw and role != "assistant":
            raise _missing(f"{where}.content")
        messages.append(ChatMessage(role, _content_text(raw.get("content"), f"{where}.content")))
    return tuple(messages)


def _optional_int_min(body: Mapping[str, object], param: str, minimum: int) -> int | None:
    value = body.get(param)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(param, "an integer", value)
    if value < minimum:
        raise OpenAIError(
            400,
            f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            param=param,
            code="integer_below_min_value",
        )
    return value


def _check_temperature(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid_type("temperature", "a decimal", value)
    if not 0 <= value <= 2:
        raise OpenAIError(
            400,
            f"Invalid 'temperature': expected a value between 0 and 2, but got {value} instead.",
            param="temperature",
            code="invalid_value",
        )


def parse_chat_request(body: object) -> ChatRequest:
    """Validate a decoded JSON body the way OpenAI does; unknown fields are ignored."""
    if not isinstance(body, dict):
        raise _invalid_type("body", "an object", body)
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    messages = _parse_messages(body.get("messages"))

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            # OpenAI refuses this combination; mimicking it catches a client bug early.
            raise OpenAIError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        if not isinstance(options, dict):
            raise _invalid_type("stream_options", "an object", options)
        usage_flag = options.get("include_usage")
        if usage_flag is not None and not isinstance(usage_flag, bool):
            raise _invalid_type("stream_options.include_usage", "a boolean", usage_flag)
        include_usage = bool(usage_flag)

    _check_temperature(body.get("temperature"))
    max_tokens = _optional_int_min(body, "max_tokens", 1)
    # The newer name wins, as it does at OpenAI where max_tokens is deprecated.
    max_completion = _optional_int_min(body, "max_completion_tokens", 1)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(stream),
        include_usage=include_usage,
        max_tokens=max_completion if max_completion is not None else max_tokens,
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer for one request, after any max_tokens truncation."""

    id: str
    created: int
    model: str
    content: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int

    def usage(self) -> dict[str, int]:
        """OpenAI's usage object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def make_completion(*, id_: str, created: int, request: ChatRequest, content: str) -> Completion:
    """Apply max_tokens (cut at 4 characters per token) and count tokens."""
    finish: FinishReason = "stop"
    tokens = estimate_tokens(len(content))
    if request.max_tokens is not None and tokens > request.max_tokens:
        content = content[: request.max_tokens * 4]
        tokens = request.max_tokens
        finish = "length"
    return Completion(
        id=id_,
        created=created,
        model=request.model,
        content=content,
        finish_reason=finish,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=tokens,
    )


def completion_body(completion: Completion) -> dict[str, Any]:
    """Non-streaming ``chat.completion`` object."""
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.content, "refusal": None},
                "logprobs": None,
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": completion.usage(),
    }


def split_content(content: str, chunk_chars: int) -> list[str]:
    """Fixed-size pieces, so JSON lines straddle chunk boundaries."""
    return [content[i : i + chunk_chars] for i in range(0, len(content), chunk_chars)]


def stream_chunks(
    completion: Completion, *, chunk_chars: int, include_usage: bool
) -> list[dict[str, Any]]:
    """Every ``chat.completion.chunk`` of a stream, in order, without the ``[DONE]`` marker."""

    def chunk(delta: dict[str, str], finish: FinishReason | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        # OpenAI sends "usage": null on every chunk once usage was requested.
        if include_usage:
            body["usage"] = None
        return body

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    chunks += [
        chunk({"content": piece}, None) for piece in split_content(completion.content, chunk_chars)
    ]
    chunks.append(chunk({}, completion.finish_reason))
    if include_usage:
        chunks.append(
            {
                "id": completion.id,
                "object": "chat.completion.chunk",
                "created": completion.created,
                "model": completion.model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [],
                "usage": completion.usage(),
            }
        )
    return chunks


def model_object(model: str) -> dict[str, Any]:
    """An entry of ``GET /v1/models``."""
    return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": "tandem-standin"}
