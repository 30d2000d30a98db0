"""GitHub REST client of the review service: pulls, files, contents, reviews, over httpx.

Every call has a timeout and respects the RPC's own deadline (`deadline_var`);
GETs are retried a bounded number of times with backoff and jitter on 5xx and
timeouts, POSTs never (a retried POST could post twice). Pull request metadata
and file lists are read with conditional requests: the ETag and body are kept
in Redis, and GitHub's `304 Not Modified` costs no rate limit. GitHub's
answers map to domain errors through one function, `_refusal`.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from services.common import metrics
from services.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.review.domain import (
    GITHUB_UNAVAILABLE,
    CachedAnswer,
    ChangedFile,
    CommitInfo,
    GitHubUser,
    ListedReview,
    OutcomeUnknown,
    PostedReview,
    PullInfo,
)
from services.review.ports import EtagStore

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Absolute time.monotonic() by which the current RPC must have its answer; the
# servicer sets it from the gRPC deadline so no GitHub retry outlives the caller.
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "github_deadline", default=None)

API_VERSION = "2022-11-28"
JSON_MEDIA = "application/vnd.github+json"
RAW_MEDIA = "application/vnd.github.raw"
_PER_PAGE = 100
_MAX_PAGES = 30
# Leave this much of the RPC's deadline for writing the result and answering.
_DEADLINE_MARGIN = 0.25
_BACKOFF_BASE = 0.2
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHub:
    """The GitHub REST calls Tandem's review makes, as one user (their token per call)."""

    def __init__(self, http: Callable[[], httpx.AsyncClient], api_url: str, etags: EtagStore, *,
                 timeout: float, retries: int) -> None:
        # `http()` gives the client: the service makes it (and imports httpx) on the first call.
        self._http = http
        self._api = api_url.rstrip("/")
        self._etags = etags
        self._timeout = timeout
        self._retries = retries

    # --- reads ---------------------------------------------------------------

    async def pull(self, token: str, scope: str, repo: str, number: int) -> PullInfo:
        body = await self._get_json(token, f"/repos/{_repo_path(repo)}/pulls/{number}",
                                    what="repository or pull request", cache_scope=scope)
        if not isinstance(body, dict):
            raise Unavailable("GitHub answered the pull request with an unexpected shape",
                              reason=GITHUB_UNAVAILABLE)
        try:
            return PullInfo(int(body["number"]), str(body.get("title") or ""),
                            str(body["head"]["sha"]), str(body["base"]["sha"]),
                            str(body.get("state") or "open"),
                            str((body.get("user") or {}).get("login") or ""))
        except (KeyError, TypeError, ValueError):
            raise Unavailable("GitHub answered the pull request with an unexpected shape",
                              reason=GITHUB_UNAVAILABLE) from None

    async def pull_files(self, token: str, scope: str, repo: str, number: int,
                         max_files: int) -> list[ChangedFile]:
        url: str | None = (f"{self._api}/repos/{_repo_path(repo)}/pulls/{number}/files"
                           f"?per_page={_PER_PAGE}")
        files: list[ChangedFile] = []
        for _ in range(_MAX_PAGES):
            if url is None or len(files) >= max_files:
                break
            body, link = await self._get_page(token, url, scope)
            if not isinstance(body, list):
                raise Unavailable("GitHub answered the file list with an unexpected shape",
                                  reason=GITHUB_UNAVAILABLE)
            files.extend(_changed_file(item) for item in body)
            url = self._next_url(link)
        return files[:max_files]

    async def commit(self, token: str, repo: str, ref: str) -> CommitInfo:
        body = await self._get_json(token, f"/repos/{_repo_path(repo)}/commits/{quote(ref, safe='')}",
                                    what="repository or ref",
                                    # GitHub answers an unknown ref with 422.
                                    not_found_statuses=(404, 422))
        if not isinstance(body, dict):
            raise Unavailable("GitHub answered the commit with an unexpected shape",
                              reason=GITHUB_UNAVAILABLE)
        try:
            parents = body.get("parents") or []
            message = str((body.get("commit") or {}).get("message") or "")
            return CommitInfo(str(body["sha"]), str(parents[0]["sha"]) if parents else "",
                              message.split("\n", 1)[0],
                              [_changed_file(item) for item in body.get("files") or []])
        except (KeyError, TypeError, ValueError, IndexError):
            raise Unavailable("GitHub answered the commit with an unexpected shape",
                              reason=GITHUB_UNAVAILABLE) from None

    async def contents(self, token: str, repo: str, path: str, ref: str,
                       max_bytes: int) -> bytes:
        """A file's bytes at a commit (raw media type: no base64, no JSON)."""
        response = await self._send(
            "GET", f"{self._api}/repos/{_repo_path(repo)}/contents/{quote(path, safe='/')}",
            token, params={"ref": ref}, accept=RAW_MEDIA)
        if response.status_code != 200:
            raise _refusal(response, "file at the review's head commit")
        if len(response.content) > max_bytes:
            raise InvalidArgument(f"{path} is larger than {max_bytes} bytes and is not shown",
                                  reason="unprocessable")
        return response.content

    async def viewer(self, token: str) -> GitHubUser:
        """The account the token belongs to (GET /user): whatever it posts is by this user."""
        body = await self._get_json(token, "/user", what="authenticated user")
        try:
            return GitHubUser(int(body["id"]), str(body["login"]))
        except (KeyError, TypeError, ValueError):
            raise Unavailable("GitHub answered the authenticated user with an unexpected shape",
                              reason=GITHUB_UNAVAILABLE) from None

    async def reviews(self, token: str, repo: str, number: int) -> list[ListedReview]:
        """Every submitted review of a pull request (bounded pages)."""
        url: str | None = (f"{self._api}/repos/{_repo_path(repo)}/pulls/{number}/reviews"
                           f"?per_page={_PER_PAGE}")
        found: list[ListedReview] = []
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            response = await self._send("GET", url, token)
            if response.status_code != 200:
                raise _refusal(response, "repository or pull request")
            body = _json(response.content)
            if isinstance(body, list):
                found.extend(listed for listed in map(_listed_review, body) if listed)
            url = self._next_url(response.headers.get("Link", ""))
        return found

    # --- writes --------------------------------------------------------------

    async def create_review(self, token: str, repo: str, number: int,
                            payload: Mapping[str, Any]) -> PostedReview:
        response = await self._send(
            "POST", f"{self._api}/repos/{_repo_path(repo)}/pulls/{number}/reviews", token,
            json=payload)
        if response.status_code >= 500:
            # GitHub sometimes applies a write and still answers 5xx.
            raise OutcomeUnknown(f"GitHub answered {response.status_code} to the new review")
        if response.status_code not in (200, 201):
            raise _refusal(response, "repository or pull request")
        body = _json(response.content)
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise Unavailable("GitHub answered the new review with an unexpected shape",
                              reason=GITHUB_UNAVAILABLE)
        return PostedReview(int(body["id"]), str(body.get("html_url") or ""))

    # --- plumbing ------------------------------------------------------------

    async def _get_json(self, token: str, path: str, *, what: str, cache_scope: str | None = None,
                        not_found_statuses: Sequence[int] = (404,)) -> Any:
        url = self._api + path
        if cache_scope is not None:
            body, _ = await self._get_page(token, url, cache_scope)
            return body
        response = await self._send("GET", url, token)
        if response.status_code in not_found_statuses:
            raise NotFound(f"{what} not found")
        if response.status_code != 200:
            raise _refusal(response, what)
        return _json(response.content)

    async def _get_page(self, token: str, url: str, scope: str) -> tuple[Any, str]:
        """A conditional GET: a 304 answer reuses the stored body and costs no rate limit."""
        key = _etag_key(scope, url)
        cached = await self._etags.get(key)
        response = await self._send("GET", url, token, etag=cached.etag if cached else None)
        if response.status_code == 304 and cached is not None:
            metrics.CACHE_REQUESTS.labels("github_etag", "hit").inc()
            return _json(cached.body), cached.link
        metrics.CACHE_REQUESTS.labels("github_etag", "miss").inc()
        if response.status_code != 200:
            raise _refusal(response, "repository or pull request")
        link = response.headers.get("Link", "")
        etag = response.headers.get("ETag")
        if etag:
            await self._etags.put(key, CachedAnswer(etag, response.content, link))
        return _json(response.content), link

    def _next_url(self, link: str) -> str | None:
        match = _LINK_NEXT.search(link or "")
        if match is None:
            return None
        url = match.group(1)
        # Never follow a link off the API host: the request carries the user's token.
        return url if url.startswith(self._api + "/") else None

    async def _send(self, method: str, url: str, token: str, *,
                    params: Mapping[str, str] | None = None, json: Any = None,
                    accept: str = JSON_MEDIA, etag: str | None = None) -> httpx.Response:
        """One request with timeouts; GETs retried on 5xx and timeouts, within the deadline."""
        import httpx  # noqa: PLC0415 - loaded with the first request (services/common/lazyhttp.py)

        headers = {"Authorization": f"Bearer {token}", "Accept": accept,
                   "X-GitHub-Api-Version": API_VERSION}
        if etag:
            headers["If-None-Match"] = etag
        idempotent = method == "GET"
        attempts = 1 + (self._retries if idempotent else 0)
        problem = "no answer"
        for attempt in range(attempts):
            budget = self._budget()
            try:
                async with asyncio.timeout(budget):
                    response = await self._http().request(method, url, headers=headers,
                                                        params=params, json=json)
            except (TimeoutError, httpx.TimeoutException):
                metrics.GITHUB_REQUESTS.labels("timeout").inc()
                problem = f"no answer within {budget:.1f}s"
            except httpx.TransportError as exc:
                metrics.GITHUB_REQUESTS.labels("error").inc()
                problem = f"unreachable ({type(exc).__name__})"
            else:
                metrics.GITHUB_REQUESTS.labels(str(response.status_code)).inc()
                _track_rate_limit(response)
                if response.status_code < 500 or not idempotent:
                    return response
                problem = f"answered {response.status_code}"
            if attempt + 1 < attempts and not await self._backoff(attempt):
                break
        log.warning("github request failed", extra={"method": method, "problem": problem,
                                                    "attempts": attempts})
        if not idempotent:
            # The POST may have been applied; the caller treats the outcome as unknown.
            raise OutcomeUnknown(f"GitHub did not confirm the request: {problem}")
        raise Unavailable(f"GitHub is unavailable: {problem}; try again shortly",
                          retry_after=5, reason=GITHUB_UNAVAILABLE)

    def _budget(self) -> float:
        deadline = deadline_var.get()
        if deadline is None:
            return self._timeout
        remaining = deadline - time.monotonic() - _DEADLINE_MARGIN
        if remaining <= 0:
            raise Unavailable("GitHub did not answer in time; try again shortly",
                              retry_after=5, reason=GITHUB_UNAVAILABLE)
        return min(self._timeout, remaining)

    async def _backoff(self, attempt: int) -> bool:
        """Sleep before the next attempt; False when the deadline leaves no room for one."""
        delay = random.uniform(0, _BACKOFF_BASE * 2**attempt) + _BACKOFF_BASE / 2  # noqa: S311 - jitter
        deadline = deadline_var.get()
        if deadline is not None and time.monotonic() + delay + _DEADLINE_MARGIN * 2 >= deadline:
            return False
        await asyncio.sleep(delay)
        return True


def _repo_path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _etag_key(scope: str, url: str) -> str:
    # Per user: answers can differ by who asks, and a 304 must only reuse what
    # that same user was shown.
    return hashlib.sha256(f"{scope}\0{url}".encode()).hexdigest()


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Unavailable("GitHub answered with something that is not JSON",
                          reason=GITHUB_UNAVAILABLE) from None


def _changed_file(item: Any) -> ChangedFile:
    if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
        raise Unavailable("GitHub answered a file entry with an unexpected shape",
                          reason=GITHUB_UNAVAILABLE)
    return ChangedFile(item["filename"], str(item.get("status") or "modified"),
                       int(item.get("additions") or 0), int(item.get("deletions") or 0),
                       str(item.get("patch") or ""), str(item.get("previous_filename") or ""))


def _listed_review(item: Any) -> ListedReview | None:
    """A review from GitHub's list, or None for an entry that is not one (no numeric id)."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        return None
    author = item.get("user")
    author_id = author.get("id") if isinstance(author, dict) else None
    return ListedReview(item["id"], str(item.get("body") or ""), str(item.get("html_url") or ""),
                        author_id if isinstance(author_id, int) else None)


def _track_rate_limit(response: httpx.Response) -> None:
    remaining = response.headers.get("X-RateLimit-Remaining")
    if remaining is not None and remaining.isdigit():
        metrics.GITHUB_RATELIMIT_REMAINING.set(int(remaining))


def _retry_after(response: httpx.Response) -> int:
    header = response.headers.get("Retry-After", "")
    if header.isdigit():
        return max(1, int(header))
    reset = response.headers.get("X-RateLimit-Reset", "")
    if reset.isdigit():
        return max(1, min(int(reset) - int(time.time()), 3600))
    return 60


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message") or "")]
    for error in body.get("errors") or []:
        if isinstance(error, str):
            parts.append(error)
        elif isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
    return "; ".join(p for p in parts if p)[:500]


def _refusal(response: httpx.Response, what: str) -> DomainError:
    """The one mapping from a GitHub error answer to the error Tandem's caller gets."""
    status = response.status_code
    if status == 401:
        # Tandem's own session is fine; the GitHub authorization behind it is not.
        return FailedPrecondition("GitHub no longer accepts your GitHub authorization; "
                                  "sign in again", reason="github_reauth")
    rate_limited = status == 429 or (status == 403 and (
        response.headers.get("X-RateLimit-Remaining") == "0" or "Retry-After" in response.headers))
    if rate_limited:
        retry_after = _retry_after(response)
        return Unavailable(f"GitHub's API rate limit is exhausted; try again in {retry_after}s",
                           retry_after=retry_after, reason=GITHUB_UNAVAILABLE)
    if status == 403:
        return PermissionDenied(f"GitHub refused access to the {what}")
    if status == 404:
        return NotFound(f"{what} not found")
    if status == 422:
        detail = _message(response) or "unprocessable request"
        return InvalidArgument(f"GitHub refused the request: {detail}", reason="unprocessable")
    if status >= 500:
        return Unavailable(f"GitHub is unavailable: answered {status}; try again shortly",
                           retry_after=5, reason=GITHUB_UNAVAILABLE)
    return FailedPrecondition(f"GitHub answered {status}: {_message(response) or 'refused'}")
