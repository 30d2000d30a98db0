"""AI review routes: jobs on a review's changed files or the live document, read and cancelled."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from tandem.ai.v1 import ai_pb2

from gateway import keys
from gateway.auth import authenticate
from gateway.errors import ApiError
from gateway.http import Schema, json_response, parse_json, path_uuid, query_int
from gateway.openapi import Operation, RouteTable
from gateway.routes.sessions import query_cursor, session_path_id
from services.common.timeconv import rfc3339

# Creating a review job reads the review (which may wait on GitHub) first.
CREATE_TIMEOUT = 30.0
# Cancelling waits briefly for a running job to stop.
CANCEL_TIMEOUT = 10.0
_STATUS = {ai_pb2.JOB_STATUS_QUEUED: "queued", ai_pb2.JOB_STATUS_RUNNING: "running",
           ai_pb2.JOB_STATUS_DONE: "done", ai_pb2.JOB_STATUS_FAILED: "failed",
           ai_pb2.JOB_STATUS_CANCELLED: "cancelled"}
_SEVERITY = {ai_pb2.SEVERITY_INFO: "info", ai_pb2.SEVERITY_WARNING: "warning",
             ai_pb2.SEVERITY_ERROR: "error"}
_KIND = {ai_pb2.JOB_KIND_REVIEW: "review", ai_pb2.JOB_KIND_DOCUMENT: "document"}
_KIND_BY_NAME = {name: kind for kind, name in _KIND.items()}
Status = Literal["queued", "running", "done", "failed", "cancelled"]


class ReviewJobIn(Schema):
    paths: list[str] | None = Field(
        default=None, max_length=500,
        description="Changed files to review (default: every changed file that was not removed)")
    provider: str | None = Field(default=None, max_length=32,
                                 description='"builtin" or "openai" (default: the server\'s AI_PROVIDER)')


class DocumentJobIn(Schema):
    provider: str | None = Field(default=None, max_length=32,
                                 description='"builtin" or "openai" (default: the server\'s AI_PROVIDER)')


class JobAccepted(Schema):
    job_id: str
    status: Literal["queued"]


class FindingOut(Schema):
    path: str = Field(description='A file of the review, or "document.<ext>" for the live document')
    line: int = Field(description="First line (1-based, in the head version or the document)")
    end_line: int
    severity: Literal["info", "warning", "error"]
    category: str = Field(description="security, correctness, maintainability, style, ...")
    message: str
    suggestion: str | None = Field(default=None, description="Present when there is one")


class JobOut(Schema):
    job_id: str
    status: Status = Field(description='"cancelled" only after POST /api/v1/ai/jobs/{job_id}/cancel')
    provider: str
    model: str
    kind: Literal["review", "document"]
    session_id: str
    review_id: str | None
    paths: list[str] = Field(description="The files asked for (empty: all changed files)")
    findings: list[FindingOut] = Field(description="In the order they were streamed")
    summary: str
    error: str | None = Field(default=None, description="Why it failed (failed or cancelled jobs)")
    files_reviewed: int = Field(description="Files sent to the provider")
    files_reused: int = Field(description="Unchanged files whose cached results were reused")
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None


class JobList(Schema):
    items: list[JobOut] = Field(description="Newest first, each with its findings")
    next_cursor: str | None


def finding_json(finding: ai_pb2.Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"path": finding.path, "line": finding.line, "end_line": finding.end_line,
                           "severity": _SEVERITY.get(finding.severity, "info"),
                           "category": finding.category, "message": finding.message}
    if finding.HasField("suggestion") and finding.suggestion:
        out["suggestion"] = finding.suggestion
    return out


def job_json(job: ai_pb2.Job) -> dict[str, Any]:
    status = _STATUS.get(job.status, "queued")
    out: dict[str, Any] = {
        "job_id": job.id, "status": status, "provider": job.provider, "model": job.model,
        "kind": _KIND.get(job.kind, "review"), "session_id": job.session_id,
        "review_id": job.review_id or None, "paths": list(job.paths),
        "findings": [finding_json(f) for f in job.findings], "summary": job.summary,
        "files_reviewed": job.files_reviewed, "files_reused": job.files_reused,
        "requested_by": job.requested_by, "created_at": rfc3339(job.created_at),
        "started_at": rfc3339(job.started_at), "finished_at": rfc3339(job.finished_at),
    }
    if status in ("failed", "cancelled"):
        out["error"] = job.error or status
    return out


def _accepted(job: ai_pb2.Job) -> web.Response:
    return json_response({"job_id": job.id, "status": "queued"}, status=202,
                         headers={"Location": f"/api/v1/ai/jobs/{job.id}"})


async def create_review_job(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    review_id = path_uuid(request, "id", "review")
    body = await parse_json(request, ReviewJobIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "ai", "CreateReviewJob", backends.ai.CreateReviewJob,
        ai_pb2.CreateReviewJobRequest(review_id=review_id, paths=body.paths or [],
                                      provider=body.provider or ""),
        token=auth.token, timeout=CREATE_TIMEOUT)
    return _accepted(reply.job)


async def create_document_job(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = path_uuid(request, "id", "session")
    body = await parse_json(request, DocumentJobIn)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "ai", "CreateDocumentJob", backends.ai.CreateDocumentJob,
        ai_pb2.CreateDocumentJobRequest(session_id=session_id, provider=body.provider or ""),
        token=auth.token)
    return _accepted(reply.job)


async def get_job(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    job_id = path_uuid(request, "job_id", "job")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("ai", "GetJob", backends.ai.GetJob,
                                ai_pb2.GetJobRequest(job_id=job_id), token=auth.token)
    return json_response(job_json(reply.job))


def _page(request: web.Request) -> tuple[int, str]:
    return query_int(request, "limit", 20, 1, 100), query_cursor(request)


def _jobs_page(reply: ai_pb2.ListJobsResponse) -> web.Response:
    return json_response({"items": [job_json(j) for j in reply.jobs],
                          "next_cursor": reply.next_cursor or None})


async def list_review_jobs(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    review_id = path_uuid(request, "id", "review")
    limit, cursor = _page(request)
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "ai", "ListJobs", backends.ai.ListJobs,
        ai_pb2.ListJobsRequest(review_id=review_id, limit=limit, cursor=cursor),
        token=auth.token)
    return _jobs_page(reply)


async def list_session_jobs(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    session_id = session_path_id(request)
    limit, cursor = _page(request)
    raw_kind = request.query.get("kind", "")
    if raw_kind and raw_kind not in _KIND_BY_NAME:
        raise ApiError(400, "invalid_argument", 'kind must be "review" or "document"',
                       [{"field": "kind", "message": 'must be "review" or "document"'}])
    backends = request.app[keys.BACKENDS]
    reply = await backends.call(
        "ai", "ListJobs", backends.ai.ListJobs,
        ai_pb2.ListJobsRequest(session_id=session_id, limit=limit, cursor=cursor,
                               kind=_KIND_BY_NAME.get(raw_kind, ai_pb2.JOB_KIND_UNSPECIFIED)),
        token=auth.token)
    return _jobs_page(reply)


async def cancel_job(request: web.Request) -> web.Response:
    auth = await authenticate(request)
    job_id = path_uuid(request, "job_id", "job")
    backends = request.app[keys.BACKENDS]
    reply = await backends.call("ai", "CancelJob", backends.ai.CancelJob,
                                ai_pb2.CancelJobRequest(job_id=job_id), token=auth.token,
                                timeout=CANCEL_TIMEOUT)
    return json_response(job_json(reply.job))


def add_routes(table: RouteTable) -> None:
    table.add(Operation("POST", "/api/v1/reviews/{id}/ai", create_review_job,
                        "Request an AI review of the review's changed files (editor+)", "ai",
                        status=202, request=ReviewJobIn, response=JobAccepted,
                        errors=(403, 404, 409, 429)))
    table.add(Operation("POST", "/api/v1/sessions/{id}/ai", create_document_job,
                        "Request an AI review of the session's live document (editor+)", "ai",
                        status=202, request=DocumentJobIn, response=JobAccepted,
                        errors=(403, 404, 409, 429)))
    cursor = ("cursor", {"type": "string"}, "next_cursor of the previous page")
    limit = ("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
             "Page size")
    table.add(Operation("GET", "/api/v1/reviews/{id}/ai", list_review_jobs,
                        "The review's AI review jobs with their findings, newest first (members)",
                        "ai", response=JobList, errors=(400, 404, 429), query=(limit, cursor)))
    table.add(Operation("GET", "/api/v1/sessions/{id}/ai", list_session_jobs,
                        "The session's AI review jobs (its reviews' and its document's, or one "
                        "kind) with their findings, newest first (members)", "ai",
                        response=JobList, errors=(400, 404, 429),
                        query=(("kind", {"type": "string", "enum": ["review", "document"]},
                                'Only jobs of this kind: "document" (the live document) or '
                                '"review" (pull requests); default every kind'),
                               limit, cursor)))
    table.add(Operation("GET", "/api/v1/ai/jobs/{job_id}", get_job,
                        "An AI review job with its findings (members of its session)", "ai",
                        response=JobOut, errors=(404, 429)))
    table.add(Operation("POST", "/api/v1/ai/jobs/{job_id}/cancel", cancel_job,
                        "Cancel a queued or running AI review job (its requester, or editor+)",
                        "ai", response=JobOut, errors=(403, 404, 409, 429)))
