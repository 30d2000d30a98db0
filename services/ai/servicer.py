"""gRPC servicer of the ai service: proto <-> domain, nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tandem.ai.v1 import ai_pb2, ai_pb2_grpc

from services.ai.domain import Finding, Job, JobKind, JobStatus
from services.ai.usecases import AiUseCases
from services.common.errors import FieldViolation, InvalidArgument
from services.common.identity import Authenticator
from services.common.timeconv import to_timestamp

Ctx = grpc.aio.ServicerContext[Any, Any]

_STATUS = {JobStatus.QUEUED: ai_pb2.JOB_STATUS_QUEUED, JobStatus.RUNNING: ai_pb2.JOB_STATUS_RUNNING,
           JobStatus.DONE: ai_pb2.JOB_STATUS_DONE, JobStatus.FAILED: ai_pb2.JOB_STATUS_FAILED,
           JobStatus.CANCELLED: ai_pb2.JOB_STATUS_CANCELLED}
_SEVERITY = {"info": ai_pb2.SEVERITY_INFO, "warning": ai_pb2.SEVERITY_WARNING,
             "error": ai_pb2.SEVERITY_ERROR}
_KIND = {JobKind.REVIEW: ai_pb2.JOB_KIND_REVIEW, JobKind.DOCUMENT: ai_pb2.JOB_KIND_DOCUMENT}
_KIND_FROM_PB = {pb: kind for kind, pb in _KIND.items()}


def _timestamp(value: datetime | None) -> Timestamp | None:
    return None if value is None else to_timestamp(value)


def finding_pb(finding: Finding, index: int) -> ai_pb2.Finding:
    out = ai_pb2.Finding(path=finding.path, line=finding.line, end_line=finding.end_line,
                         severity=_SEVERITY[finding.severity], category=finding.category,
                         message=finding.message, source=finding.source, index=index)
    if finding.suggestion:
        out.suggestion = finding.suggestion
    return out


def job_pb(job: Job) -> ai_pb2.Job:
    return ai_pb2.Job(
        id=job.id, session_id=job.session_id, review_id=job.review_id or "",
        status=_STATUS[job.status], provider=job.provider, model=job.model,
        findings=[finding_pb(f, i) for i, f in enumerate(job.findings)], summary=job.summary,
        error=job.error or "", created_at=_timestamp(job.created_at),
        started_at=_timestamp(job.started_at), finished_at=_timestamp(job.finished_at),
        requested_by=job.requested_by, kind=_KIND[job.kind], files_reviewed=job.files_reviewed,
        files_reused=job.files_reused, paths=list(job.paths))


class AiServicer(ai_pb2_grpc.AiServiceServicer):
    """Every RPC authenticates the caller; AiUseCases authorizes against session membership."""

    def __init__(self, usecases: AiUseCases, authn: Authenticator) -> None:
        self._u = usecases
        self._authn = authn

    async def CreateReviewJob(self, request: ai_pb2.CreateReviewJobRequest,
                              context: Ctx) -> ai_pb2.CreateReviewJobResponse:
        caller = await self._authn.caller(context)
        job = await self._u.create_review_job(caller, request.review_id, list(request.paths),
                                                request.provider)
        return ai_pb2.CreateReviewJobResponse(job=job_pb(job))

    async def CreateDocumentJob(self, request: ai_pb2.CreateDocumentJobRequest,
                                context: Ctx) -> ai_pb2.CreateDocumentJobResponse:
        caller = await self._authn.caller(context)
        job = await self._u.create_document_job(caller, request.session_id, request.provider)
        return ai_pb2.CreateDocumentJobResponse(job=job_pb(job))

    async def GetJob(self, request: ai_pb2.GetJobRequest, context: Ctx) -> ai_pb2.GetJobResponse:
        caller = await self._authn.caller(context)
        return ai_pb2.GetJobResponse(job=job_pb(await self._u.get_job(caller, request.job_id)))

    async def ListJobs(self, request: ai_pb2.ListJobsRequest,
                       context: Ctx) -> ai_pb2.ListJobsResponse:
        caller = await self._authn.caller(context)
        scope = request.WhichOneof("scope")
        if scope is None:
            raise InvalidArgument("give review_id or session_id", [
                FieldViolation("scope", "give review_id or session_id")])
        if request.kind and request.kind not in _KIND_FROM_PB:
            raise InvalidArgument("unknown job kind", [
                FieldViolation("kind", "must be review or document")])
        jobs, cursor = await self._u.list_jobs(
            caller, review_id=request.review_id if scope == "review_id" else None,
            session_id=request.session_id if scope == "session_id" else None,
            kind=_KIND_FROM_PB.get(request.kind), limit=request.limit, cursor=request.cursor)
        return ai_pb2.ListJobsResponse(jobs=[job_pb(j) for j in jobs], next_cursor=cursor)

    async def CancelJob(self, request: ai_pb2.CancelJobRequest,
                        context: Ctx) -> ai_pb2.CancelJobResponse:
        caller = await self._authn.caller(context)
        return ai_pb2.CancelJobResponse(
            job=job_pb(await self._u.cancel_job(caller, request.job_id)))

    async def WatchJob(self, request: ai_pb2.WatchJobRequest,
                       context: Ctx) -> AsyncIterator[ai_pb2.WatchJobResponse]:
        caller = await self._authn.caller(context)
        async with contextlib.aclosing(self._u.watch(caller, request.job_id)) as items:
            async for item in items:
                if isinstance(item, Job):
                    yield ai_pb2.WatchJobResponse(job=job_pb(item))
                else:
                    index, finding = item
                    yield ai_pb2.WatchJobResponse(finding=finding_pb(finding, index))
