"""REST API v3 routes: the authenticated user, repositories, pulls, contents, reviews."""

from __future__ import annotations

import hashlib
import html

from aiohttp import web

from standins.github.diffs import compare_trees, git_diff
from standins.github.gitobjects import blob_sha, list_directory
from standins.github.keys import RENDERER_KEY, STATE_KEY, VIEWER_KEY, Viewer
from standins.github.middleware import bearer_credentials
from standins.github.render import JSON
from standins.github.responses import (
    ApiError,
    cacheable,
    cacheable_json,
    invalid,
    json_body,
    not_found,
    paginate,
    read_json_object,
)
from standins.github.store import (
    REVIEW_EVENTS,
    Account,
    CommentRequest,
    Pull,
    Repo,
    Unprocessable,
)

DOCS_USER = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
DOCS_EMAILS = (
    "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user"
)
DOCS_REPO = "https://docs.github.com/rest/repos/repos#get-a-repository"
DOCS_PULL = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
DOCS_FILES = "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files"
DOCS_CONTENTS = "https://docs.github.com/rest/repos/contents#get-repository-content"
DOCS_COMMIT = "https://docs.github.com/rest/commits/commits#get-a-commit"
DOCS_REVIEWS = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
DOCS_COMMENTS = "https://docs.github.com/rest/pulls/comments#list-review-comments-on-a-pull-request"

RAW_TYPES = ("application/vnd.github.raw", "application/vnd.github.v3.raw")
DIFF_TYPES = ("application/vnd.github.diff", "application/vnd.github.v3.diff")


def _viewer(request: web.Request) -> Viewer:
    return request.get(VIEWER_KEY) or Viewer(None, None)


def _require_account(request: web.Request, docs: str) -> Account:
    account = _viewer(request).account
    if account is None:
        raise ApiError(401, "Requires authentication", docs)
    return account


def _wants(request: web.Request, media_types: tuple[str, ...]) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return any(media_type in accept for media_type in media_types)


def _repo(request: web.Request, docs: str = DOCS_REPO) -> Repo:
    """The addressed repository; 404 also when it is private to someone else, like GitHub."""
    state = request.app[STATE_KEY]
    repo = state.find_repo(request.match_info["owner"], request.match_info["repo"])
    if repo is None or not state.can_read(repo, _viewer(request).account):
        raise not_found(docs)
    return repo


def _pull(request: web.Request, repo: Repo, docs: str = DOCS_PULL) -> Pull:
    pull = repo.pulls.get(int(request.match_info["number"]))
    if pull is None:
        raise not_found(docs)
    return pull


# --- users ------------------------------------------------------------------


async def get_user(request: web.Request) -> web.Response:
    account = _require_account(request, DOCS_USER)
    return cacheable_json(request, request.app[RENDERER_KEY].user(account, authenticated=True))


async def get_user_emails(request: web.Request) -> web.Response:
    account = _require_account(request, DOCS_EMAILS)
    items, headers = paginate(request, request.app[RENDERER_KEY].emails(account))
    return cacheable_json(request, list(items), headers)


async def get_user_by_login(request: web.Request) -> web.Response:
    account = request.app[STATE_KEY].account(request.match_info["login"])
    if account is None:
        raise not_found("https://docs.github.com/rest/users/users#get-a-user")
    return cacheable_json(request, request.app[RENDERER_KEY].user(account, authenticated=False))


async def get_rate_limit(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    viewer = _viewer(request)
    if viewer.token is not None:
        budget = state.budget(f"token:{viewer.token.value}", state.config.rate_limit)
    else:
        budget = state.budget(
            f"ip:{request.remote or 'unknown'}", state.config.anonymous_rate_limit
        )
    core = {
        "limit": budget.limit,
        "remaining": budget.remaining,
        "reset": int(budget.reset_at),
        "used": min(budget.used, budget.limit),
        "resource": "core",
    }
    return json_body({"resources": {"core": core}, "rate": core})


# --- repositories and pull requests ------------------------------------------


async def get_repo(request: web.Request) -> web.Response:
    repo = _repo(request)
    return cacheable_json(request, request.app[RENDERER_KEY].repo(repo, _viewer(request).account))


async def list_pulls(request: web.Request) -> web.Response:
    repo = _repo(request)
    wanted = request.query.get("state", "open")
    if wanted not in ("open", "closed", "all"):
        raise invalid("state", wanted, 'one of ["open", "closed", "all"]')
    renderer = request.app[RENDERER_KEY]
    viewer = _viewer(request).account
    pulls = sorted(repo.pulls.values(), key=lambda pull: pull.number, reverse=True)
    chosen = [pull for pull in pulls if wanted in ("all", pull.state)]
    items, headers = paginate(request, chosen)
    body = [renderer.pull(repo, pull, viewer, full=False) for pull in items]
    return cacheable_json(request, body, headers)


async def get_pull(request: web.Request) -> web.Response:
    repo = _repo(request, DOCS_PULL)
    pull = _pull(request, repo)
    state = request.app[STATE_KEY]
    if _wants(request, DIFF_TYPES):
        text = git_diff(state.pull_changes(repo, pull))
        return cacheable(request, text.encode(), "application/vnd.github.diff")
    return cacheable_json(
        request, request.app[RENDERER_KEY].pull(repo, pull, _viewer(request).account)
    )


async def list_pull_files(request: web.Request) -> web.Response:
    repo = _repo(request, DOCS_FILES)
    pull = _pull(request, repo, DOCS_FILES)
    renderer = request.app[RENDERER_KEY]
    changes = request.app[STATE_KEY].pull_changes(repo, pull)
    items, headers = paginate(request, changes)
    body = [renderer.file(repo, change, pull.base_sha, pull.head_sha) for change in items]
    return cacheable_json(request, body, headers)


async def list_pull_commits(request: web.Request) -> web.Response:
    repo = _repo(request)
    pull = _pull(request, repo)
    renderer = request.app[RENDERER_KEY]
    items, headers = paginate(request, pull.commits)
    body = [renderer.commit(repo, repo.commits[sha], None) for sha in items]
    return cacheable_json(request, body, headers)


async def get_contents(request: web.Request) -> web.Response:
    repo = _repo(request, DOCS_CONTENTS)
    state = request.app[STATE_KEY]
    renderer = request.app[RENDERER_KEY]
    ref = request.query.get("ref") or repo.default_branch
    commit = state.resolve_ref(repo, ref)
    if commit is None:
        raise ApiError(404, f"No commit found for the ref {ref}", DOCS_CONTENTS)
    path = request.match_info.get("path", "").strip("/")
    text = commit.files.get(path)
    if text is not None:
        data = text.encode()
        if _wants(request, RAW_TYPES):
            return cacheable(request, data, "text/plain", {"X-GitHub-Media-Type": "github.raw"})
        body = renderer.contents_file(repo, path, data, blob_sha(data), ref)
        return cacheable_json(request, body)
    encoded = {name: content.encode() for name, content in commit.files.items()}
    entries = list_directory(encoded, path)
    if entries is None:
        raise not_found(DOCS_CONTENTS)
    listing = [
        renderer.contents_entry(
            repo, entry.path, kind=entry.type, sha=entry.sha, size=entry.size, ref=ref
        )
        for entry in entries
    ]
    return cacheable_json(request, listing)


async def get_commit(request: web.Request) -> web.Response:
    repo = _repo(request, DOCS_COMMIT)
    state = request.app[STATE_KEY]
    ref = request.match_info["ref"]
    commit = state.resolve_ref(repo, ref)
    if commit is None:
        raise ApiError(422, f"No commit found for SHA: {ref}", DOCS_COMMIT)
    changes = state.changes(repo, commit.parents[0], commit.sha) if commit.parents else compare_trees({}, commit.files)
    if _wants(request, DIFF_TYPES):
        return cacheable(request, git_diff(changes).encode(), "application/vnd.github.diff")
    return cacheable_json(request, request.app[RENDERER_KEY].commit(repo, commit, changes))


# --- reviews ----------------------------------------------------------------


async def list_reviews(request: web.Request) -> web.Response:
    repo = _repo(request)
    pull = _pull(request, repo)
    viewer = _viewer(request).account
    renderer = request.app[RENDERER_KEY]
    reviews = [
        review
        for review in request.app[STATE_KEY].pull_reviews(repo, pull.number)
        # A pending review is visible to its author only.
        if review.state != "PENDING"
        or (viewer is not None and viewer.login.lower() == review.user.lower())
    ]
    items, headers = paginate(request, reviews)
    return cacheable_json(request, [renderer.review(repo, review) for review in items], headers)


async def get_review(request: web.Request) -> web.Response:
    repo = _repo(request)
    pull = _pull(request, repo)
    review_id = int(request.match_info["review_id"])
    for review in request.app[STATE_KEY].pull_reviews(repo, pull.number):
        if review.id == review_id:
            return cacheable_json(request, request.app[RENDERER_KEY].review(repo, review))
    raise not_found()


async def create_review(request: web.Request) -> web.Response:
    account = _require_account(request, DOCS_REVIEWS)
    repo = _repo(request, DOCS_REVIEWS)
    pull = _pull(request, repo, DOCS_REVIEWS)
    payload = await read_json_object(request)

    event = payload.get("event")
    if event is not None and event not in REVIEW_EVENTS:
        expected = 'one of ["APPROVE", "REQUEST_CHANGES", "COMMENT"]'
        raise invalid("event", event, expected, DOCS_REVIEWS)
    body = payload.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise invalid("body", body, "a string", DOCS_REVIEWS)
    commit_id = payload.get("commit_id")
    if commit_id is not None and not isinstance(commit_id, str):
        raise invalid("commit_id", commit_id, "a string", DOCS_REVIEWS)
    raw_comments = payload.get("comments", [])
    if raw_comments is None:
        raw_comments = []
    if not isinstance(raw_comments, list):
        raise invalid("comments", raw_comments, "an array", DOCS_REVIEWS)
    comments = [_comment_request(item, index) for index, item in enumerate(raw_comments)]

    try:
        review = request.app[STATE_KEY].create_review(
            repo=repo,
            pull=pull,
            viewer=account,
            body=body,
            event=event,
            commit_id=commit_id,
            comments=comments,
        )
    except Unprocessable as exc:
        raise ApiError(422, exc.message, DOCS_REVIEWS, exc.errors) from None
    return json_body(request.app[RENDERER_KEY].review(repo, review))


def _comment_request(item: object, index: int) -> CommentRequest:
    """Type-check one entry of `comments`, naming the bad field like GitHub's schema errors."""
    where = f"comments/{index}"
    if not isinstance(item, dict):
        raise invalid(where, item, "an object", DOCS_REVIEWS)
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise invalid(f"{where}/path", path, "a string", DOCS_REVIEWS)
    text = item.get("body")
    if not isinstance(text, str):
        raise invalid(f"{where}/body", text, "a string", DOCS_REVIEWS)
    numbers: dict[str, int | None] = {}
    for name in ("line", "start_line", "position"):
        value = item.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise invalid(f"{where}/{name}", value, "an integer", DOCS_REVIEWS)
        if isinstance(value, int) and value < 1:
            raise invalid(f"{where}/{name}", value, "a positive integer", DOCS_REVIEWS)
        numbers[name] = value
    sides: dict[str, str | None] = {}
    for name in ("side", "start_side"):
        value = item.get(name)
        if value is not None and value not in ("LEFT", "RIGHT"):
            raise invalid(f"{where}/{name}", value, 'one of ["LEFT", "RIGHT"]', DOCS_REVIEWS)
        sides[name] = value
    if numbers["start_line"] is not None and numbers["line"] is None:
        raise ApiError(422, "Unprocessable Entity", DOCS_REVIEWS, ["start_line requires line"])
    return CommentRequest(
        path=path,
        body=text,
        line=numbers["line"],
        side=sides["side"] or "RIGHT",
        start_line=numbers["start_line"],
        start_side=sides["start_side"],
        position=numbers["position"],
    )


async def list_review_comments(request: web.Request) -> web.Response:
    repo = _repo(request, DOCS_COMMENTS)
    pull = _pull(request, repo, DOCS_COMMENTS)
    viewer = _viewer(request).account
    renderer = request.app[RENDERER_KEY]
    reviews = request.app[STATE_KEY].pull_reviews(repo, pull.number)
    if "review_id" in request.match_info:
        wanted = int(request.match_info["review_id"])
        reviews = [review for review in reviews if review.id == wanted]
        if not reviews:
            raise not_found(DOCS_COMMENTS)
    comments: list[JSON] = []
    for review in reviews:
        mine = viewer is not None and viewer.login.lower() == review.user.lower()
        if review.state == "PENDING" and not mine:
            continue
        comments.extend(renderer.review_comment(repo, pull, comment) for comment in review.comments)
    items, headers = paginate(request, comments)
    return cacheable_json(request, list(items), headers)


# --- github.com pages the API links to ----------------------------------------


async def get_raw(request: web.Request) -> web.Response:
    """GET /{owner}/{repo}/raw/{ref}/{path}: the raw_url/download_url of files."""
    state = request.app[STATE_KEY]
    repo = state.find_repo(request.match_info["owner"], request.match_info["repo"])
    account: Account | None = None
    credentials = bearer_credentials(request)
    if credentials:
        found = state.token_account(credentials)
        account = found[1] if found else None
    if repo is None or not state.can_read(repo, account):
        raise web.HTTPNotFound()
    # A ref may contain slashes: take the longest prefix that names a commit.
    parts = request.match_info["rest"].split("/")
    for cut in range(len(parts) - 1, 0, -1):
        commit = state.resolve_ref(repo, "/".join(parts[:cut]))
        if commit is not None:
            text = commit.files.get("/".join(parts[cut:]))
            if text is not None:
                return cacheable(request, text.encode(), "text/plain")
    raise web.HTTPNotFound()


async def get_avatar(request: web.Request) -> web.Response:
    """A generated SVG avatar, so avatar_url works without the internet."""
    user_id = request.match_info["id"]
    account = next(
        (a for a in request.app[STATE_KEY].accounts.values() if str(a.id) == user_id), None
    )
    letter = account.login[0].upper() if account else "?"
    hue = int(hashlib.sha256(user_id.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120" viewBox="0 0 120 120">'
        f'<rect width="120" height="120" fill="hsl({hue},55%,55%)"/>'
        '<text x="60" y="78" font-size="56" text-anchor="middle" fill="#fff" '
        f'font-family="sans-serif">{html.escape(letter)}</text></svg>'
    )
    return cacheable(request, svg.encode(), "image/svg+xml")
