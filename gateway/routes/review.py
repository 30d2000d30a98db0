"""Review routes: pull requests imported into a session, line threads, verdicts, publishing,
and the GitHub webhook."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field
from tandem.review.v1 import review_pb2

from gateway import keys
from gateway.errors import ApiError
from gateway.http import Schema, json_response, parse_json, path_uuid, query_int
from gateway.openapi import Operation, RouteTable
from gateway.schemas import UserOut
from services.common import reviewjson
from services.common.reviewjson import SIDES, VERDICTS

# Calls that may wait on GitHub (import, file contents, publish, webhooks) get
# a longer deadline than the default: the review service bounds its GitHub
# retries by whatever deadline it is given and answers 503 when it runs out.
GITHUB_BOUND_TIMEOUT = 30.0
_MAX_PATH = 4096


# --- request bodies ------------------------------------------------------------


class ReviewIn(Schema):
    repo: str = Field(min_length=3, max_length=140,
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$",
                      description='GitHub repository, "owner/name"')
    pull_number: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                    description="Pull request to import (or give ref)")
    ref: str | None = Field(default=None, min_length=1, max_length=255,
                            description="Branch, tag or commit SHA to import (or give pull_number)")


class ThreadIn(Schema):
    path: str = Field(min_length=1, max_length=_MAX_PATH, description="A file of the review")
    line: int = Field(ge=1, le=2**31 - 1, description="Last line the thread covers")
    side: Literal["RIGHT", "LEFT"] = Field(
        default="RIGHT", description="RIGHT: the head version's lines; LEFT: the base version's")
    start_line: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                   description="First line of a multi-line thread")
    body: str = Field(min_length=1, max_length=10_000)


class CommentIn(Schema):
    body: str = Field(min_length=1, max_length=10_000)


class VerdictIn(Schema):
    state: Literal["approve", "request_changes", "comment"]
    body: str = Field(default="", max_length=10_000)


# --- response bodies (documentation of services.common.reviewjson's output) -----


class ReviewFileOut(Schema):
    path: str
    status: str = Field(description="added, modified, removed, renamed, ...")
    additions: int
    deletions: int
    previous_path: str | None = Field(description="The old path of a renamed file")


class VerdictOut(Schema):
    id: str
    review_id: str
    author_id: str
    state: Literal["approve", "request_changes", "comment"]
    body: str
    created_at: str


class CurrentVerdictOut(Schema):
    user: UserOut = Field(description="Who gave it (the user object of GET .../members)")
    state: Literal["approve", "request_changes", "comment"]
    body: str
    at: str = Field(description="When they gave it (RFC 3339 UTC)")


class ReviewOut(Schema):
    id: str
    session_id: str
    repo: str
    pull_number: int | None
    ref: str | None
    head_sha: str
    base_sha: str
    title: str
    state: Literal["open", "published"]
    files: list[ReviewFileOut]
    verdict: VerdictOut | None = Field(description="The latest verdict, what publishing posts")
    verdicts: list[CurrentVerdictOut] = Field(
        description="Each reviewer's current verdict (a newer one from the same person "
                    "replaces theirs), oldest first")
    decision: Literal["changes_requested", "approved"] | None = Field(
        description='"changes_requested" if any current verdict requests changes, else '
                    '"approved" if any approves, else null')
    github_review_id: int | None
    published_at: str | None
    created_by: str
    created_at: str
    updated_at: str


class ReviewList(Schema):
    items: list[ReviewOut]
    next_cursor: str | None


class CommentOut(Schema):
    id: str
    thread_id: str
    author_id: str
    body: str
    created_at: str


class ThreadOut(Schema):
    id: str
    review_id: str
    path: str
    line: int
    start_line: int | None
    side: Literal["RIGHT", "LEFT"]
    commit_sha: str = Field(description="The review's head SHA when the thread was opened")
    resolved: bool
    outdated: bool = Field(description="A later push changed or removed the thread's lines")
    comments: list[CommentOut]
    created_by: str
    created_at: str
    updated_at: str


class ThreadList(Schema):
    items: list[ThreadOut]
    next_cursor: str | None


class HunkLineOut(Schema):
    kind: Literal["+", "-", " "]
    source_line: int | None
    target_line: int | None
    value: str


class HunkOut(Schema):
    source_start: int
    source_length: int
    target_start: int
    target_length: int
    section_header: str
    lines: list[HunkLineOut]


class FileOut(Schema):
    path: str
    status: str
    previous_path: str | None
    sha: str = Field(description="The head SHA the content is read at")
    content: str | None = Field(description="The file at the head SHA; null when removed there")
    patch: str
    hunks: list[HunkOut]


class PublishOut(Schema):
    github_review_id: int
    published_at: str
    html_url: str | None


class WebhookOut(Schema):
    outcome: Literal["processed", "duplicate", "ignored"]


# --- handlers --------------------------------------------------------------------


async def create_review(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    session_id = path_uuid(request, "id", "session")
    body = await parse_json(request, ReviewIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "CreateReview", backends.review.CreateReview,
        review_pb2.CreateReviewRequest(session_id=session_id, repo=body.repo,
                                       pull_number=body.pull_number or 0, ref=body.ref or ""),
        token=auth.token, timeout=GITHUB_BOUND_TIMEOUT)
    return json_response(reviewjson.review_json(reply.review), status=201)


async def list_reviews(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    session_id = path_uuid(request, "id", "session")
    limit = query_int(request, "limit", 50, 1, 100)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "ListReviews", backends.review.ListReviews,
        review_pb2.ListReviewsRequest(session_id=session_id, limit=limit,
                                      cursor=request.query.get("cursor", "")),
        token=auth.token)
    return json_response({"items": [reviewjson.review_json(r) for r in reply.reviews],
                          "next_cursor": reply.next_cursor or None})


async def get_review(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("review", "GetReview", backends.review.GetReview,
                                review_pb2.GetReviewRequest(review_id=review_id), token=auth.token)
    return json_response(reviewjson.review_json(reply.review))


async def get_file(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    path = request.match_info["path"]
    if len(path) > _MAX_PATH or "\x00" in path:
        raise ApiError(404, "not_found", "file not found in this review")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("review", "GetFile", backends.review.GetFile,
                                review_pb2.GetFileRequest(review_id=review_id, path=path),
                                token=auth.token, timeout=GITHUB_BOUND_TIMEOUT)
    return json_response(reviewjson.file_json(reply))


async def create_thread(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    body = await parse_json(request, ThreadIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "CreateThread", backends.review.CreateThread,
        review_pb2.CreateThreadRequest(review_id=review_id, path=body.path, line=body.line,
                                       start_line=body.start_line or 0, side=SIDES[body.side],
                                       body=body.body),
        token=auth.token, timeout=GITHUB_BOUND_TIMEOUT)
    return json_response(reviewjson.thread_json(reply.thread), status=201)


async def list_threads(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    limit = query_int(request, "limit", 100, 1, 500)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "ListThreads", backends.review.ListThreads,
        review_pb2.ListThreadsRequest(review_id=review_id, limit=limit,
                                      cursor=request.query.get("cursor", "")),
        token=auth.token)
    return json_response({"items": [reviewjson.thread_json(t) for t in reply.threads],
                          "next_cursor": reply.next_cursor or None})


async def add_comment(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    thread_id = path_uuid(request, "thread_id", "thread")
    body = await parse_json(request, CommentIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "AddComment", backends.review.AddComment,
        review_pb2.AddCommentRequest(review_id=review_id, thread_id=thread_id, body=body.body),
        token=auth.token)
    return json_response(reviewjson.comment_json(reply.comment), status=201)


async def resolve_thread(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    thread_id = path_uuid(request, "thread_id", "thread")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "ResolveThread", backends.review.ResolveThread,
        review_pb2.ResolveThreadRequest(review_id=review_id, thread_id=thread_id),
        token=auth.token)
    return json_response(reviewjson.thread_json(reply.thread))


async def unresolve_thread(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    thread_id = path_uuid(request, "thread_id", "thread")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "UnresolveThread", backends.review.UnresolveThread,
        review_pb2.UnresolveThreadRequest(review_id=review_id, thread_id=thread_id),
        token=auth.token)
    return json_response(reviewjson.thread_json(reply.thread))


async def create_verdict(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    body = await parse_json(request, VerdictIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "CreateVerdict", backends.review.CreateVerdict,
        review_pb2.CreateVerdictRequest(review_id=review_id, state=VERDICTS[body.state],
                                        body=body.body),
        token=auth.token)
    return json_response(reviewjson.verdict_json(reply.verdict), status=201)


async def publish(request: web.Request) -> web.Response:
    auth = request[keys.AUTH]
    review_id = path_uuid(request, "id", "review")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("review", "PublishReview", backends.review.PublishReview,
                                review_pb2.PublishReviewRequest(review_id=review_id),
                                token=auth.token, timeout=GITHUB_BOUND_TIMEOUT)
    return json_response(reviewjson.published_json(reply))


async def github_webhook(request: web.Request) -> web.Response:
    # No JWT: the review service checks the HMAC over these exact bytes.
    body = await request.read()
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "review", "HandleWebhook", backends.review.HandleWebhook,
        review_pb2.HandleWebhookRequest(
            event=request.headers.get("X-GitHub-Event", ""),
            delivery_id=request.headers.get("X-GitHub-Delivery", ""),
            signature_256=request.headers.get("X-Hub-Signature-256", ""), body=body),
        timeout=GITHUB_BOUND_TIMEOUT)
    status = 202 if reply.outcome == "ignored" else 200
    return json_response({"outcome": reply.outcome}, status=status)


def add_routes(table: RouteTable) -> None:
    sessions = "/api/v1/sessions/{id}/reviews"
    review = "/api/v1/reviews/{id}"
    thread = review + "/threads/{thread_id}"
    cursor = ("cursor", {"type": "string"}, "next_cursor of the previous page")
    # The bounds list_reviews and list_threads enforce (query_int answers 400 outside them).
    reviews_page = (("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                     "Page size"), cursor)
    threads_page = (("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                     "Page size"), cursor)
    table.add(Operation("POST", sessions, create_review,
                        "Import a pull request (or a ref) from GitHub into the session", "review",
                        status=201, request=ReviewIn, response=ReviewOut,
                        errors=(403, 404, 409, 422, 429)))
    table.add(Operation("GET", sessions, list_reviews, "The session's reviews, newest first",
                        "review", response=ReviewList, errors=(400, 404, 429), query=reviews_page))
    table.add(Operation("GET", review, get_review, "One review", "review", response=ReviewOut,
                        errors=(404, 429)))
    table.add(Operation("GET", review + "/files/{path:.+}", get_file,
                        "A file of the review at its head SHA, with its patch and hunks",
                        "review", response=FileOut, errors=(404, 409, 422, 429)))
    table.add(Operation("POST", review + "/threads", create_thread,
                        "Open a thread on lines of a file (a line outside the file is 422)",
                        "review", status=201, request=ThreadIn, response=ThreadOut,
                        errors=(403, 404, 409, 422, 429)))
    table.add(Operation("GET", review + "/threads", list_threads,
                        "The review's threads with their comments, oldest first", "review",
                        response=ThreadList, errors=(400, 404, 429), query=threads_page))
    table.add(Operation("POST", thread + "/comments", add_comment, "Reply in a thread", "review",
                        status=201, request=CommentIn, response=CommentOut,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("POST", thread + "/resolve", resolve_thread,
                        "Resolve a thread (idempotent)", "review", response=ThreadOut,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("POST", thread + "/unresolve", unresolve_thread,
                        "Reopen a resolved thread (idempotent)", "review", response=ThreadOut,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("POST", review + "/verdicts", create_verdict,
                        "Record a verdict; the latest one is what publishing posts", "review",
                        status=201, request=VerdictIn, response=VerdictOut,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("POST", review + "/publish", publish,
                        "Post the review and its open threads to the pull request, once (owner)",
                        "review", response=PublishOut, errors=(403, 404, 409, 422, 429)))
    table.add(Operation("POST", "/api/v1/webhooks/github", github_webhook,
                        "GitHub webhook receiver (X-Hub-Signature-256 HMAC required)", "review",
                        auth=False, response=WebhookOut, errors=(400, 401, 413),
                        headers=(("X-Hub-Signature-256", "sha256= HMAC of the body"),
                                 ("X-GitHub-Event", "The event name, e.g. pull_request"),
                                 ("X-GitHub-Delivery", "Unique delivery id (deduplicated)")),
                        extra={"responses": {
                            "200": {"description": "Processed, or a duplicate delivery",
                                    "content": {"application/json": {"schema": {
                                        "$ref": "#/components/schemas/WebhookOut"}}}},
                            "202": {"description": "Accepted and ignored (another event)",
                                    "content": {"application/json": {"schema": {
                                        "$ref": "#/components/schemas/WebhookOut"}}}},
                            **{str(code): {"description": text, "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Error"}}}}
                               for code, text in ((400, "Malformed delivery"),
                                                  (401, "Missing or wrong signature"),
                                                  (413, "Body too large"),
                                                  (503, "A review could not be refreshed; "
                                                        "redeliver later"))}}}))
