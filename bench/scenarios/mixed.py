"""Mixed realistic load: 80 % reads and 20 % writes over many users and sessions at once."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from bench.registry import Context, Load, WrkLoad, scenario
from bench.scenarios.sessions import Api, add_member, limited, run_id, sign_in_many
from bench.wrk import LUA_DIR, lua_string
from scripts.devlogin import SignedIn

USERS = 20
SESSIONS_PER_USER = 5  # 100 sessions in all
EXTRA_MEMBERS = 2  # editors per session besides its owner: each user is in 15 sessions
SEEDED_MESSAGES = 5  # per session, so reading after_seq=0..5 finds something
# Operation weights in percent: reads 80, writes 20.
OPS = (("list", 20), ("get", 25), ("messages", 20), ("me", 15), ("post", 15), ("rename", 5))
READS = frozenset({"list", "get", "messages", "me"})


@dataclass
class Member:
    user: SignedIn
    owned: list[str] = field(default_factory=list)
    member: list[str] = field(default_factory=list)


async def _populate(base_url: str, people: list[Member]) -> None:
    """Sessions, memberships through invitations, and a few messages in every session."""
    apis = [Api.of(base_url, m.user) for m in people]
    try:
        creations = [functools.partial(apis[u].create_session, f"Mixed {u}-{k}")
                     for u in range(len(people)) for k in range(SESSIONS_PER_USER)]
        ids = await limited(creations)
        joins = []
        for index, session_id in enumerate(ids):
            owner = index // SESSIONS_PER_USER
            people[owner].owned.append(session_id)
            people[owner].member.append(session_id)
            for step in range(1, EXTRA_MEMBERS + 1):
                guest = (owner + step) % len(people)
                people[guest].member.append(session_id)
                joins.append(functools.partial(add_member, base_url, apis[owner], session_id,
                                               people[guest].user))
        await limited(joins)
        posts = [functools.partial(apis[index // SESSIONS_PER_USER].call, "POST",
                                   f"/api/v1/sessions/{session_id}/messages",
                                   {"body": f"seed message {n}"})
                 for index, session_id in enumerate(ids) for n in range(SEEDED_MESSAGES)]
        await limited(posts)
    finally:
        await asyncio.gather(*(api.close() for api in apis))


def lua_data(people: list[Member]) -> str:
    """The globals bench/lua/mixed.lua reads."""
    def ids(values: list[str]) -> str:
        return "{" + ", ".join(lua_string(v) for v in values) + "}"

    users = ",\n".join(f"  {{token = {lua_string(m.user.access_token)}, member = {ids(m.member)}, "
                       f"owned = {ids(m.owned)}}}" for m in people)
    ops = ", ".join(f"{{name = {lua_string(name)}, weight = {weight}}}" for name, weight in OPS)
    return (f"MIXED_USERS = {{\n{users}\n}}\nMIXED_OPS = {{{ops}}}\n"
            f"MIXED_SEEDED = {SEEDED_MESSAGES}\n")


@scenario("mixed", baseline="health")
def mixed(ctx: Context) -> Load:
    """20 users, 100 sessions: list/get/messages/me reads 80 %, post/rename writes 20 %."""
    tag = run_id()
    people = [Member(u) for u in sign_in_many(ctx, [f"bench-mix-{tag}-{i}" for i in range(USERS)])]
    asyncio.run(_populate(ctx.gateway, people))
    script = ctx.workdir / "mixed.lua"
    script.write_text(lua_data(people) + (LUA_DIR / "mixed.lua").read_text())
    # The script builds every request; the URL only names the gateway.
    return WrkLoad(ctx.gateway + "/", script=script, preflight=False)
