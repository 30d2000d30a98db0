"""POST /api/v1/invitations/preview over HTTP: what /invitations/{token} shows before Accept."""

from __future__ import annotations

import time

import grpc

from gateway import keys
from tests.gateway.conftest import Client, Gateway
from tests.helpers.identity import SignedIn, sign_in_grpc
from tests.sessions.conftest import unique_login

PREVIEW = "/api/v1/invitations/preview"


async def _people(client: Client, *roles: str) -> list[SignedIn]:
    # Straight through auth: the gateway's own per-IP sign-in limit stays for the test.
    async with grpc.aio.insecure_channel(client.app[keys.CONFIG].common.auth_addr) as channel:
        return [await sign_in_grpc(channel, unique_login(role)) for role in roles]


async def _call(client: Client, user: SignedIn, method: str, path: str,
                json: object = None) -> tuple[int, dict[str, object]]:
    reply = await client.request(method, path, json=json, headers=user.headers)
    body = await reply.json() if reply.status != 204 else {}
    return reply.status, body


async def test_the_holder_of_a_link_sees_session_role_and_state(gateway: Gateway) -> None:
    async with gateway("sessions") as client:
        owner, guest = await _people(client, "owner", "guest")
        status, session = await _call(client, owner, "POST", "/api/v1/sessions",
                                      {"title": "Parser pairing", "language": "python",
                                       "description": "not for strangers"})
        assert status == 201
        status, link = await _call(client, owner, "POST",
                                   f"/api/v1/sessions/{session['id']}/invitations", {"role": "editor"})
        assert status == 201
        status, seen = await _call(client, guest, "POST", PREVIEW, {"token": link["token"]})
        assert status == 200, seen
        assert seen == {
            "session": {"id": session["id"], "title": "Parser pairing", "language": "python",
                        "status": "active"},
            "role": "editor", "expires_at": link["expires_at"], "status": "pending",
            "invited_by": seen["invited_by"], "member_role": None}
        assert seen["invited_by"]["id"] == owner.user_id  # type: ignore[index]
        assert seen["invited_by"]["github_login"] == owner.login  # type: ignore[index]
        # Accepting is what makes a member; the preview then says the link is used.
        status, accepted = await _call(client, guest, "POST", "/api/v1/invitations/accept",
                                       {"token": link["token"]})
        assert status == 200, accepted
        status, after = await _call(client, guest, "POST", PREVIEW, {"token": link["token"]})
        assert (after["status"], after["member_role"]) == ("used", "editor")
        # Revoked links say so (the owner sees their own link's preview too).
        status, other = await _call(client, owner, "POST",
                                    f"/api/v1/sessions/{session['id']}/invitations", {"role": "viewer"})
        assert (await client.delete(f"/api/v1/invitations/{other['id']}",
                                    headers=owner.headers)).status == 204
        status, revoked = await _call(client, owner, "POST", PREVIEW, {"token": other["token"]})
        assert (status, revoked["status"], revoked["member_role"]) == (200, "revoked", "owner")


async def test_an_unknown_token_is_404_and_a_token_is_needed(gateway: Gateway) -> None:
    async with gateway("sessions") as client:
        (guest,) = await _people(client, "guest")
        status, body = await _call(client, guest, "POST", PREVIEW, {"token": "no-such-token"})
        assert status == 404
        assert body["error"]["code"] == "not_found"  # type: ignore[index]
        status, body = await _call(client, guest, "POST", PREVIEW, {})
        assert status == 400
        assert body["error"]["details"][0]["field"] == "token"  # type: ignore[index]
        anonymous = await client.post(PREVIEW, json={"token": "x"})
        assert anonymous.status == 401


async def test_token_lookups_are_rate_limited_per_user(gateway: Gateway) -> None:
    async with gateway("sessions", RATE_LIMIT_AUTH_PER_MINUTE="3") as client:
        for _ in range(2):  # the limit counts per clock minute: again if one began mid-test
            minute = time.time() // 60
            guest, other = await _people(client, "guesser", "other")
            statuses = [(await _call(client, guest, "POST", PREVIEW, {"token": "guess"}))[0]
                        for _ in range(2)]
            # Accepting by token draws on the same allowance: guessing through either costs it.
            statuses.append((await _call(client, guest, "POST", "/api/v1/invitations/accept",
                                         {"token": "guess"}))[0])
            refused = await client.post(PREVIEW, json={"token": "guess"}, headers=guest.headers)
            bystander = (await _call(client, other, "POST", PREVIEW, {"token": "guess"}))[0]
            if time.time() // 60 == minute:
                break
        assert statuses == [404, 404, 404]
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert bystander == 404


async def test_the_preview_is_in_the_openapi_document(gateway: Gateway) -> None:
    async with gateway() as client:
        document = await (await client.get("/openapi.json")).json()
    operation = document["paths"][PREVIEW]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert {"200", "401", "404", "429"} <= set(operation["responses"])
    schema = document["components"]["schemas"]["PreviewOut"]
    assert set(schema["properties"]["status"]["enum"]) == {"pending", "expired", "revoked", "used"}
