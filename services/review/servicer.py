"""gRPC servicer of the review service: proto <-> domain, nothing else."""

from __future__ import annotations

import time
from typing import Any

import grpc
from tandem.review.v1 import review_pb2, review_pb2_grpc

from services.common.identity import Authenticator, Caller
from services.review import github
from services.review.convert import (
    comment_pb,
    hunk_pb,
    published_pb,
    review_pb,
    thread_pb,
    verdict_pb,
)
from services.review.domain import ReviewDomain
from services.review.views import SIDE_NAMES, VERDICT_NAMES

Ctx = grpc.aio.ServicerContext[Any, Any]


def _bind_deadline(context: Ctx) -> None:
    """GitHub calls made for this RPC must finish before the caller stops waiting."""
    remaining = context.time_remaining()
    github.deadline_var.set(time.monotonic() + remaining if remaining is not None else None)


class ReviewServiceServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, domain: ReviewDomain, authn: Authenticator) -> None:
        self._d = domain
        self._authn = authn

    async def _caller(self, context: Ctx) -> Caller:
        _bind_deadline(context)
        return await self._authn.caller(context)

    async def CreateReview(self, request: review_pb2.CreateReviewRequest,
                           context: Ctx) -> review_pb2.CreateReviewResponse:
        caller = await self._caller(context)
        review = await self._d.create_review(caller, request.session_id, request.repo,
                                             request.pull_number, request.ref)
        return review_pb2.CreateReviewResponse(review=review_pb(review))

    async def ListReviews(self, request: review_pb2.ListReviewsRequest,
                          context: Ctx) -> review_pb2.ListReviewsResponse:
        caller = await self._caller(context)
        reviews, cursor = await self._d.list_reviews(caller, request.session_id, request.limit,
                                                     request.cursor)
        return review_pb2.ListReviewsResponse(reviews=[review_pb(r) for r in reviews],
                                              next_cursor=cursor)

    async def GetReview(self, request: review_pb2.GetReviewRequest,
                        context: Ctx) -> review_pb2.GetReviewResponse:
        caller = await self._caller(context)
        return review_pb2.GetReviewResponse(
            review=review_pb(await self._d.get_review(caller, request.review_id)))

    async def GetFile(self, request: review_pb2.GetFileRequest,
                      context: Ctx) -> review_pb2.GetFileResponse:
        caller = await self._caller(context)
        view = await self._d.get_file(caller, request.review_id, request.path)
        f = view.file
        return review_pb2.GetFileResponse(
            path=f.path, content=view.content or "", patch=f.patch,
            hunks=[hunk_pb(h) for h in f.hunks], sha=view.sha, status=f.status,
            previous_path=f.previous_path)

    async def CreateThread(self, request: review_pb2.CreateThreadRequest,
                           context: Ctx) -> review_pb2.CreateThreadResponse:
        caller = await self._caller(context)
        side = SIDE_NAMES.get(request.side, "RIGHT")
        thread = await self._d.create_thread(caller, request.review_id, request.path,
                                             request.line, request.start_line or None, side,
                                             request.body)
        return review_pb2.CreateThreadResponse(thread=thread_pb(thread))

    async def ListThreads(self, request: review_pb2.ListThreadsRequest,
                          context: Ctx) -> review_pb2.ListThreadsResponse:
        caller = await self._caller(context)
        threads, cursor = await self._d.list_threads(caller, request.review_id, request.limit,
                                                     request.cursor)
        return review_pb2.ListThreadsResponse(threads=[thread_pb(t) for t in threads],
                                              next_cursor=cursor)

    async def AddComment(self, request: review_pb2.AddCommentRequest,
                         context: Ctx) -> review_pb2.AddCommentResponse:
        caller = await self._caller(context)
        comment = await self._d.add_comment(caller, request.review_id, request.thread_id,
                                            request.body)
        return review_pb2.AddCommentResponse(comment=comment_pb(comment))

    async def ResolveThread(self, request: review_pb2.ResolveThreadRequest,
                            context: Ctx) -> review_pb2.ResolveThreadResponse:
        caller = await self._caller(context)
        thread = await self._d.set_resolved(caller, request.review_id, request.thread_id, True)
        return review_pb2.ResolveThreadResponse(thread=thread_pb(thread))

    async def UnresolveThread(self, request: review_pb2.UnresolveThreadRequest,
                              context: Ctx) -> review_pb2.UnresolveThreadResponse:
        caller = await self._caller(context)
        thread = await self._d.set_resolved(caller, request.review_id, request.thread_id, False)
        return review_pb2.UnresolveThreadResponse(thread=thread_pb(thread))

    async def CreateVerdict(self, request: review_pb2.CreateVerdictRequest,
                            context: Ctx) -> review_pb2.CreateVerdictResponse:
        caller = await self._caller(context)
        verdict = await self._d.create_verdict(caller, request.review_id,
                                               VERDICT_NAMES.get(request.state, ""), request.body)
        return review_pb2.CreateVerdictResponse(verdict=verdict_pb(verdict))

    async def PublishReview(self, request: review_pb2.PublishReviewRequest,
                            context: Ctx) -> review_pb2.PublishReviewResponse:
        caller = await self._caller(context)
        return published_pb(await self._d.publish(caller, request.review_id))

    async def HandleWebhook(self, request: review_pb2.HandleWebhookRequest,
                            context: Ctx) -> review_pb2.HandleWebhookResponse:
        # No caller credential: the HMAC signature over the body is the authentication.
        _bind_deadline(context)
        outcome = await self._d.handle_webhook(request.event, request.delivery_id,
                                               request.signature_256, request.body)
        return review_pb2.HandleWebhookResponse(outcome=outcome)
