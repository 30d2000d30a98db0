"""The review API's JSON, rendered from the proto contract: one renderer for REST and events.

A cross-process contract, so it lives in the kit: the gateway answers HTTP
with these dicts and the review service puts the same dicts into session
events, so a client sees one shape whichever way it learns of a change (the
gateway imports no service package). The enum names are here too, both ways.
"""

from __future__ import annotations

from typing import Any

from tandem.review.v1 import review_pb2

from services.common.timeconv import timestamp_rfc3339

SIDES = {"LEFT": review_pb2.SIDE_LEFT, "RIGHT": review_pb2.SIDE_RIGHT}
VERDICTS = {"approve": review_pb2.VERDICT_STATE_APPROVE,
            "request_changes": review_pb2.VERDICT_STATE_REQUEST_CHANGES,
            "comment": review_pb2.VERDICT_STATE_COMMENT}
SIDE_NAMES = {value: name for name, value in SIDES.items()}
VERDICT_NAMES = {value: name for name, value in VERDICTS.items()}


def file_summary_json(f: review_pb2.ReviewFile) -> dict[str, Any]:
    return {"path": f.path, "status": f.status, "additions": f.additions,
            "deletions": f.deletions, "previous_path": f.previous_path or None}


def verdict_json(v: review_pb2.Verdict) -> dict[str, Any]:
    return {"id": v.id, "review_id": v.review_id, "author_id": v.author_id,
            "state": VERDICT_NAMES.get(v.state, "comment"), "body": v.body,
            "created_at": timestamp_rfc3339(v.created_at)}


def person_json(v: review_pb2.Verdict) -> dict[str, Any]:
    """The verdict author's user object (as GET .../members shows users); when the profile
    could not be looked up (the auth service unreachable), only its id is filled in."""
    if not v.HasField("author"):
        return {"id": v.author_id, "github_login": "", "name": "", "avatar_url": "",
                "created_at": None}
    p = v.author
    return {"id": p.id, "github_login": p.github_login, "name": p.name,
            "avatar_url": p.avatar_url, "created_at": timestamp_rfc3339(p.created_at)}


def current_verdict_json(v: review_pb2.Verdict) -> dict[str, Any]:
    """One reviewer's current verdict, as Review.verdicts lists them."""
    return {"user": person_json(v), "state": VERDICT_NAMES.get(v.state, "comment"),
            "body": v.body, "at": timestamp_rfc3339(v.created_at)}


def review_json(r: review_pb2.Review) -> dict[str, Any]:
    return {
        "id": r.id,
        "session_id": r.session_id,
        "repo": r.repo,
        "pull_number": r.pull_number or None,
        "ref": r.ref or None,
        "head_sha": r.head_sha,
        "base_sha": r.base_sha,
        "title": r.title,
        "state": r.state,
        "files": [file_summary_json(f) for f in r.files],
        "verdict": verdict_json(r.verdict) if r.HasField("verdict") else None,
        "verdicts": [current_verdict_json(v) for v in r.verdicts],
        "decision": r.decision or None,
        "github_review_id": r.github_review_id or None,
        "published_at": timestamp_rfc3339(r.published_at),
        "created_by": r.created_by,
        "created_at": timestamp_rfc3339(r.created_at),
        "updated_at": timestamp_rfc3339(r.updated_at),
    }


def comment_json(c: review_pb2.Comment) -> dict[str, Any]:
    return {"id": c.id, "thread_id": c.thread_id, "author_id": c.author_id, "body": c.body,
            "created_at": timestamp_rfc3339(c.created_at)}


def thread_json(t: review_pb2.Thread) -> dict[str, Any]:
    return {
        "id": t.id,
        "review_id": t.review_id,
        "path": t.path,
        "line": t.line,
        "start_line": t.start_line or None,
        "side": SIDE_NAMES.get(t.side, "RIGHT"),
        "commit_sha": t.commit_sha,
        "resolved": t.resolved,
        "outdated": t.outdated,
        "comments": [comment_json(c) for c in t.comments],
        "created_by": t.created_by,
        "created_at": timestamp_rfc3339(t.created_at),
        "updated_at": timestamp_rfc3339(t.updated_at),
    }


def hunk_json(h: review_pb2.Hunk) -> dict[str, Any]:
    return {"source_start": h.source_start, "source_length": h.source_length,
            "target_start": h.target_start, "target_length": h.target_length,
            "section_header": h.section_header,
            "lines": [{"kind": ln.kind, "source_line": ln.source_line or None,
                       "target_line": ln.target_line or None, "value": ln.value}
                      for ln in h.lines]}


def file_json(f: review_pb2.GetFileResponse) -> dict[str, Any]:
    return {"path": f.path, "status": f.status, "previous_path": f.previous_path or None,
            "sha": f.sha,
            # A removed file has no content at the head commit (its lines are in the hunks).
            "content": None if f.status == "removed" else f.content,
            "patch": f.patch, "hunks": [hunk_json(h) for h in f.hunks]}


def published_json(p: review_pb2.PublishReviewResponse) -> dict[str, Any]:
    return {"github_review_id": p.github_review_id, "published_at": timestamp_rfc3339(p.published_at),
            "html_url": p.html_url or None}
