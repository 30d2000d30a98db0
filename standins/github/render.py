"""JSON shapes of GitHub's REST API v3 (users, repositories, pulls, files, contents, reviews)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from standins.github.diffs import FileChange
from standins.github.store import (
    Account,
    Commit,
    Pull,
    Repo,
    Review,
    ReviewComment,
    State,
    node_id,
)

JSON = dict[str, Any]

# Fields of a listed file GitHub caps: beyond this the patch is left out.
MAX_PATCH_BYTES = 1_000_000
GHOST = Account(
    login="ghost",
    id=10137,
    type="User",
    name="Deleted user",
    public_email=None,
    emails=[],
    company=None,
    location=None,
    bio=None,
    created_at="2008-05-13T06:14:25Z",
)


class Renderer:
    """Builds response bodies; every URL in them points back at the stand-in."""

    def __init__(self, state: State) -> None:
        self.state = state
        base = state.config.base_url
        # api.github.com and github.com are one server here.
        self.api = base
        self.web = base

    # --- accounts ------------------------------------------------------------

    def simple_user(self, account: Account) -> JSON:
        login = account.login
        user = f"{self.api}/users/{login}"
        return {
            "login": login,
            "id": account.id,
            "node_id": node_id(account.type, account.id),
            "avatar_url": f"{self.web}/avatars/u/{account.id}?v=4",
            "gravatar_id": "",
            "url": user,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{user}/followers",
            "following_url": f"{user}/following{{/other_user}}",
            "gists_url": f"{user}/gists{{/gist_id}}",
            "starred_url": f"{user}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{user}/subscriptions",
            "organizations_url": f"{user}/orgs",
            "repos_url": f"{user}/repos",
            "events_url": f"{user}/events{{/privacy}}",
            "received_events_url": f"{user}/received_events",
            "type": account.type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def user_by_login(self, login: str) -> JSON:
        account = self.state.account(login)
        # GitHub shows a vanished author as its "ghost" account.
        return self.simple_user(account or GHOST)

    def user(self, account: Account, *, authenticated: bool) -> JSON:
        """GET /user (authenticated: with the private fields) or GET /users/{login}."""
        owned = [
            repo
            for repo in self.state.repos.values()
            if repo.owner.lower() == account.login.lower()
        ]
        body = self.simple_user(account) | {
            "name": account.name,
            "company": account.company,
            "blog": "",
            "location": account.location,
            "email": account.public_email,
            "hireable": None,
            "bio": account.bio,
            "twitter_username": None,
            "public_repos": sum(not repo.private for repo in owned),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": account.created_at,
            "updated_at": account.created_at,
        }
        if account.type == "User":
            body["notification_email"] = account.public_email
        if authenticated:
            body |= {
                "private_gists": 0,
                "total_private_repos": sum(repo.private for repo in owned),
                "owned_private_repos": sum(repo.private for repo in owned),
                "disk_usage": 0,
                "collaborators": 0,
                "two_factor_authentication": True,
                "plan": {
                    "name": "free",
                    "space": 976562499,
                    "collaborators": 0,
                    "private_repos": 10000,
                },
            }
        return body

    def emails(self, account: Account) -> list[JSON]:
        out: list[JSON] = [
            {
                "email": email,
                "primary": index == 0,
                "verified": True,
                "visibility": (
                    ("public" if email == account.public_email else "private")
                    if index == 0
                    else None
                ),
            }
            for index, email in enumerate(account.emails)
        ]
        out.append(
            {
                "email": f"{account.id}+{account.login}@users.noreply.github.com",
                "primary": False,
                "verified": True,
                "visibility": None,
            }
        )
        return out

    def author_association(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        if self.state.can_push(repo, self.state.account(login)):
            return "MEMBER"
        return "NONE"

    # --- repositories --------------------------------------------------------

    def repo(self, repo: Repo, viewer: Account | None) -> JSON:
        full = repo.full_name
        api = f"{self.api}/repos/{full}"
        web = f"{self.web}/{full}"
        owner = self.user_by_login(repo.owner)
        body: JSON = {
            "id": repo.id,
            "node_id": node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": full,
            "private": repo.private,
            "owner": owner,
            "html_url": web,
            "description": repo.description,
            "fork": False,
            "url": api,
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "git_url": f"{self.web.replace('http', 'git', 1)}/{full}.git",
            "ssh_url": f"git@standin:{full}.git",
            "clone_url": f"{web}.git",
            "homepage": None,
            "size": sum(len(text) for text in self._default_tree(repo).values()) // 1024,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": repo.language,
            "has_issues": True,
            "has_projects": False,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "archived": False,
            "disabled": False,
            "open_issues_count": sum(pull.state == "open" for pull in repo.pulls.values()),
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": sum(pull.state == "open" for pull in repo.pulls.values()),
            "watchers": 0,
            "default_branch": repo.default_branch,
            "created_at": repo.created_at,
            "updated_at": repo.pushed_at,
            "pushed_at": repo.pushed_at,
        }
        if viewer is not None:
            push = self.state.can_push(repo, viewer)
            body["permissions"] = {
                "admin": False,
                "maintain": False,
                "push": push,
                "triage": push,
                "pull": True,
            }
        return body

    def _default_tree(self, repo: Repo) -> dict[str, str]:
        return dict(repo.commits[repo.branches[repo.default_branch]].files)

    # --- pull requests -------------------------------------------------------

    def pull(self, repo: Repo, pull: Pull, viewer: Account | None, *, full: bool = True) -> JSON:
        api = f"{self.api}/repos/{repo.full_name}"
        web = f"{self.web}/{repo.full_name}/pull/{pull.number}"
        pull_api = f"{api}/pulls/{pull.number}"
        repo_json = self.repo(repo, viewer)
        body: JSON = {
            "url": pull_api,
            "id": pull.id,
            "node_id": node_id("PullRequest", pull.id),
            "html_url": web,
            "diff_url": f"{web}.diff",
            "patch_url": f"{web}.patch",
            "issue_url": f"{api}/issues/{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self.user_by_login(pull.author),
            "body": pull.body,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [],
            "milestone": None,
            "draft": False,
            "commits_url": f"{pull_api}/commits",
            "review_comments_url": f"{pull_api}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "head": self._branch(repo, repo_json, pull.head_ref, pull.head_sha),
            "base": self._branch(repo, repo_json, pull.base_ref, pull.base_sha),
            "_links": {
                "self": {"href": pull_api},
                "html": {"href": web},
                "issue": {"href": f"{api}/issues/{pull.number}"},
                "comments": {"href": f"{api}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{pull_api}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{pull_api}/commits"},
                "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
            },
            "author_association": self.author_association(repo, pull.author),
            "auto_merge": None,
            "active_lock_reason": None,
        }
        if full:
            changes = self.state.pull_changes(repo, pull)
            reviews = self.state.pull_reviews(repo, pull.number)
            body |= {
                "merged": False,
                "mergeable": True,
                "rebaseable": True,
                "mergeable_state": "clean",
                "merged_by": None,
                "comments": 0,
                "review_comments": sum(len(review.comments) for review in reviews),
                "maintainer_can_modify": False,
                "commits": len(pull.commits),
                "additions": sum(change.additions for change in changes),
                "deletions": sum(change.deletions for change in changes),
                "changed_files": len(changes),
            }
        return body

    def _branch(self, repo: Repo, repo_json: JSON, ref: str, sha: str) -> JSON:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": repo_json["owner"],
            "repo": repo_json,
        }

    def file(self, repo: Repo, change: FileChange, base_sha: str, head_sha: str) -> JSON:
        """One entry of GET .../pulls/{n}/files or of a commit's `files`."""
        # A removed file only exists at the base, so its links point there.
        ref = base_sha if change.status == "removed" else head_sha
        path = quote(change.filename, safe="/")
        body: JSON = {
            "sha": change.new_sha or change.old_sha,
            "filename": change.filename,
            "status": change.status,
            "additions": change.additions,
            "deletions": change.deletions,
            "changes": change.changes,
            "blob_url": f"{self.web}/{repo.full_name}/blob/{ref}/{path}",
            "raw_url": f"{self.web}/{repo.full_name}/raw/{ref}/{path}",
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{path}?ref={ref}",
        }
        # GitHub leaves `patch` out for pure renames and for very large diffs.
        if change.patch and len(change.patch.encode()) <= MAX_PATCH_BYTES:
            body["patch"] = change.patch
        if change.previous_filename is not None:
            body["previous_filename"] = change.previous_filename
        return body

    # --- contents and commits ------------------------------------------------

    def contents_file(self, repo: Repo, path: str, data: bytes, sha: str, ref: str) -> JSON:
        encoded = base64.b64encode(data).decode("ascii")
        # GitHub wraps the base64 at 60 characters, each line ending in "\n".
        wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        return self.contents_entry(repo, path, kind="file", sha=sha, size=len(data), ref=ref) | {
            "content": wrapped,
            "encoding": "base64",
        }

    def contents_entry(
        self, repo: Repo, path: str, *, kind: str, sha: str, size: int, ref: str
    ) -> JSON:
        """One item of a directory listing, and the common fields of a file's contents."""
        quoted = quote(path, safe="/")
        url = f"{self.api}/repos/{repo.full_name}/contents/{quoted}?ref={quote(ref, safe='')}"
        git_kind, web_kind = ("blobs", "blob") if kind == "file" else ("trees", "tree")
        git = f"{self.api}/repos/{repo.full_name}/git/{git_kind}/{sha}"
        html = f"{self.web}/{repo.full_name}/{web_kind}/{ref}/{quoted}"
        download = f"{self.web}/{repo.full_name}/raw/{ref}/{quoted}" if kind == "file" else None
        return {
            "type": kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git,
            "html_url": html,
            "download_url": download,
            "_links": {"self": url, "git": git, "html": html},
        }

    def commit(self, repo: Repo, commit: Commit, changes: list[FileChange] | None) -> JSON:
        api = f"{self.api}/repos/{repo.full_name}"
        web = f"{self.web}/{repo.full_name}"
        author = self.state.account(commit.author)
        person = {
            "name": (author.name if author and author.name else commit.author),
            "email": f"{commit.author}@users.noreply.github.com",
            "date": commit.date,
        }
        body: JSON = {
            "sha": commit.sha,
            "node_id": base64.b64encode(f"06:Commit{repo.id}:{commit.sha}".encode()).decode(),
            "commit": {
                "author": person,
                "committer": person,
                "message": commit.message,
                "tree": {"sha": commit.tree_sha, "url": f"{api}/git/trees/{commit.tree_sha}"},
                "url": f"{api}/git/commits/{commit.sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": f"{api}/commits/{commit.sha}",
            "html_url": f"{web}/commit/{commit.sha}",
            "comments_url": f"{api}/commits/{commit.sha}/comments",
            "author": self.simple_user(author) if author else None,
            "committer": self.simple_user(author) if author else None,
            "parents": [
                {"sha": sha, "url": f"{api}/commits/{sha}", "html_url": f"{web}/commit/{sha}"}
                for sha in commit.parents
            ],
        }
        if changes is not None:
            base = commit.parents[0] if commit.parents else commit.sha
            additions = sum(change.additions for change in changes)
            deletions = sum(change.deletions for change in changes)
            body["stats"] = {
                "total": additions + deletions,
                "additions": additions,
                "deletions": deletions,
            }
            body["files"] = [self.file(repo, change, base, commit.sha) for change in changes]
        return body

    # --- reviews -------------------------------------------------------------

    def review(self, repo: Repo, review: Review) -> JSON:
        api = f"{self.api}/repos/{repo.full_name}/pulls/{review.pull_number}"
        web = f"{self.web}/{repo.full_name}/pull/{review.pull_number}"
        html = f"{web}#pullrequestreview-{review.id}"
        body: JSON = {
            "id": review.id,
            "node_id": node_id("PullRequestReview", review.id),
            "user": self.user_by_login(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": api,
            "author_association": self.author_association(repo, review.user),
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "commit_id": review.commit_id,
        }
        if review.submitted_at is not None:
            body["submitted_at"] = review.submitted_at
        return body

    def review_comment(self, repo: Repo, pull: Pull, comment: ReviewComment) -> JSON:
        api = f"{self.api}/repos/{repo.full_name}"
        url = f"{api}/pulls/comments/{comment.id}"
        html = f"{self.web}/{repo.full_name}/pull/{comment.pull_number}#discussion_r{comment.id}"
        pull_url = f"{api}/pulls/{comment.pull_number}"
        # A comment made on an older head is outdated: GitHub nulls its current place.
        current = comment.commit_id == pull.head_sha
        return {
            "url": url,
            "pull_request_review_id": comment.review_id,
            "id": comment.id,
            "node_id": node_id("PullRequestReviewComment", comment.id),
            "diff_hunk": comment.diff_hunk,
            "path": comment.path,
            "position": comment.position if current else None,
            "original_position": comment.position,
            "commit_id": pull.head_sha if current else comment.commit_id,
            "original_commit_id": comment.commit_id,
            "user": self.user_by_login(comment.user),
            "body": comment.body,
            "created_at": comment.created_at,
            "updated_at": comment.created_at,
            "html_url": html,
            "pull_request_url": pull_url,
            "author_association": self.author_association(repo, comment.user),
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "pull_request": {"href": pull_url},
            },
            "start_line": comment.start_line if current else None,
            "original_start_line": comment.start_line,
            "start_side": comment.start_side,
            "line": comment.line if current else None,
            "original_line": comment.line,
            "side": comment.side,
            "subject_type": "line",
        }
