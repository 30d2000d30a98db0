"""Sample users, organisations, repositories and pull requests the stand-in starts with."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AccountSeed:
    """A user or organisation account."""

    login: str
    id: int
    type: str = "User"  # or "Organization"
    name: str | None = None
    # The public profile email (None when the user keeps it private).
    public_email: str | None = None
    # Every address on the account; the first is primary.
    emails: tuple[str, ...] = ()
    company: str | None = None
    location: str | None = None
    bio: str | None = None
    created_at: str = "2011-01-25T18:44:36Z"


@dataclass(frozen=True)
class CommitSeed:
    """A commit: its whole tree (path to text) and the branch it sits on."""

    message: str
    author: str
    date: str
    files: dict[str, str]
    # Index into RepoSeed.commits of the parent; None for a root commit.
    parent: int | None = None


@dataclass(frozen=True)
class PullSeed:
    """An open pull request from head_ref onto base_ref."""

    number: int
    title: str
    body: str
    author: str
    base_ref: str
    head_ref: str
    created_at: str


@dataclass(frozen=True)
class RepoSeed:
    """A repository with its commit graph, branches and pull requests."""

    owner: str
    name: str
    id: int
    description: str
    private: bool
    created_at: str
    commits: tuple[CommitSeed, ...]
    # Branch name to index into commits.
    branches: dict[str, int]
    pulls: tuple[PullSeed, ...] = ()
    default_branch: str = "main"
    language: str | None = "Python"
    # Who can see a private repository and push to any repository; everyone
    # else gets read access to public ones only.
    collaborators: frozenset[str] = field(default_factory=frozenset)


# octocat's id is GitHub's real one, so Tandem code written against real
# responses recognises it.
ACCOUNTS: tuple[AccountSeed, ...] = (
    AccountSeed(
        login="octocat",
        id=583231,
        name="The Octocat",
        public_email="octocat@github.com",
        emails=("octocat@github.com",),
        company="@github",
        location="San Francisco",
        created_at="2011-01-25T18:44:36Z",
    ),
    AccountSeed(
        login="hubot",
        id=480938,
        name="Hubot",
        # hubot keeps its email private: /user says null, /user/emails knows better.
        public_email=None,
        emails=("hubot@example.com",),
        bio="I am a chat bot.",
        created_at="2010-11-12T07:42:17Z",
    ),
    AccountSeed(
        login="monalisa",
        id=2154201,
        name="Mona Lisa Octocat",
        public_email="monalisa@example.com",
        emails=("monalisa@example.com", "mona@example.org"),
        location="Paris",
        created_at="2012-03-04T10:20:30Z",
    ),
    AccountSeed(
        login="tandem-demo",
        id=170011001,
        type="Organization",
        name="Tandem Demo",
        bio="Sample repositories for trying Tandem locally.",
        created_at="2024-05-01T12:00:00Z",
    ),
)

# Accounts created on the fly by signing in with a new login get an id derived from the
# login (store.new_account_id) in [NEW_ACCOUNT_IDS_FROM, NEW_ACCOUNT_IDS_TO): far above
# every seeded id (and every id GitHub has handed out), below JavaScript's 2**53.
NEW_ACCOUNT_IDS_FROM = 2**40
NEW_ACCOUNT_IDS_TO = 2**53


# --- tandem-demo/hello-api -------------------------------------------------

HELLO_README_BASE = """\
# hello-api

A tiny HTTP API that says hello and lists the users it knows about.

## Running

```sh
pip install -r requirements.txt
flask --app app.main run
```

## Endpoints

| method | path | answer |
| --- | --- | --- |
| GET | `/health` | `{"status": "ok"}` |
| GET | `/hello?name=NAME` | `{"message": "Hello, NAME!"}` |
| GET | `/users` | every user, oldest first |

## Seeding

`python scripts/seed.py` fills `hello.db` with a few sample users.
"""

HELLO_README_HEAD = """\
# hello-api

A tiny HTTP API that says hello and lists the users it knows about.

## Running

```sh
pip install -r requirements.txt
flask --app app.main run
```

Settings come from the environment (see `app/config.py`):
`HELLO_DATABASE_PATH` (default `hello.db`), `HELLO_DEBUG` and
`HELLO_LOOKUP_LIMIT`.

## Endpoints

| method | path | answer |
| --- | --- | --- |
| GET | `/health` | `{"status": "ok"}` |
| GET | `/hello?name=NAME` | `{"message": "Hello, NAME!"}` |
| GET | `/users` | every user, oldest first |
| GET | `/users/lookup?id=ID` | one user by id, `login` or `email` |

`/users/lookup` also takes `filter`, an expression such as
`{"name": "Ada"}`, and answers every user that matches it.

## Seeding

`python scripts/seed_users.py` fills `hello.db` with a few sample users.
"""

HELLO_REQUIREMENTS = """\
flask>=3.0,<4
pytest>=8.0
"""

HELLO_GITIGNORE = """\
__pycache__/
*.pyc
.venv/
hello.db
"""

HELLO_INIT = '''\
"""hello-api: a tiny HTTP API that says hello."""
'''

HELLO_MAIN_BASE = '''\
"""HTTP entry point for hello-api."""

from dataclasses import asdict

from flask import Flask, jsonify, request

from app import users

app = Flask(__name__)


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/hello")
def hello():
    name = request.args.get("name", "world")
    return jsonify(message=f"Hello, {name}!")


@app.get("/users")
def list_all():
    conn = users.connect()
    try:
        return jsonify([asdict(user) for user in users.list_users(conn)])
    finally:
        conn.close()
'''

HELLO_MAIN_HEAD = '''\
"""HTTP entry point for hello-api."""

from dataclasses import asdict

from flask import Flask, jsonify, request

from app import users
from app.config import Settings

settings = Settings.from_env()
app = Flask(__name__)
app.config["DEBUG"] = settings.debug


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/hello")
def hello():
    name = request.args.get("name", "world")
    return jsonify(message=f"Hello, {name}!")


@app.get("/users")
def list_all():
    conn = users.connect(settings.database_path)
    try:
        return jsonify([asdict(user) for user in users.list_users(conn)])
    finally:
        conn.close()


@app.get("/users/lookup")
def lookup():
    conn = users.connect(settings.database_path)
    try:
        status, body = users.lookup(conn, request.args.to_dict())
        return jsonify(body), status
    finally:
        conn.close()
'''

HELLO_USERS_BASE = '''\
"""User storage and lookup helpers for hello-api."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    id: int
    login: str
    name: str
    email: str | None = None


def connect(path: str = "hello.db") -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def get_user(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(
        "SELECT id, login, name, email FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    if row is None:
        return None
    return User(row["id"], row["login"], row["name"], row["email"])


def list_users(conn: sqlite3.Connection, limit: int = 100) -> list[User]:
    rows = conn.execute(
        "SELECT id, login, name, email FROM users ORDER BY id LIMIT ?", (limit,)
    ).fetchall()
    return [User(r["id"], r["login"], r["name"], r["email"]) for r in rows]
'''

# The head version deliberately carries problems a reviewer or linter should
# flag (listed with their lines in HELLO_USERS_PROBLEMS); all are added lines,
# so review comments on them are inside the diff.
HELLO_USERS_HEAD = '''\
"""User storage and lookup helpers for hello-api."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass

DB_PASSWORD = "hunter2"


@dataclass(frozen=True)
class User:
    id: int
    login: str
    name: str
    email: str | None = None


def connect(path: str = "hello.db") -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def get_user(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(
        "SELECT id, login, name, email FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    if row is None:
        return None
    return User(row["id"], row["login"], row["name"], row["email"])


def list_users(conn: sqlite3.Connection, limit: int = 100) -> list[User]:
    rows = conn.execute(
        "SELECT id, login, name, email FROM users ORDER BY id LIMIT ?", (limit,)
    ).fetchall()
    return [User(r["id"], r["login"], r["name"], r["email"]) for r in rows]


def search_users(conn: sqlite3.Connection, text: str, seen=[]) -> list[User]:
    rows = conn.execute(
        f"SELECT id, login, name, email FROM users WHERE name LIKE '%{text}%'"
    ).fetchall()
    for r in rows:
        seen.append(r["id"])
    return [User(r["id"], r["login"], r["name"], r["email"]) for r in rows]


def parse_filter(raw: str) -> dict:
    return eval(raw)


def lookup(conn: sqlite3.Connection, params: dict) -> tuple[int, dict]:
    try:
        if "id" in params:
            raw_id = params["id"]
            if not raw_id:
                return 400, {"error": "id is empty"}
            if not raw_id.isdigit():
                return 400, {"error": "id must be a number"}
            user = get_user(conn, int(raw_id))
            if user is None:
                return 404, {"error": "no such user"}
            return 200, asdict(user)
        elif "login" in params:
            login = params["login"].strip()
            if len(login) == 0:
                return 400, {"error": "login is empty"}
            elif len(login) > 39:
                return 400, {"error": "login is too long"}
            for user in list_users(conn, limit=1000):
                if user.login == login:
                    return 200, asdict(user)
                elif user.login.lower() == login.lower():
                    return 200, asdict(user)
            return 404, {"error": "no such user"}
        elif "email" in params:
            email = params["email"]
            if "@" not in email:
                return 400, {"error": "invalid email"}
            for user in list_users(conn, limit=1000):
                if user.email and user.email.lower() == email.lower():
                    return 200, asdict(user)
            return 404, {"error": "no such user"}
        elif "filter" in params:
            criteria = parse_filter(params["filter"])
            matches = []
            for user in list_users(conn, limit=1000):
                if all(getattr(user, key, None) == value for key, value in criteria.items()):
                    matches.append(asdict(user))
            if not matches:
                return 404, {"error": "no such user"}
            return 200, {"users": matches}
        else:
            return 400, {"error": "give one of id, login, email or filter"}
    except:
        return 500, {"error": "lookup failed"}
'''

# Problem name to (first line, last line) in HELLO_USERS_HEAD, 1-based; tests
# check these against the text so they cannot drift.
HELLO_USERS_PROBLEMS: dict[str, tuple[int, int]] = {
    "unused-import": (5, 5),  # import os
    "hard-coded-password": (9, 9),  # DB_PASSWORD = "hunter2"
    "mutable-default-argument": (42, 42),  # seen=[]
    "sql-injection": (44, 44),  # f-string SQL with user text
    "eval-on-user-input": (52, 52),  # eval(raw), raw is the filter query parameter
    "complex-function": (55, 99),  # lookup(): 20+ branches, cyclomatic complexity ~21
    "bare-except": (98, 98),  # except:
}

HELLO_CONFIG_HEAD = '''\
"""Settings for hello-api, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    database_path: str = "hello.db"
    debug: bool = False
    lookup_limit: int = 1000

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_path=os.environ.get("HELLO_DATABASE_PATH", "hello.db"),
            debug=os.environ.get("HELLO_DEBUG", "0") == "1",
            lookup_limit=int(os.environ.get("HELLO_LOOKUP_LIMIT", "1000")),
        )
'''

HELLO_LEGACY_BASE = '''\
"""Old lookup helper kept from the prototype; superseded by users.get_user."""

import sqlite3


def find(user_id):
    conn = sqlite3.connect("hello.db")
    row = conn.execute("SELECT login FROM users WHERE id = ?", (user_id,)).fetchone()
    conn.close()
    return row[0] if row else None
'''

HELLO_SEED_BASE = '''\
"""Fill hello.db with a few sample users."""

import sqlite3

SAMPLE_USERS = [
    (1, "ada", "Ada Lovelace", "ada@example.com"),
    (2, "grace", "Grace Hopper", "grace@example.com"),
    (3, "linus", "Linus Torvalds", None),
]


def main(path="hello.db"):
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS users ("
        "id INTEGER PRIMARY KEY, login TEXT UNIQUE, name TEXT, email TEXT)"
    )
    conn.executemany("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)", SAMPLE_USERS)
    conn.commit()
    conn.close()


if __name__ == "__main__":
    main()
'''

HELLO_SEED_HEAD = HELLO_SEED_BASE.replace(
    '    (3, "linus", "Linus Torvalds", None),\n',
    '    (3, "linus", "Linus Torvalds", None),\n    (4, "margaret", "Margaret Hamilton", None),\n',
)

HELLO_TESTS = '''\
"""Tests of the user helpers."""

import sqlite3

from app import users


def make_db():
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT, name TEXT, email TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada', 'Ada Lovelace', 'ada@example.com')")
    return conn


def test_get_user_finds_by_id():
    assert users.get_user(make_db(), 1).login == "ada"


def test_get_user_answers_none_for_unknown_id():
    assert users.get_user(make_db(), 2) is None
'''

_HELLO_BASE_TREE: dict[str, str] = {
    ".gitignore": HELLO_GITIGNORE,
    "README.md": HELLO_README_BASE,
    "app/__init__.py": HELLO_INIT,
    "app/legacy_lookup.py": HELLO_LEGACY_BASE,
    "app/main.py": HELLO_MAIN_BASE,
    "app/users.py": HELLO_USERS_BASE,
    "requirements.txt": HELLO_REQUIREMENTS,
    "scripts/seed.py": HELLO_SEED_BASE,
    "tests/test_users.py": HELLO_TESTS,
}

_HELLO_INITIAL_TREE = {
    path: text
    for path, text in _HELLO_BASE_TREE.items()
    if path not in ("app/legacy_lookup.py", "tests/test_users.py")
}

_HELLO_HEAD_TREE: dict[str, str] = {
    **{
        path: text
        for path, text in _HELLO_BASE_TREE.items()
        if path not in ("app/legacy_lookup.py", "scripts/seed.py")
    },
    "README.md": HELLO_README_HEAD,
    "app/config.py": HELLO_CONFIG_HEAD,
    "app/main.py": HELLO_MAIN_HEAD,
    "app/users.py": HELLO_USERS_HEAD,
    "scripts/seed_users.py": HELLO_SEED_HEAD,
}

HELLO_API = RepoSeed(
    owner="tandem-demo",
    name="hello-api",
    id=812000101,
    description="A tiny HTTP API that says hello (sample repository for Tandem)",
    private=False,
    created_at="2025-01-06T09:00:00Z",
    commits=(
        CommitSeed(
            message="Initial commit",
            author="octocat",
            date="2025-01-06T09:00:00Z",
            files=_HELLO_INITIAL_TREE,
        ),
        CommitSeed(
            message="Add user helpers and their tests",
            author="hubot",
            date="2025-01-06T16:12:00Z",
            files=_HELLO_BASE_TREE,
            parent=0,
        ),
        CommitSeed(
            message="Add user lookup endpoint\n\nLook users up by id, login, email or a filter.",
            author="octocat",
            date="2025-01-07T14:30:00Z",
            files=_HELLO_HEAD_TREE,
            parent=1,
        ),
    ),
    branches={"main": 1, "feature/user-lookup": 2},
    pulls=(
        PullSeed(
            number=1,
            title="Add user lookup endpoint",
            body=(
                "Adds `GET /users/lookup` so clients can find a user by id, login, "
                "email or a filter expression.\n\n"
                "- settings move to `app/config.py`\n"
                "- the prototype `legacy_lookup.py` goes away\n"
                "- the seed script is renamed to `seed_users.py`"
            ),
            author="octocat",
            base_ref="main",
            head_ref="feature/user-lookup",
            created_at="2025-01-07T14:35:00Z",
        ),
    ),
    collaborators=frozenset({"octocat", "hubot", "monalisa"}),
)


# --- tandem-demo/secret-sauce (private) -------------------------------------

SAUCE_README = """\
# secret-sauce

Private: the recipe behind the hello-api's friendliness.
"""

SAUCE_BASE = '''\
"""The secret sauce."""

SPICE_RATIO = 0.25


def season(text: str) -> str:
    return text + "!" * round(len(text) * SPICE_RATIO)
'''

SAUCE_HEAD = SAUCE_BASE.replace("SPICE_RATIO = 0.25", "SPICE_RATIO = 0.3")

SECRET_SAUCE = RepoSeed(
    owner="tandem-demo",
    name="secret-sauce",
    id=812000102,
    description="Private sample repository, visible to monalisa only",
    private=True,
    created_at="2025-02-01T08:00:00Z",
    commits=(
        CommitSeed(
            message="Write the recipe down",
            author="monalisa",
            date="2025-02-01T08:00:00Z",
            files={"README.md": SAUCE_README, "sauce/recipe.py": SAUCE_BASE},
        ),
        CommitSeed(
            message="More spice",
            author="monalisa",
            date="2025-02-02T10:00:00Z",
            files={"README.md": SAUCE_README, "sauce/recipe.py": SAUCE_HEAD},
            parent=0,
        ),
    ),
    branches={"main": 0, "more-spice": 1},
    pulls=(
        PullSeed(
            number=1,
            title="More spice",
            body="Raise the spice ratio a little.",
            author="monalisa",
            base_ref="main",
            head_ref="more-spice",
            created_at="2025-02-02T10:05:00Z",
        ),
    ),
    collaborators=frozenset({"monalisa"}),
)

REPOSITORIES: tuple[RepoSeed, ...] = (HELLO_API, SECRET_SAUCE)
