"""Review records to proto messages, and the JSON renderer the domain's events use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from tandem.review.v1 import review_pb2

from services.common.timeconv import to_timestamp
from services.review import views
from services.review.diffs import Hunk
from services.review.models import Comment, Person, Published, Review, Thread, Verdict

SIDES = {"LEFT": review_pb2.SIDE_LEFT, "RIGHT": review_pb2.SIDE_RIGHT}
VERDICTS = {"approve": review_pb2.VERDICT_STATE_APPROVE,
            "request_changes": review_pb2.VERDICT_STATE_REQUEST_CHANGES,
            "comment": review_pb2.VERDICT_STATE_COMMENT}


def ts(value: datetime | None) -> Timestamp | None:
    return None if value is None else to_timestamp(value)


def person_pb(p: Person) -> review_pb2.Person:
    return review_pb2.Person(id=p.id, github_login=p.github_login, name=p.name,
                             avatar_url=p.avatar_url, created_at=ts(p.created_at))


def verdict_pb(v: Verdict) -> review_pb2.Verdict:
    return review_pb2.Verdict(id=v.id, review_id=v.review_id, author_id=v.author_id,
                              state=VERDICTS[v.state], body=v.body, created_at=ts(v.created_at),
                              author=person_pb(v.author) if v.author else None)


def review_pb(r: Review) -> review_pb2.Review:
    return review_pb2.Review(
        id=r.id, session_id=r.session_id, repo=r.repo, pull_number=r.pull_number or 0,
        ref=r.ref, head_sha=r.head_sha, base_sha=r.base_sha, title=r.title, state=r.state,
        files=[review_pb2.ReviewFile(path=f.path, status=f.status, additions=f.additions,
                                     deletions=f.deletions, previous_path=f.previous_path)
               for f in r.files],
        created_at=ts(r.created_at), updated_at=ts(r.updated_at), created_by=r.created_by,
        github_review_id=r.github_review_id or 0, published_at=ts(r.published_at),
        verdict=verdict_pb(r.verdict) if r.verdict else None,
        verdicts=[verdict_pb(v) for v in r.verdicts], decision=r.decision or "")


def comment_pb(c: Comment) -> review_pb2.Comment:
    return review_pb2.Comment(id=c.id, thread_id=c.thread_id, author_id=c.author_id, body=c.body,
                              created_at=ts(c.created_at))


def thread_pb(t: Thread) -> review_pb2.Thread:
    return review_pb2.Thread(
        id=t.id, review_id=t.review_id, path=t.path, line=t.line, start_line=t.start_line or 0,
        side=SIDES[t.side], commit_sha=t.commit_sha, resolved=t.resolved, outdated=t.outdated,
        comments=[comment_pb(c) for c in t.comments], created_at=ts(t.created_at),
        created_by=t.created_by, updated_at=ts(t.updated_at))


def hunk_pb(h: Hunk) -> review_pb2.Hunk:
    return review_pb2.Hunk(
        source_start=h.source_start, source_length=h.source_length, target_start=h.target_start,
        target_length=h.target_length, section_header=h.section_header,
        lines=[review_pb2.HunkLine(kind=ln.kind, source_line=ln.source_line or 0,
                                   target_line=ln.target_line or 0, value=ln.value)
               for ln in h.lines])


def published_pb(p: Published) -> review_pb2.PublishReviewResponse:
    return review_pb2.PublishReviewResponse(github_review_id=p.github_review_id,
                                            published_at=ts(p.published_at), html_url=p.html_url)


class JsonRenderer:
    """Records as the REST API shows them: through the proto, with the gateway's renderer."""

    def review(self, review: Review) -> dict[str, Any]:
        return views.review_json(review_pb(review))

    def thread(self, thread: Thread) -> dict[str, Any]:
        return views.thread_json(thread_pb(thread))

    def comment(self, comment: Comment) -> dict[str, Any]:
        return views.comment_json(comment_pb(comment))

    def verdict(self, verdict: Verdict) -> dict[str, Any]:
        return views.verdict_json(verdict_pb(verdict))
