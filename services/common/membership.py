"""A user's place in a session as other services see it (a grpc-free record for their ports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Membership:
    """What the sessions service answers about a member: their role and the session's state."""

    role: str  # "owner", "editor" or "viewer"
    active: bool  # False once the session has ended
