"""Response schemas shared across route modules (documented in /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from tandem.auth.v1 import auth_pb2

from gateway.http import Schema
from services.common.timeconv import rfc3339


class UserOut(Schema):
    id: str = Field(description="Tandem user id (UUID)")
    github_login: str
    name: str
    avatar_url: str
    created_at: str = Field(description="RFC 3339 UTC")


def user_out(user: auth_pb2.User) -> dict[str, Any]:
    return {"id": user.id, "github_login": user.github_login, "name": user.name,
            "avatar_url": user.avatar_url, "created_at": rfc3339(user.created_at)}
