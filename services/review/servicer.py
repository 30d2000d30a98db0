"""gRPC servicer of the review service: proto <-> domain only (the proto mapping lives here)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tandem.review.v1 import review_pb2, review_pb2_grpc

from services.common.identity import Authenticator, Caller
from services.common.reviewjson import SIDE_NAMES, SIDES, VERDICT_NAMES, VERDICTS
from services.common.timeconv import to_timestamp
from services.review import github
from services.review.diffs import Hunk
from services.review.domain import Comment, Person, Published, Review, Thread, Verdict
from services.review.usecases import ReviewUseCases

Ctx = grpc.aio.ServicerContext[Any, Any]


def _bind_deadline(context: Ctx) -> None:
    """GitHub calls made for this RPC must finish before the caller stops waiting."""
    remaining = context.time_remaining()
    github.deadline_var.set(time.monotonic() + remaining if remaining is not None else None)


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, usecases: ReviewUseCases, authn: Authenticator) -> None:
        self._uc = usecases
        self._authn = authn

    async def _caller(self, context: Ctx) -> Caller:
        _bind_deadline(context)
        return await self._authn.caller(context)

    async def CreateReview(self, request: review_pb2.CreateReviewRequest,
                           context: Ctx) -> review_pb2.CreateReviewResponse:
        caller = await self._caller(context)
        review = await self._uc.reviews.create_review(caller, request.session_id, request.repo,
                                                      request.pull_number, request.ref)
        return review_pb2.CreateReviewResponse(review=review_pb(review))

    async def ListReviews(self, request: review_pb2.ListReviewsRequest,
                          context: Ctx) -> review_pb2.ListReviewsResponse:
        caller = await self._caller(context)
        reviews, cursor = await self._uc.reviews.list_reviews(caller, request.session_id,
                                                              request.limit, request.cursor)
        return review_pb2.ListReviewsResponse(reviews=[review_pb(r) for r in reviews],
                                              next_cursor=cursor)

    async def GetReview(self, request: review_pb2.GetReviewRequest,
                        context: Ctx) -> review_pb2.GetReviewResponse:
        caller = await self._caller(context)
        return review_pb2.GetReviewResponse(
            review=review_pb(await self._uc.reviews.get_review(caller, request.review_id)))

    async def GetFile(self, request: review_pb2.GetFileRequest,
                      context: Ctx) -> review_pb2.GetFileResponse:
        caller = await self._caller(context)
        view = await self._uc.reviews.get_file(caller, request.review_id, request.path)
        f = view.file
        return review_pb2.GetFileResponse(
            path=f.path, content=view.content or "", patch=f.patch,
            hunks=[hunk_pb(h) for h in f.hunks], sha=view.sha, status=f.status,
            previous_path=f.previous_path)

    async def CreateThread(self, request: review_pb2.CreateThreadRequest,
                           context: Ctx) -> review_pb2.CreateThreadResponse:
        caller = await self._caller(context)
        side = SIDE_NAMES.get(request.side, "RIGHT")
        thread = await self._uc.threads.create_thread(caller, request.review_id, request.path,
                                                      request.line, request.start_line or None,
                                                      side, request.body)
        return review_pb2.CreateThreadResponse(thread=thread_pb(thread))

    async def ListThreads(self, request: review_pb2.ListThreadsRequest,
                          context: Ctx) -> review_pb2.ListThreadsResponse:
        caller = await self._caller(context)
        threads, cursor = await self._uc.threads.list_threads(caller, request.review_id,
                                                              request.limit, request.cursor)
        return review_pb2.ListThreadsResponse(threads=[thread_pb(t) for t in threads],
                                              next_cursor=cursor)

    async def AddComment(self, request: review_pb2.AddCommentRequest,
                         context: Ctx) -> review_pb2.AddCommentResponse:
        caller = await self._caller(context)
        comment = await self._uc.threads.add_comment(caller, request.review_id,
                                                     request.thread_id, request.body)
        return review_pb2.AddCommentResponse(comment=comment_pb(comment))

    async def ResolveThread(self, request: review_pb2.ResolveThreadRequest,
                            context: Ctx) -> review_pb2.ResolveThreadResponse:
        caller = await self._caller(context)
        thread = await self._uc.threads.set_resolved(caller, request.review_id,
                                                     request.thread_id, True)
        return review_pb2.ResolveThreadResponse(thread=thread_pb(thread))

    async def UnresolveThread(self, request: review_pb2.UnresolveThreadRequest,
                              context: Ctx) -> review_pb2.UnresolveThreadResponse:
        caller = await self._caller(context)
        thread = await self._uc.threads.set_resolved(caller, request.review_id,
                                                     request.thread_id, False)
        return review_pb2.UnresolveThreadResponse(thread=thread_pb(thread))

    async def CreateVerdict(self, request: review_pb2.CreateVerdictRequest,
                            context: Ctx) -> review_pb2.CreateVerdictResponse:
        caller = await self._caller(context)
        verdict = await self._uc.verdicts.create_verdict(
            caller, request.review_id, VERDICT_NAMES.get(request.state, ""), request.body)
        return review_pb2.CreateVerdictResponse(verdict=verdict_pb(verdict))

    async def PublishReview(self, request: review_pb2.PublishReviewRequest,
                            context: Ctx) -> review_pb2.PublishReviewResponse:
        caller = await self._caller(context)
        return published_pb(await self._uc.publishing.publish(caller, request.review_id))

    async def HandleWebhook(self, request: review_pb2.HandleWebhookRequest,
                            context: Ctx) -> review_pb2.HandleWebhookResponse:
        # No caller credential: the HMAC signature over the body is the authentication.
        _bind_deadline(context)
        outcome = await self._uc.webhooks.handle_webhook(request.event, request.delivery_id,
                                                         request.signature_256, request.body)
        return review_pb2.HandleWebhookResponse(outcome=outcome)


# --- records -> messages --------------------------------------------------------------


def _ts(value: datetime | None) -> Timestamp | None:
    return None if value is None else to_timestamp(value)


def person_pb(p: Person) -> review_pb2.Person:
    return review_pb2.Person(id=p.id, github_login=p.github_login, name=p.name,
                             avatar_url=p.avatar_url, created_at=_ts(p.created_at))


def verdict_pb(v: Verdict) -> review_pb2.Verdict:
    return review_pb2.Verdict(id=v.id, review_id=v.review_id, author_id=v.author_id,
                              state=VERDICTS[v.state], body=v.body, created_at=_ts(v.created_at),
                              author=person_pb(v.author) if v.author else None)


def review_pb(r: Review) -> review_pb2.Review:
    return review_pb2.Review(
        id=r.id, session_id=r.session_id, repo=r.repo, pull_number=r.pull_number or 0,
        ref=r.ref, head_sha=r.head_sha, base_sha=r.base_sha, title=r.title, state=r.state,
        files=[review_pb2.ReviewFile(path=f.path, status=f.status, additions=f.additions,
                                     deletions=f.deletions, previous_path=f.previous_path)
               for f in r.files],
        created_at=_ts(r.created_at), updated_at=_ts(r.updated_at), created_by=r.created_by,
        github_review_id=r.github_review_id or 0, published_at=_ts(r.published_at),
        verdict=verdict_pb(r.verdict) if r.verdict else None,
        verdicts=[verdict_pb(v) for v in r.verdicts], decision=r.decision or "")


def comment_pb(c: Comment) -> review_pb2.Comment:
    return review_pb2.Comment(id=c.id, thread_id=c.thread_id, author_id=c.author_id, body=c.body,
                              created_at=_ts(c.created_at))


def thread_pb(t: Thread) -> review_pb2.Thread:
    return review_pb2.Thread(
        id=t.id, review_id=t.review_id, path=t.path, line=t.line, start_line=t.start_line or 0,
        side=SIDES[t.side], commit_sha=t.commit_sha, resolved=t.resolved, outdated=t.outdated,
        comments=[comment_pb(c) for c in t.comments], created_at=_ts(t.created_at),
        created_by=t.created_by, updated_at=_ts(t.updated_at))


def hunk_pb(h: Hunk) -> review_pb2.Hunk:
    return review_pb2.Hunk(
        source_start=h.source_start, source_length=h.source_length, target_start=h.target_start,
        target_length=h.target_length, section_header=h.section_header,
        lines=[review_pb2.HunkLine(kind=ln.kind, source_line=ln.source_line or 0,
                                   target_line=ln.target_line or 0, value=ln.value)
               for ln in h.lines])


def published_pb(p: Published) -> review_pb2.PublishReviewResponse:
    return review_pb2.PublishReviewResponse(github_review_id=p.github_review_id,
                                            published_at=_ts(p.published_at), html_url=p.html_url)
