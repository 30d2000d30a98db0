"""Control routes under /_standin/ that tests and demos use to steer the stand-in."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from standins.github.keys import HTTP_KEY, RENDERER_KEY, STATE_KEY
from standins.github.render import JSON
from standins.github.responses import ApiError, json_body, not_found, read_json_object
from standins.github.store import LOGIN_PATTERN, Delivery, Unprocessable
from standins.github.webhooks import deliver

_SEGMENT = re.compile(r"^[^\x00-\x1f\\]+$")


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "Unprocessable Entity", errors=[message])


async def health(request: web.Request) -> web.Response:
    return json_body({"status": "ok"})


async def reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return json_body({"status": "reset"})


async def get_faults(request: web.Request) -> web.Response:
    return json_body(request.app[STATE_KEY].faults.as_json())


async def set_faults(request: web.Request) -> web.Response:
    """Merge the given faults into the current ones; absent fields keep their values."""
    state = request.app[STATE_KEY]
    payload = await read_json_object(request)
    faults = state.faults
    latency = payload.get("latency_ms", faults.latency_ms)
    status = payload.get("status", faults.status)
    remaining = payload.get("rate_limit_remaining", faults.rate_limit_remaining)
    forbidden = payload.get("forbidden_repos", sorted(faults.forbidden_repos))
    if not _is_int(latency) or not 0 <= latency <= 60_000:
        raise _unprocessable("latency_ms must be an integer from 0 to 60000")
    if status is not None and (not _is_int(status) or not 400 <= status <= 599):
        raise _unprocessable("status must be null or an integer from 400 to 599")
    if remaining is not None and (not _is_int(remaining) or remaining < 0):
        raise _unprocessable("rate_limit_remaining must be null or a non-negative integer")
    if not isinstance(forbidden, list) or not all(
        isinstance(name, str) and name.count("/") == 1 for name in forbidden
    ):
        raise _unprocessable('forbidden_repos must be a list of "owner/name" strings')
    faults.latency_ms = latency
    faults.status = status
    if "rate_limit_remaining" in payload:
        faults.rate_limit_remaining = remaining
        state.set_all_remaining(remaining)
    faults.forbidden_repos = {name.lower() for name in forbidden}
    return json_body(faults.as_json())


async def clear_faults(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    had_rate_fault = state.faults.rate_limit_remaining is not None
    state.faults.latency_ms = 0
    state.faults.status = None
    state.faults.rate_limit_remaining = None
    state.faults.forbidden_repos = set()
    if had_rate_fault:
        state.set_all_remaining(None)
    return json_body(state.faults.as_json())


async def mint_token(request: web.Request) -> web.Response:
    """POST /_standin/tokens {"login", "scopes"?}: a token without the browser flow."""
    state = request.app[STATE_KEY]
    payload = await read_json_object(request)
    login = payload.get("login")
    if not isinstance(login, str) or not LOGIN_PATTERN.match(login):
        raise _unprocessable("login must be a valid GitHub login")
    scopes = payload.get("scopes", ["read:user", "user:email", "repo"])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise _unprocessable("scopes must be a list of strings")
    token = state.mint_token(login, scopes)
    account = state.sign_in(login)
    return json_body(
        {
            "access_token": token.value,
            "token_type": "bearer",
            "scope": ",".join(scopes),
            "user": request.app[RENDERER_KEY].simple_user(account),
        },
        status=201,
    )


async def advance_clock(request: web.Request) -> web.Response:
    """POST /_standin/clock {"advance": seconds}: expire codes and rate windows at once."""
    state = request.app[STATE_KEY]
    payload = await read_json_object(request)
    advance = payload.get("advance")
    if not isinstance(advance, int | float) or isinstance(advance, bool) or advance < 0:
        raise _unprocessable("advance must be a non-negative number of seconds")
    state.clock_offset += float(advance)
    return json_body({"now": int(state.now()), "offset": state.clock_offset})


async def list_deliveries(request: web.Request) -> web.Response:
    return json_body([_delivery_json(d) for d in request.app[STATE_KEY].deliveries])


async def list_reviews(request: web.Request) -> web.Response:
    """Every review of a pull request with its comments, pending ones included."""
    state = request.app[STATE_KEY]
    renderer = request.app[RENDERER_KEY]
    repo = state.find_repo(request.match_info["owner"], request.match_info["repo"])
    pull = repo.pulls.get(int(request.match_info["number"])) if repo else None
    if repo is None or pull is None:
        raise not_found()
    body = [
        renderer.review(repo, review)
        | {"comments": [renderer.review_comment(repo, pull, c) for c in review.comments]}
        for review in state.pull_reviews(repo, pull.number)
    ]
    return json_body(body)


async def push(request: web.Request) -> web.Response:
    """Commit files onto a pull request's head and send the `synchronize` webhook."""
    state = request.app[STATE_KEY]
    renderer = request.app[RENDERER_KEY]
    repo = state.find_repo(request.match_info["owner"], request.match_info["repo"])
    pull = repo.pulls.get(int(request.match_info["number"])) if repo else None
    if repo is None or pull is None:
        raise not_found()
    payload = await read_json_object(request)
    files = _files(payload.get("files"))
    message = payload.get("message", "Update from the stand-in")
    if not isinstance(message, str) or not message.strip():
        raise _unprocessable("message must be a non-empty string")
    sender_login = payload.get("sender", pull.author)
    if not isinstance(sender_login, str) or not LOGIN_PATTERN.match(sender_login):
        raise _unprocessable("sender must be a valid GitHub login")
    sender = state.sign_in(sender_login)

    try:
        before, after = state.push(repo, pull, files, message, sender.login)
    except Unprocessable as exc:
        raise ApiError(422, exc.message, errors=exc.errors) from None
    event: JSON = {
        "action": "synchronize",
        "number": pull.number,
        "before": before,
        "after": after,
        "pull_request": renderer.pull(repo, pull, None),
        "repository": renderer.repo(repo, None),
        "sender": renderer.simple_user(sender),
    }
    owner = state.account(repo.owner)
    if owner is not None and owner.type == "Organization":
        event["organization"] = _organization(renderer.simple_user(owner))
    delivery: Delivery = await deliver(
        request.app[HTTP_KEY],
        state.config,
        event="pull_request",
        payload=event,
        repository_id=repo.id,
        now=state.now(),
    )
    state.deliveries.append(delivery)
    return json_body(
        {
            "head_sha": after,
            "before": before,
            "delivery_id": delivery.id,
            "webhook_status": delivery.status,
        }
    )


def _files(raw: Any) -> dict[str, str | None]:
    if not isinstance(raw, dict) or not raw:
        raise _unprocessable('files must be a non-empty object of "path": content-or-null')
    files: dict[str, str | None] = {}
    for path, content in raw.items():
        segments = path.split("/")
        if not all(s and s not in (".", "..") and _SEGMENT.match(s) for s in segments):
            raise _unprocessable(f"invalid path {path!r}")
        if content is not None and not isinstance(content, str):
            raise _unprocessable(f"content of {path!r} must be a string or null")
        files[path] = content
    return files


def _organization(user: JSON) -> JSON:
    keys = ("login", "id", "node_id", "url", "repos_url", "events_url", "avatar_url")
    return {key: user[key] for key in keys} | {"description": None}


def _delivery_json(delivery: Delivery) -> JSON:
    return {
        "id": delivery.id,
        "event": delivery.event,
        "action": delivery.action,
        "url": delivery.url,
        "status": delivery.status,
        "error": delivery.error,
        "delivered_at": delivery.delivered_at,
    }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
