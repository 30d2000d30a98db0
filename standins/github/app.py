"""The stand-in's aiohttp application: routes, middlewares and resources."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from standins.github import api, control, oauth
from standins.github.config import StandinConfig
from standins.github.keys import CONFIG_KEY, HTTP_KEY, RENDERER_KEY, STATE_KEY
from standins.github.middleware import api_middleware, errors_middleware
from standins.github.render import Renderer
from standins.github.store import State

# Bodies above this are refused with 413; reviews and pushes are far smaller.
MAX_BODY_BYTES = 5 * 1024 * 1024


def create_app(config: StandinConfig | None = None) -> web.Application:
    """Build the stand-in; all state lives in this application object."""
    config = config or StandinConfig()
    app = web.Application(
        middlewares=[errors_middleware, api_middleware], client_max_size=MAX_BODY_BYTES
    )
    state = State(config)
    app[CONFIG_KEY] = config
    app[STATE_KEY] = state
    app[RENDERER_KEY] = Renderer(state)
    app.cleanup_ctx.append(_http_client)
    _add_routes(app.router)
    return app


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    """The client session that delivers webhooks, open for the application's lifetime."""
    async with aiohttp.ClientSession() as session:
        app[HTTP_KEY] = session
        yield


def _add_routes(router: web.UrlDispatcher) -> None:
    # Route names start with their surface ("api", "web", "control"): the
    # middleware rate-limits and authenticates "api" routes only.
    repo = "/repos/{owner}/{repo}"
    pull = repo + r"/pulls/{number:\d+}"
    router.add_get("/user", api.get_user, name="api:user")
    router.add_get("/user/emails", api.get_user_emails, name="api:user_emails")
    router.add_get("/users/{login}", api.get_user_by_login, name="api:users")
    router.add_get("/rate_limit", api.get_rate_limit, name="api:rate_limit")
    router.add_get(repo, api.get_repo, name="api:repo")
    router.add_get(repo + "/pulls", api.list_pulls, name="api:pulls")
    router.add_get(pull, api.get_pull, name="api:pull")
    router.add_get(pull + "/files", api.list_pull_files, name="api:pull_files")
    router.add_get(pull + "/commits", api.list_pull_commits, name="api:pull_commits")
    router.add_get(pull + "/reviews", api.list_reviews, name="api:reviews")
    router.add_post(pull + "/reviews", api.create_review, name="api:create_review")
    router.add_get(pull + r"/reviews/{review_id:\d+}", api.get_review, name="api:review")
    router.add_get(
        pull + r"/reviews/{review_id:\d+}/comments",
        api.list_review_comments,
        name="api:review_comments",
    )
    router.add_get(pull + "/comments", api.list_review_comments, name="api:pull_comments")
    router.add_get(repo + "/contents", api.get_contents, name="api:contents_root")
    router.add_get(repo + "/contents/{path:.*}", api.get_contents, name="api:contents")
    router.add_get(repo + "/commits/{ref:.+}", api.get_commit, name="api:commit")

    router.add_get("/login/oauth/authorize", oauth.authorize, name="web:authorize")
    router.add_post("/login/oauth/access_token", oauth.access_token, name="web:access_token")
    router.add_get(r"/avatars/u/{id:\d+}", api.get_avatar, name="web:avatar")
    router.add_get("/{owner}/{repo}/raw/{rest:.+}", api.get_raw, name="web:raw")

    control_pull = r"/_standin/repos/{owner}/{repo}/pulls/{number:\d+}"
    router.add_get("/_standin/health", control.health, name="control:health")
    router.add_post("/_standin/reset", control.reset, name="control:reset")
    router.add_get("/_standin/faults", control.get_faults, name="control:faults")
    router.add_post("/_standin/faults", control.set_faults, name="control:set_faults")
    router.add_delete("/_standin/faults", control.clear_faults, name="control:clear_faults")
    router.add_post("/_standin/tokens", control.mint_token, name="control:tokens")
    router.add_post("/_standin/clock", control.advance_clock, name="control:clock")
    router.add_get("/_standin/deliveries", control.list_deliveries, name="control:deliveries")
    router.add_get(
        r"/_standin/reviews/{owner}/{repo}/{number:\d+}",
        control.list_reviews,
        name="control:reviews",
    )
    router.add_post(control_pull + "/push", control.push, name="control:push")
