"""Pure review rules: hunks, thread anchors, outdated threads, placement, signatures, payloads."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from tandem.review.v1 import review_pb2

from gateway.routes.review import (
    CommentOut,
    CurrentVerdictOut,
    FileOut,
    ReviewOut,
    ThreadOut,
    VerdictOut,
)
from gateway.schemas import UserOut
from services.common import reviewjson
from services.common.cursors import decode_cursor, encode_cursor
from services.common.errors import InvalidArgument
from services.review.diffs import PatchError, file_lines, parse_patch
from services.review.domain import (
    EVENT_MAX_BYTES,
    Comment,
    FileSummary,
    Person,
    Review,
    ReviewFile,
    Thread,
    Verdict,
    anchor,
    check_import,
    current_verdicts,
    decide,
    event_payload,
    is_outdated,
    placeable,
    verify_signature,
)
from services.review.events import JsonRenderer
from services.review.servicer import hunk_pb
from standins.github.data import (
    HELLO_CONFIG_HEAD,
    HELLO_USERS_BASE,
    HELLO_USERS_HEAD,
    HELLO_USERS_PROBLEMS,
)
from standins.github.diffs import unified_patch

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def users_file() -> ReviewFile:
    patch = unified_patch(HELLO_USERS_BASE, HELLO_USERS_HEAD)
    return ReviewFile("app/users.py", "modified", 64, 1, "", patch, parse_patch(patch))


def config_file() -> ReviewFile:
    patch = unified_patch("", HELLO_CONFIG_HEAD)
    return ReviewFile("app/config.py", "added", 21, 0, "", patch, parse_patch(patch))


def thread(side: str, line: int, text: str, start: int | None = None,
           path: str = "app/users.py") -> Thread:
    return Thread("t1", "r1", path, side, line, start, "sha", text, False, False, "u1", NOW, NOW)


# --- hunks -------------------------------------------------------------------------


def test_hunks_number_both_sides_like_the_patch_says() -> None:
    hunks = users_file().hunks
    assert [(h.source_start, h.target_start) for h in hunks] == [(2, 2), (34, 37)]
    assert hunks[1].section_header.startswith("def list_users(")
    head = file_lines(HELLO_USERS_HEAD)
    base = file_lines(HELLO_USERS_BASE)
    for hunk in hunks:
        for line in hunk.lines:
            if line.target_line is not None:
                assert head[line.target_line - 1] == line.value
            if line.source_line is not None:
                assert base[line.source_line - 1] == line.value


def test_no_newline_markers_are_not_lines() -> None:
    (hunk,) = parse_patch(unified_patch("a\nb", "a\nc"))
    assert [(ln.kind, ln.value) for ln in hunk.lines] == [(" ", "a"), ("-", "b"), ("+", "c")]


def test_a_malformed_patch_is_refused() -> None:
    with pytest.raises(PatchError):
        parse_patch("@@ -1,3 +1,3 @@\n a\n")
    assert parse_patch("") == []


def test_file_lines_count_like_git() -> None:
    assert file_lines("") == []
    assert file_lines("a\nb\n") == ["a", "b"]
    assert file_lines("a\nb") == ["a", "b"]
    assert file_lines("a\r\nb\n") == ["a\r", "b"]


# --- anchors -----------------------------------------------------------------------


def test_right_lines_inside_the_head_file_anchor_their_text() -> None:
    first, last = HELLO_USERS_PROBLEMS["sql-injection"]
    text = anchor(users_file(), HELLO_USERS_HEAD, "RIGHT", last, first)
    assert "f\"SELECT id, login, name, email FROM users WHERE name LIKE" in text
    # Context lines far from any hunk are still lines of the file.
    assert anchor(users_file(), HELLO_USERS_HEAD, "RIGHT", 1, None).startswith('"""User')
    lines = len(file_lines(HELLO_USERS_HEAD))
    assert anchor(users_file(), HELLO_USERS_HEAD, "RIGHT", lines, None) == \
        file_lines(HELLO_USERS_HEAD)[-1]


@pytest.mark.parametrize("line", [100, 101, 5000])
def test_right_line_outside_the_head_file_is_unprocessable(line: int) -> None:
    assert len(file_lines(HELLO_USERS_HEAD)) == 99
    with pytest.raises(InvalidArgument) as info:
        anchor(users_file(), HELLO_USERS_HEAD, "RIGHT", line, None)
    assert info.value.reason == "unprocessable"
    assert info.value.violations[0].field == "line"


def test_left_on_a_removed_line_anchors_the_base_text() -> None:
    # Base line 6 is "from dataclasses import dataclass", replaced in the head.
    assert anchor(users_file(), None, "LEFT", 6, None) == "from dataclasses import dataclass"
    assert anchor(users_file(), None, "LEFT", 6, 5) == "import sqlite3\nfrom dataclasses import dataclass"


def test_left_on_an_added_only_file_or_off_the_diff_is_unprocessable() -> None:
    with pytest.raises(InvalidArgument) as added:
        anchor(config_file(), None, "LEFT", 1, None)
    assert added.value.reason == "unprocessable"
    with pytest.raises(InvalidArgument) as off_diff:
        anchor(users_file(), None, "LEFT", 20, None)  # base line 20 is in no hunk
    assert off_diff.value.reason == "unprocessable"


def test_left_range_across_hunks_is_unprocessable() -> None:
    with pytest.raises(InvalidArgument) as info:
        anchor(users_file(), None, "LEFT", 35, 6)
    assert info.value.violations[0].field == "start_line"


def test_right_on_a_removed_file_is_unprocessable() -> None:
    removed = ReviewFile("app/legacy_lookup.py", "removed", 0, 10, "", "", [])
    with pytest.raises(InvalidArgument) as info:
        anchor(removed, None, "RIGHT", 1, None)
    assert info.value.reason == "unprocessable"


@pytest.mark.parametrize(("line", "start"), [(5, 6), (0, None), (5, 0)])
def test_impossible_ranges_are_invalid_not_unprocessable(line: int, start: int | None) -> None:
    with pytest.raises(InvalidArgument) as info:
        anchor(users_file(), HELLO_USERS_HEAD, "RIGHT", line, start)
    assert info.value.reason is None


# --- outdated threads and placement --------------------------------------------------


def test_thread_is_outdated_when_its_lines_read_differently_or_vanish() -> None:
    text = anchor(users_file(), HELLO_USERS_HEAD, "RIGHT", 9, None)
    kept = thread("RIGHT", 9, text)
    assert not is_outdated(kept, users_file(), HELLO_USERS_HEAD)
    changed = HELLO_USERS_HEAD.replace('DB_PASSWORD = "hunter2"', 'DB_PASSWORD = os.environ["PW"]')
    assert is_outdated(kept, users_file(), changed)
    shifted = "# new first line\n" + HELLO_USERS_HEAD
    assert is_outdated(kept, users_file(), shifted)
    assert is_outdated(kept, None, None)  # the file is gone at the new head
    assert is_outdated(thread("RIGHT", 99, "x"), users_file(), "short\n")


def test_left_thread_is_outdated_when_the_diff_no_longer_shows_its_line() -> None:
    left = thread("LEFT", 6, "from dataclasses import dataclass")
    assert not is_outdated(left, users_file(), None)
    # A push that undoes the change: the diff no longer shows base line 6.
    patch = unified_patch(HELLO_USERS_BASE, HELLO_USERS_BASE + "# end\n")
    reverted = ReviewFile("app/users.py", "modified", 1, 0, "", patch, parse_patch(patch))
    assert is_outdated(left, reverted, None)
    assert is_outdated(left, None, None)


def test_only_lines_the_diff_shows_can_carry_a_github_line_comment() -> None:
    assert placeable(users_file(), thread("RIGHT", 44, "x"))
    assert placeable(users_file(), thread("RIGHT", 44, "x", start=42))
    assert not placeable(users_file(), thread("RIGHT", 1, "x"))  # context far from hunks
    assert not placeable(users_file(), thread("RIGHT", 44, "x", start=5))  # spans two hunks
    assert placeable(users_file(), thread("LEFT", 6, "x"))
    assert not placeable(None, thread("RIGHT", 44, "x"))


# --- webhooks, cursors, import requests ------------------------------------------------


def test_signature_must_be_the_hmac_of_the_exact_body() -> None:
    body = b'{"action":"synchronize"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", body, good)
    assert not verify_signature("s3cret", body + b" ", good)
    assert not verify_signature("other", body, good)
    assert not verify_signature("s3cret", body, "sha1=" + good[7:])
    assert not verify_signature("s3cret", body, "")


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    cursor = encode_cursor(NOW, "0b0e7e2a-5ad1-4e4c-9d3f-1f2e3d4c5b6a")
    assert decode_cursor(cursor) == (NOW, "0b0e7e2a-5ad1-4e4c-9d3f-1f2e3d4c5b6a")
    assert decode_cursor("") is None
    with pytest.raises(InvalidArgument):
        decode_cursor("not-a-cursor")


@pytest.mark.parametrize(("repo", "number", "ref", "field"), [
    ("hello-api", 1, "", "repo"),
    ("a/b/c", 1, "", "repo"),
    ("owner/..", 1, "", "repo"),
    ("tandem-demo/hello-api", 0, "", "pull_number"),
    ("tandem-demo/hello-api", 1, "main", "pull_number"),
    ("tandem-demo/hello-api", 0, "has space", "ref"),
])
def test_import_requests_name_the_bad_field(repo: str, number: int, ref: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_import(repo, number, ref)
    assert field in {v.field for v in info.value.violations}


def test_good_import_requests_pass() -> None:
    check_import("tandem-demo/hello-api", 1, "")
    check_import("octo-org/my.repo_name", 0, "feature/x")


# --- JSON: one shape for REST and events ---------------------------------------------


def sample_review(files: int = 2) -> Review:
    verdict = Verdict("v1", "r1", "u1", "request_changes", "Fix the SQL", NOW,
                      Person("u1", "hubot", "Hubot", "https://avatars.example/u1", NOW))
    return Review("r1", "s1", "tandem-demo/hello-api", 1, "", "a" * 40, "b" * 40, "Title", "open",
                  "u1", NOW, NOW, files=[FileSummary(f"f{i}.py", "modified", 1, 2, "")
                                         for i in range(files)], verdict=verdict,
                  verdicts=[verdict])


def fields_of(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_rendered_json_has_exactly_the_documented_fields() -> None:
    render = JsonRenderer()
    review = render.review(sample_review())
    assert set(review) == fields_of(ReviewOut)
    assert ReviewOut.model_validate(review).verdict is not None
    assert review["decision"] == "changes_requested"
    [current] = review["verdicts"]
    assert set(current) == fields_of(CurrentVerdictOut) == {"user", "state", "body", "at"}
    assert current == {"user": {"id": "u1", "github_login": "hubot", "name": "Hubot",
                                "avatar_url": "https://avatars.example/u1",
                                "created_at": "2026-01-02T03:04:05.000000Z"},
                       "state": "request_changes", "body": "Fix the SQL",
                       "at": "2026-01-02T03:04:05.000000Z"}
    assert set(current["user"]) == fields_of(UserOut)
    comment = Comment("c1", "t1", "u1", "body", NOW)
    item = Thread("t1", "r1", "app/users.py", "LEFT", 6, None, "a" * 40, "x", False, True, "u1",
                  NOW, NOW, [comment])
    rendered = render.thread(item)
    assert set(rendered) == fields_of(ThreadOut)
    assert ThreadOut.model_validate(rendered).start_line is None
    assert set(render.comment(comment)) == fields_of(CommentOut)
    verdict = sample_review().verdict
    assert verdict is not None
    assert set(render.verdict(verdict)) == fields_of(VerdictOut)
    file_reply = review_pb2.GetFileResponse(path="app/users.py", content="x", patch="p",
                                            hunks=[hunk_pb(h) for h in users_file().hunks],
                                            sha="a" * 40, status="modified")
    file_json = reviewjson.file_json(file_reply)
    assert set(file_json) == fields_of(FileOut)
    FileOut.model_validate(file_json)
    removed = reviewjson.file_json(review_pb2.GetFileResponse(path="x", status="removed"))
    assert removed["content"] is None


def at(second: int) -> datetime:
    return NOW.replace(second=second)


def test_each_reviewer_has_one_current_verdict_and_the_newest_replaces_theirs() -> None:
    given = [Verdict("v3", "r1", "owner", "approve", "now fine", at(30)),
             Verdict("v1", "r1", "owner", "request_changes", "fix SQL", at(10)),
             Verdict("v2", "r1", "editor", "approve", "ship it", at(20)),
             Verdict("v4", "r1", "viewer-turned-editor", "comment", "a thought", at(40))]
    current = current_verdicts(given)
    # Ordered by when each current verdict was given; the owner's request is replaced.
    assert [v.id for v in current] == ["v2", "v3", "v4"]
    assert current_verdicts([]) == []
    # Two verdicts of one person in the same instant: the later id is theirs (as SQL orders).
    tie = [Verdict("b", "r1", "u", "approve", "", NOW), Verdict("a", "r1", "u", "comment", "", NOW)]
    assert [v.id for v in current_verdicts(tie)] == ["b"]


@pytest.mark.parametrize(("states", "decision"), [
    ((), None),
    (("comment",), None),
    (("comment", "approve"), "approved"),
    (("approve", "request_changes", "approve"), "changes_requested"),
    (("request_changes", "comment"), "changes_requested"),
])
def test_the_decision_follows_the_current_verdicts_as_github_does(
        states: tuple[str, ...], decision: str | None) -> None:
    verdicts = [Verdict(f"v{i}", "r1", f"u{i}", state, "", at(i)) for i, state in enumerate(states)]
    assert decide(verdicts) == decision
    review = sample_review()
    assert JsonRenderer().review(replace(review, verdicts=verdicts))["decision"] == decision


def test_a_verdict_whose_author_could_not_be_looked_up_still_names_them_by_id() -> None:
    review = sample_review()
    bare = replace(review, verdicts=[replace(v, author=None) for v in review.verdicts])
    [current] = JsonRenderer().review(bare)["verdicts"]
    assert current["user"] == {"id": "u1", "github_login": "", "name": "", "avatar_url": "",
                               "created_at": None}


def test_event_payload_adds_review_id_and_leaves_the_envelope_alone() -> None:
    payload = event_payload(JsonRenderer().review(sample_review()), "r1")
    assert payload["review_id"] == "r1"
    assert "session_id" not in payload
    assert {"type", "seq", "at"}.isdisjoint(payload)
    assert "truncated" not in payload


def test_event_payload_too_big_for_an_event_is_trimmed_and_says_so() -> None:
    big: dict[str, Any] = {**JsonRenderer().review(sample_review(files=600)),
                           "thread": {"id": "t1", "comments": [{"body": "x" * 9000}] * 3,
                                      "path": "p"}}
    payload = event_payload(big, "r1")
    assert len(orjson.dumps(payload)) <= EVENT_MAX_BYTES
    assert payload["truncated"] is True
    assert payload["files"] == []
    assert payload["id"] == "r1"
    assert payload["thread"] == {"id": "t1", "path": "p"}
