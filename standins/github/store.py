"""In-memory state of the stand-in (accounts, tokens, repositories, reviews) and its rules."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from standins.github import data
from standins.github.config import StandinConfig
from standins.github.diffs import FileChange, compare_trees, diff_hunk, find_line, parse_patch
from standins.github.gitobjects import commit_sha, tree_sha

# GitHub logins: alphanumerics and single inner hyphens, at most 39 characters.
LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_TOKEN_ALPHABET = string.ascii_letters + string.digits
# A pushed commit is dated a minute after its parent so that SHAs stay deterministic.
_PUSH_SECONDS = 60
# A review's `event` and the `state` it leaves the review in.
REVIEW_EVENTS = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}


class Unprocessable(Exception):
    """A request GitHub would answer with 422 and these `errors`."""

    def __init__(self, errors: list[str], message: str = "Unprocessable Entity") -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class OAuthError(Exception):
    """A token exchange GitHub refuses: answered 200 with error fields, as GitHub does."""

    def __init__(self, error: str, description: str, anchor: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.uri = (
            "https://docs.github.com/apps/managing-oauth-apps/"
            f"troubleshooting-oauth-app-access-token-request-errors/#{anchor}"
        )


def iso(epoch: float) -> str:
    """RFC 3339 UTC with whole seconds, GitHub's timestamp format."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(timestamp: str) -> int:
    return int(datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def node_id(kind: str, number: int) -> str:
    """GitHub's legacy global node id, e.g. MDQ6VXNlcjU4MzIzMQ== for octocat."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


@dataclass
class Account:
    """A user or organisation."""

    login: str
    id: int
    type: str
    name: str | None
    public_email: str | None
    emails: list[str]
    company: str | None
    location: str | None
    bio: str | None
    created_at: str


@dataclass
class Token:
    """An OAuth access token and whose it is."""

    value: str
    login: str
    scopes: list[str]
    # The authorization code it was issued for, so a replayed code can revoke it.
    code: str | None


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str
    client_id: str
    login: str
    redirect_uri: str | None
    scopes: list[str]
    challenge: str | None
    expires_at: float
    used: bool = False


@dataclass(frozen=True)
class Commit:
    """A commit with its whole tree."""

    sha: str
    tree_sha: str
    files: Mapping[str, str]
    parents: tuple[str, ...]
    message: str
    author: str
    date: str


@dataclass
class Pull:
    """A pull request."""

    number: int
    id: int
    title: str
    body: str
    author: str
    base_ref: str
    head_ref: str
    base_sha: str
    head_sha: str
    created_at: str
    updated_at: str
    # Every head the pull request has had, oldest first: the PR's commits.
    commits: list[str]
    state: str = "open"


@dataclass
class Repo:
    """A repository and everything in it."""

    id: int
    owner: str
    name: str
    description: str
    private: bool
    created_at: str
    pushed_at: str
    default_branch: str
    language: str | None
    collaborators: set[str]
    commits: dict[str, Commit]
    branches: dict[str, str]
    pulls: dict[int, Pull]

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class ReviewComment:
    """An inline comment that belongs to a review."""

    id: int
    review_id: int
    pull_number: int
    path: str
    body: str
    user: str
    commit_id: str
    line: int | None
    side: str | None
    start_line: int | None
    start_side: str | None
    position: int | None
    diff_hunk: str
    created_at: str


@dataclass
class Review:
    """A pull request review."""

    id: int
    pull_number: int
    user: str
    body: str
    state: str
    commit_id: str
    submitted_at: str | None
    comments: list[ReviewComment] = field(default_factory=list)


@dataclass(frozen=True)
class CommentRequest:
    """One inline comment of a review being created, already type-checked."""

    path: str
    body: str
    line: int | None = None
    side: str = "RIGHT"
    start_line: int | None = None
    start_side: str | None = None
    position: int | None = None


@dataclass
class Budget:
    """A rate-limit window: GitHub's per-hour request allowance."""

    limit: int
    used: int
    reset_at: float

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclass
class Faults:
    """Failures injected through /_standin/faults."""

    latency_ms: int = 0
    status: int | None = None
    rate_limit_remaining: int | None = None
    forbidden_repos: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, object]:
        return {
            "latency_ms": self.latency_ms,
            "status": self.status,
            "rate_limit_remaining": self.rate_limit_remaining,
            "forbidden_repos": sorted(self.forbidden_repos),
        }


@dataclass
class Delivery:
    """A webhook delivery attempt, kept for /_standin/deliveries."""

    id: str
    event: str
    action: str
    url: str | None
    status: int | None
    error: str | None
    delivered_at: str


class State:
    """Everything the stand-in knows; one per application, reset by /_standin/reset."""

    def __init__(self, config: StandinConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        # Shifted by /_standin/clock so tests can expire codes without sleeping.
        self.clock_offset = 0.0
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, AuthCode] = {}
        self.repos: dict[str, Repo] = {}
        self.reviews: dict[tuple[int, int], list[Review]] = {}
        self.budgets: dict[str, Budget] = {}
        self.faults = Faults()
        self.deliveries: list[Delivery] = []
        # Not reset with the sample data: Tandem may keep ids of published reviews,
        # and GitHub never hands out an id twice. Nothing is kept on disk, so the
        # counters start at the wall clock in microseconds: a restarted stand-in
        # continues above every id an earlier run handed out (unless that run made more
        # than a million a second), and stays below 2**53 until the year 2255.
        first = int(time.time() * 1_000_000)
        self._next_id: dict[str, int] = {"review": first, "comment": first}
        self._changes_cache: dict[tuple[str, str], list[FileChange]] = {}
        self.reset()

    # --- lifecycle -----------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self.clock_offset

    def reset(self) -> None:
        """Restore the sample data, faults and rate limits.

        Tokens and accounts created since survive, so clients stay signed in
        across test cases.
        """
        for seed in data.ACCOUNTS:
            self.accounts[seed.login.lower()] = Account(
                login=seed.login,
                id=seed.id,
                type=seed.type,
                name=seed.name,
                public_email=seed.public_email,
                emails=list(seed.emails),
                company=seed.company,
                location=seed.location,
                bio=seed.bio,
                created_at=seed.created_at,
            )
        self.repos = {}
        for repo_seed in data.REPOSITORIES:
            repo = _build_repo(repo_seed)
            self.repos[repo.full_name.lower()] = repo
        self.reviews = {}
        self.budgets = {}
        self.faults = Faults()
        self.deliveries = []
        self._changes_cache = {}

    def new_id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] = value + 1
        return value

    # --- accounts and OAuth --------------------------------------------------

    def account(self, login: str) -> Account | None:
        return self.accounts.get(login.lower())

    def sign_in(self, login: str) -> Account:
        """The account for login, created on the fly when it is new."""
        existing = self.account(login)
        if existing is not None:
            return existing
        account = Account(
            login=login,
            id=new_account_id(login),
            type="User",
            name=None,
            public_email=None,
            emails=[f"{login.lower()}@example.com"],
            company=None,
            location=None,
            bio=None,
            created_at=iso(self.now()),
        )
        self.accounts[login.lower()] = account
        return account

    def issue_code(
        self,
        login: str,
        redirect_uri: str | None,
        scopes: list[str],
        challenge: str | None,
    ) -> str:
        code = secrets.token_hex(10)  # GitHub's codes are 20 hex characters
        self.codes[code] = AuthCode(
            code=code,
            client_id=self.config.client_id,
            login=login,
            redirect_uri=redirect_uri,
            scopes=scopes,
            challenge=challenge,
            expires_at=self.now() + self.config.code_ttl,
        )
        return code

    def exchange_code(
        self,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str | None,
        verifier: str | None,
    ) -> Token:
        """Trade a code for a token, checking the client, the code and PKCE like GitHub."""
        if not (
            secrets.compare_digest(client_id.encode(), self.config.client_id.encode())
            and secrets.compare_digest(client_secret.encode(), self.config.client_secret.encode())
        ):
            raise OAuthError(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                "incorrect-client-credentials",
            )
        bad_code = OAuthError(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
            "bad-verification-code",
        )
        grant = self.codes.get(code)
        if grant is None or grant.client_id != client_id:
            raise bad_code
        if grant.used:
            # RFC 6749 4.1.2: a replayed code revokes what it was exchanged for.
            self.revoke_tokens_of_code(code)
            raise bad_code
        # Spent on any attempt, so a wrong verifier cannot be retried until it fits.
        grant.used = True
        if self.now() >= grant.expires_at:
            raise bad_code
        if redirect_uri and grant.redirect_uri and redirect_uri != grant.redirect_uri:
            raise OAuthError(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                "redirect-uri-mismatch2",
            )
        if not pkce_matches(grant.challenge, verifier):
            raise bad_code
        token = Token(value=new_token(), login=grant.login, scopes=grant.scopes, code=code)
        self.tokens[token.value] = token
        return token

    def revoke_tokens_of_code(self, code: str) -> None:
        for value in [v for v, token in self.tokens.items() if token.code == code]:
            del self.tokens[value]

    def mint_token(self, login: str, scopes: list[str]) -> Token:
        """A token without the web flow, for tests and demos."""
        account = self.sign_in(login)
        token = Token(value=new_token(), login=account.login, scopes=scopes, code=None)
        self.tokens[token.value] = token
        return token

    def token_account(self, value: str) -> tuple[Token, Account] | None:
        token = self.tokens.get(value)
        if token is None:
            return None
        account = self.account(token.login)
        return None if account is None else (token, account)

    # --- rate limits ---------------------------------------------------------

    def budget(self, key: str, limit: int) -> Budget:
        """The current window for key, opening a fresh one when the last has run out."""
        now = self.now()
        budget = self.budgets.get(key)
        if budget is None or now >= budget.reset_at:
            used = 0
            if self.faults.rate_limit_remaining is not None:
                used = max(limit - self.faults.rate_limit_remaining, 0)
            budget = Budget(limit=limit, used=used, reset_at=now + 3600)
            self.budgets[key] = budget
        return budget

    def set_all_remaining(self, remaining: int | None) -> None:
        """Apply the rate_limit_remaining fault to every window (None: refill them)."""
        for budget in self.budgets.values():
            budget.used = 0 if remaining is None else max(budget.limit - remaining, 0)

    # --- repositories --------------------------------------------------------

    def find_repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def can_read(self, repo: Repo, viewer: Account | None) -> bool:
        if not repo.private:
            return True
        return viewer is not None and viewer.login.lower() in _lowered(repo.collaborators)

    def can_push(self, repo: Repo, viewer: Account | None) -> bool:
        return viewer is not None and viewer.login.lower() in _lowered(repo.collaborators)

    def resolve_ref(self, repo: Repo, ref: str) -> Commit | None:
        """A branch name, refs/heads/ name, full SHA or unique abbreviated SHA."""
        name = ref.removeprefix("refs/heads/")
        if name in repo.branches:
            return repo.commits[repo.branches[name]]
        lowered = ref.lower()
        if lowered in repo.commits:
            return repo.commits[lowered]
        if 4 <= len(lowered) < 40 and all(c in string.hexdigits for c in lowered):
            matches = [sha for sha in repo.commits if sha.startswith(lowered)]
            if len(matches) == 1:
                return repo.commits[matches[0]]
        return None

    def changes(self, repo: Repo, base_sha: str, head_sha: str) -> list[FileChange]:
        """Files changed from base to head; cached since both commits are immutable."""
        key = (base_sha, head_sha)
        if key not in self._changes_cache:
            base, head = repo.commits[base_sha], repo.commits[head_sha]
            self._changes_cache[key] = compare_trees(base.files, head.files)
        return self._changes_cache[key]

    def pull_changes(self, repo: Repo, pull: Pull, head_sha: str | None = None) -> list[FileChange]:
        return self.changes(repo, pull.base_sha, head_sha or pull.head_sha)

    def push(
        self, repo: Repo, pull: Pull, updates: Mapping[str, str | None], message: str, sender: str
    ) -> tuple[str, str]:
        """Commit updates (None deletes a path) on the pull request's head; (before, after)."""
        if pull.state != "open":
            raise Unprocessable([f"Pull request #{pull.number} is {pull.state}"])
        head = repo.commits[pull.head_sha]
        files = dict(head.files)
        for path, content in updates.items():
            if content is None:
                if path not in files:
                    raise Unprocessable([f"{path} does not exist at {head.sha}"])
                del files[path]
            else:
                files[path] = content
        if not files:
            raise Unprocessable(["A commit cannot remove every file"])
        directories = {path.rsplit("/", 1)[0] for path in files if "/" in path}
        for directory in directories:
            parts = directory.split("/")
            for depth in range(1, len(parts) + 1):
                prefix = "/".join(parts[:depth])
                if prefix in files:
                    raise Unprocessable([f"{prefix} is both a file and a directory"])
        epoch = epoch_of(head.date) + _PUSH_SECONDS
        commit = _make_commit(files, (head.sha,), message, sender, epoch)
        repo.commits[commit.sha] = commit
        repo.branches[pull.head_ref] = commit.sha
        repo.pushed_at = iso(self.now())
        pull.head_sha = commit.sha
        pull.commits.append(commit.sha)
        pull.updated_at = iso(self.now())
        return head.sha, commit.sha

    # --- reviews -------------------------------------------------------------

    def pull_reviews(self, repo: Repo, number: int) -> list[Review]:
        return self.reviews.setdefault((repo.id, number), [])

    def create_review(
        self,
        *,
        repo: Repo,
        pull: Pull,
        viewer: Account,
        body: str,
        event: str | None,
        commit_id: str | None,
        comments: list[CommentRequest],
    ) -> Review:
        """Validate a review like GitHub does and store it."""
        errors: list[str] = []
        if event is not None and viewer.login.lower() == pull.author.lower():
            if event == "APPROVE":
                errors.append("Can not approve your own pull request")
            elif event == "REQUEST_CHANGES":
                errors.append("Can not request changes on your own pull request")
        if event == "REQUEST_CHANGES" and not body.strip():
            errors.append("Body is required when using REQUEST_CHANGES event")
        if event == "COMMENT" and not body.strip() and not comments:
            errors.append("Body is required when using COMMENT event")
        commit = commit_id or pull.head_sha
        if commit not in pull.commits:
            errors.append(f"No commit found for SHA: {commit}")
        if errors:
            raise Unprocessable(errors)

        changes = {change.filename: change for change in self.pull_changes(repo, pull, commit)}
        # Every comment is checked before anything is stored or any id is spent.
        placed = [(request, _place_comment(changes, request)) for request in comments]

        review = Review(
            id=self.new_id("review"),
            pull_number=pull.number,
            user=viewer.login,
            body=body,
            state=REVIEW_EVENTS[event] if event is not None else "PENDING",
            commit_id=commit,
            submitted_at=iso(self.now()) if event is not None else None,
        )
        for request, place in placed:
            review.comments.append(
                ReviewComment(
                    id=self.new_id("comment"),
                    review_id=review.id,
                    pull_number=review.pull_number,
                    path=request.path,
                    body=request.body,
                    user=review.user,
                    commit_id=review.commit_id,
                    line=place.line,
                    side=place.side,
                    start_line=request.start_line,
                    start_side=place.start_side,
                    position=place.position,
                    diff_hunk=place.diff_hunk,
                    created_at=iso(self.now()),
                )
            )
        self.pull_reviews(repo, pull.number).append(review)
        return review


@dataclass(frozen=True)
class _Placement:
    """Where in a file's diff a review comment lands."""

    line: int | None
    side: str
    start_side: str | None
    position: int
    diff_hunk: str


_OUTSIDE_DIFF = (
    "Pull request review thread line must be part of the diff and "
    "Pull request review thread diff hunk can't be blank"
)


def _place_comment(changes: Mapping[str, FileChange], request: CommentRequest) -> _Placement:
    """Locate a comment in the diff, refusing (422) lines the diff does not show, as GitHub."""
    change = changes.get(request.path)
    if change is None:
        raise Unprocessable(["Path could not be resolved"])
    lines = parse_patch(change.patch)
    if request.line is None and request.position is not None:
        # The legacy addressing: lines below the first hunk header.
        by_position = [pl for pl in lines if pl.position == request.position]
        if not by_position or by_position[0].kind not in "+- ":
            raise Unprocessable([_OUTSIDE_DIFF])
        located = by_position[0]
        side = "LEFT" if located.kind == "-" else "RIGHT"
        line = located.old_line if side == "LEFT" else located.new_line
    elif request.line is not None:
        side, line = request.side, request.line
        found = find_line(lines, line, side)
        if found is None:
            raise Unprocessable([_OUTSIDE_DIFF])
        located = found
    else:
        raise Unprocessable(["Line could not be resolved"])

    start_side: str | None = None
    if request.start_line is not None:
        start_side = request.start_side or side
        start = find_line(lines, request.start_line, start_side)
        if start is None or start.hunk != located.hunk:
            raise Unprocessable(["Start line must be part of the same hunk as the line."])
        if start.position >= located.position:
            raise Unprocessable(["start_line must precede the end line."])
    return _Placement(
        line=line,
        side=side,
        start_side=start_side,
        position=located.position,
        diff_hunk=diff_hunk(change.patch, located.position),
    )


def new_account_id(login: str) -> int:
    """The id of a login signing in for the first time: the same on every run, unique to it.

    The stand-in keeps no state on disk, and Tandem keys users on GitHub's id, so a
    counter in memory would give a newcomer after a restart the id (and so the Tandem
    account) of someone who signed in before it. Derived from the login instead
    (case-insensitively, as GitHub treats logins), the same login is always the same
    person. Two logins share an id only by chance within a range of about 2**53 (for
    10,000 distinct logins, a chance of about one in 200 million).
    """
    digest = hashlib.sha256(b"standin-account:" + login.lower().encode()).digest()
    span = data.NEW_ACCOUNT_IDS_TO - data.NEW_ACCOUNT_IDS_FROM
    return data.NEW_ACCOUNT_IDS_FROM + int.from_bytes(digest[:8], "big") % span


def new_token() -> str:
    """gho_ plus 36 alphanumerics, the shape of GitHub's OAuth access tokens."""
    return "gho_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def pkce_matches(challenge: str | None, verifier: str | None) -> bool:
    """RFC 7636 S256 check; a verifier without a stored challenge is refused too (OAuth 2.1)."""
    if challenge is None:
        return verifier is None
    if verifier is None or not _VERIFIER.match(verifier):
        return False
    return secrets.compare_digest(s256(verifier), challenge)


def _lowered(logins: set[str]) -> set[str]:
    return {login.lower() for login in logins}


def _make_commit(
    files: Mapping[str, str], parents: tuple[str, ...], message: str, author: str, epoch: int
) -> Commit:
    encoded = {path: text.encode() for path, text in files.items()}
    tree = tree_sha(encoded)
    sha = commit_sha(
        tree=tree,
        parents=list(parents),
        author=author,
        email=f"{author}@users.noreply.github.com",
        epoch=epoch,
        message=message,
    )
    return Commit(
        sha=sha,
        tree_sha=tree,
        files=dict(files),
        parents=parents,
        message=message,
        author=author,
        date=iso(epoch),
    )


def _build_repo(seed: data.RepoSeed) -> Repo:
    shas: list[str] = []
    commits: dict[str, Commit] = {}
    for commit_seed in seed.commits:
        parents = () if commit_seed.parent is None else (shas[commit_seed.parent],)
        commit = _make_commit(
            commit_seed.files,
            parents,
            commit_seed.message,
            commit_seed.author,
            epoch_of(commit_seed.date),
        )
        shas.append(commit.sha)
        commits[commit.sha] = commit
    branches = {name: shas[index] for name, index in seed.branches.items()}
    pulls: dict[int, Pull] = {}
    for offset, pull_seed in enumerate(seed.pulls):
        head = branches[pull_seed.head_ref]
        pulls[pull_seed.number] = Pull(
            number=pull_seed.number,
            id=seed.id * 10 + offset,
            title=pull_seed.title,
            body=pull_seed.body,
            author=pull_seed.author,
            base_ref=pull_seed.base_ref,
            head_ref=pull_seed.head_ref,
            base_sha=branches[pull_seed.base_ref],
            head_sha=head,
            created_at=pull_seed.created_at,
            updated_at=pull_seed.created_at,
            commits=[head],
        )
    last_date = max(commit.date for commit in commits.values())
    return Repo(
        id=seed.id,
        owner=seed.owner,
        name=seed.name,
        description=seed.description,
        private=seed.private,
        created_at=seed.created_at,
        pushed_at=last_date,
        default_branch=seed.default_branch,
        language=seed.language,
        collaborators=set(seed.collaborators),
        commits=commits,
        branches=branches,
        pulls=pulls,
    )
