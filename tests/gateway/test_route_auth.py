"""The route table enforces what it documents: every `auth=True` operation answers 401 without
a valid access token before its handler runs, and the others never ask for one."""

from __future__ import annotations

import re

from gateway.app import build_routes, openapi_document
from tests.gateway.conftest import Gateway


def _concrete(path: str) -> str:
    # Any well-formed id: the guard answers before the handler looks at it.
    return re.sub(r"{[^}]+}", "00000000-0000-4000-8000-000000000000", path)


async def test_every_operation_that_documents_a_401_refuses_a_missing_or_bad_token(
        gateway: Gateway) -> None:
    table = build_routes()
    guarded = [op for op in table.operations if op.auth]
    assert guarded, "the table has authenticated operations"
    async with gateway() as client:
        for op in guarded:
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = await client.request(op.method, _concrete(op.path), headers=headers)
                assert response.status == 401, (op.method, op.path, headers)
                if op.method != "HEAD":
                    body = await response.json()
                    assert body["error"]["code"] == "unauthenticated", (op.method, op.path)


async def test_only_guarded_operations_document_a_401_unless_they_list_it() -> None:
    document = openapi_document("http://localhost")
    for op in build_routes().operations:
        if op.method == "HEAD":
            continue
        template = re.sub(r"{(\w+):[^}]*}", r"{\1}", op.path)
        documented = document["paths"][template][op.method.lower()]
        assert ("401" in documented["responses"]) == (op.auth or 401 in op.errors), op.path
        assert ("security" in documented) == op.auth, op.path


async def test_a_websocket_handshake_may_carry_its_token_in_the_query(gateway: Gateway) -> None:
    sockets = [op for op in build_routes().operations if op.token_in_query]
    assert {op.name for op in sockets} == {"session_events_socket", "session_doc_socket"}
    async with gateway() as client:
        for op in sockets:
            response = await client.get(_concrete(op.path), params={"access_token": "not-a-token"})
            # Refused as a bad token (invalid_token), not as a missing one.
            assert response.status == 401
            assert "invalid_token" in response.headers.get("WWW-Authenticate", "")
