"""Review events' payloads: records rendered as the REST API shows them, through the proto.

The session event log carries the same JSON the gateway answers over REST
(services/common/reviewjson.py renders both from the proto), so a client sees
one shape whichever way it learns of a change.
"""

from __future__ import annotations

from typing import Any

from services.common import reviewjson
from services.review.domain import Comment, Review, Thread, Verdict
from services.review.servicer import comment_pb, review_pb, thread_pb, verdict_pb


class JsonRenderer:
    """The Renderer port: records as the REST API shows them."""

    def review(self, review: Review) -> dict[str, Any]:
        return reviewjson.review_json(review_pb(review))

    def thread(self, thread: Thread) -> dict[str, Any]:
        return reviewjson.thread_json(thread_pb(thread))

    def comment(self, comment: Comment) -> dict[str, Any]:
        return reviewjson.comment_json(comment_pb(comment))

    def verdict(self, verdict: Verdict) -> dict[str, Any]:
        return reviewjson.verdict_json(verdict_pb(verdict))
