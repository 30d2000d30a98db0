"""Sessions domain free of I/O: records, roles, validation, cursors, invitation states, tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from services.common.errors import (
    Conflict,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.timeconv import datetime_rfc3339


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}


class Status(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class InvitationState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


# Stored strings to members by dict lookup: records are built for every row of a list
# page, and Enum's own lookup by value costs several times more.
ROLES: dict[str, Role] = {r.value: r for r in Role}
STATUSES: dict[str, Status] = {s.value: s for s in Status}
INVITATION_STATES: dict[str, InvitationState] = {s.value: s for s in InvitationState}


# --- records (what the repository returns and the use cases pass on) ---------------------
# Values: never changed in place (dataclasses.replace makes a changed copy). Not frozen
# only because a frozen dataclass's __init__ costs 2.1 us for nine fields against 0.3 us
# (measured, Python 3.11), and a list page builds up to 100 of them: +100 us of sessions
# CPU on a 50-row ListSessions page, 4 % of the whole request.


@dataclass(slots=True)
class Membership:
    """A user's role in a session and the session's status, as authorization needs them."""

    role: Role
    status: Status


@dataclass(slots=True)
class Session:
    """A session as stored (the caller's role and last_seq travel beside it)."""

    id: str
    title: str
    description: str
    language: str
    status: Status
    owner_id: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Member:
    user_id: str
    role: Role
    joined_at: datetime


@dataclass(slots=True)
class Message:
    """A chat message; `seq` is its place in the session's event sequence."""

    id: str
    session_id: str
    seq: int
    author_id: str
    body: str
    client_id: str | None
    created_at: datetime


@dataclass(slots=True)
class Invitation:
    """An invitation as stored: `status` is the stored one (see `invitation_state` for expiry).

    Addressed invitations name an invitee (a user id, or a login while no user id is known);
    link invitations (`is_link`) are used by whoever holds the token.
    """

    id: str
    session_id: str
    role: Role
    status: InvitationState
    invitee_id: str | None
    invitee_login: str | None
    max_uses: int
    uses: int
    invited_by: str
    expires_at: datetime
    created_at: datetime
    is_link: bool
    session_title: str = ""

    def state(self, now: datetime) -> InvitationState:
        return invitation_state(self.status, self.expires_at, now)


@dataclass(slots=True)
class Notification:
    id: str
    kind: str
    payload: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


@dataclass(slots=True)
class Event:
    """One entry of a session's event log (seq 0: published live only, never stored)."""

    session_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    at: datetime


@dataclass(slots=True)
class OutboxEvent:
    """A row of the outbox: a domain event committed with its change, until it is on the
    domain-events stream (services/common/domainevents.py) as an entry of that contract."""

    outbox_id: int
    event_id: str
    type: str
    data: dict[str, Any]


@dataclass(slots=True)
class FoundUser:
    """A Tandem user found by GitHub login (from the auth service)."""

    id: str
    login: str


@dataclass(slots=True)
class DocumentHead:
    """A document's head row: its snapshot covers updates up to `upto`; `version` counts them all."""

    upto: int
    version: int
    updated_at: datetime


class DuplicateClientId(Conflict):
    """The author already posted a message with this client_id (a retry raced the first try)."""

    def __init__(self) -> None:
        super().__init__("a message with this client_id was posted already")


# --- limits (documented in docs/api.md and the OpenAPI schemas) ---------------------------

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
BODY_MAX = 4000
CLIENT_ID_MAX = 64
DEFAULT_LANGUAGE = "plaintext"
# A free identifier rather than an allow-list: editors name languages differently
# (c++, objective-c, f#), and the session only passes it on to clients.
_LANGUAGE = re.compile(r"^[a-z0-9][a-z0-9+#._-]{0,31}$")
# GitHub's own rule: alphanumerics and single inner hyphens, at most 39 characters.
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")

LIST_DEFAULT = 20
LIST_MAX = 100
MESSAGES_DEFAULT = 50
EVENTS_DEFAULT = 100
EVENTS_MAX = 1000

INVITE_DEFAULT_SECONDS = 7 * 24 * 3600
INVITE_MIN_SECONDS = 60
INVITE_MAX_SECONDS = 30 * 24 * 3600
INVITE_MAX_USES = 1000
TOKEN_PREFIX = "tdi_"  # noqa: S105 - a marker that makes leaked tokens greppable, not a secret

# Other services may append only their own families of events to a session's log.
APPEND_PREFIXES = ("review.", "ai.")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
PAYLOAD_MAX_BYTES = 32 * 1024


# C0 and C1 control characters except tab and newline, plus the bidirectional
# overrides and isolates that can make text display differently from what it is
# ("Trojan Source"). Other format characters stay: emoji sequences need U+200D.
_CONTROLS = {c: None for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}
_CONTROLS.update(dict.fromkeys((*range(0x202A, 0x202F), *range(0x2066, 0x206A))))


def strip_controls(text: str) -> str:
    """Drop control characters (keeping newline and tab) and bidi overrides."""
    return text.translate(_CONTROLS)


def _violation(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field} {message}", [FieldViolation(field, message)])


def clean_title(value: str) -> str:
    title = " ".join(strip_controls(value).split())
    if not title:
        raise _violation("title", "must not be empty")
    if len(title) > TITLE_MAX:
        raise _violation("title", f"must be at most {TITLE_MAX} characters")
    return title


def clean_description(value: str) -> str:
    text = strip_controls(value).strip()
    if len(text) > DESCRIPTION_MAX:
        raise _violation("description", f"must be at most {DESCRIPTION_MAX} characters")
    return text


def clean_language(value: str) -> str:
    text = value.strip().lower()
    if not text:
        return DEFAULT_LANGUAGE
    if not _LANGUAGE.match(text):
        raise _violation("language", "must be an identifier of at most 32 characters "
                                     "(letters, digits, + # . _ -), e.g. python")
    return text


def clean_body(value: str) -> str:
    body = strip_controls(value)
    if not body.strip():
        raise _violation("body", "must not be empty")
    if len(body) > BODY_MAX:
        raise _violation("body", f"must be at most {BODY_MAX} characters")
    return body


def clean_client_id(value: str) -> str | None:
    if not value:
        return None
    if not _CLIENT_ID.match(value):
        raise _violation("client_id", f"must be 1..{CLIENT_ID_MAX} printable ASCII characters")
    return value


def clean_login(value: str) -> str:
    login = value.strip().lstrip("@")
    if not _GITHUB_LOGIN.match(login):
        raise _violation("github_login", "is not a valid GitHub login")
    return login


def invitable_role(role: Role | None) -> Role:
    if role is None:
        raise _violation("role", "is required (editor or viewer)")
    if role is Role.OWNER:
        raise _violation("role", "cannot be owner; transfer ownership instead")
    return role


def assignable_role(role: Role | None) -> Role:
    if role is None:
        raise _violation("role", "is required (editor or viewer)")
    if role is Role.OWNER:
        raise _violation("role", "cannot be owner; use the ownership transfer")
    return role


def expires_in(seconds: int) -> int:
    if seconds == 0:
        return INVITE_DEFAULT_SECONDS
    if not INVITE_MIN_SECONDS <= seconds <= INVITE_MAX_SECONDS:
        raise _violation("expires_in", f"must be between {INVITE_MIN_SECONDS} and "
                                       f"{INVITE_MAX_SECONDS} seconds (30 days)")
    return seconds


def max_uses(value: int, addressed: bool) -> int:
    if value == 0:
        return 1
    if addressed and value != 1:
        raise _violation("max_uses", "must be 1 for an invitation to a GitHub login")
    if not 1 <= value <= INVITE_MAX_USES:
        raise _violation("max_uses", f"must be between 1 and {INVITE_MAX_USES}")
    return value


def limit(value: int, default: int = LIST_DEFAULT, maximum: int = LIST_MAX) -> int:
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise _violation("limit", f"must be between 1 and {maximum}")
    return value


def after_seq(value: int) -> int:
    if value < 0:
        raise _violation("after_seq", "must not be negative")
    return value


def member_of(session: Session | None, role: Role | None,
              minimum: Role = Role.VIEWER) -> tuple[Session, Role]:
    """The session and the caller's role in it; NotFound for a non-member (a session one is
    not in does not exist for one), PermissionDenied below `minimum`."""
    if session is None or role is None:
        raise NotFound("session not found")
    if not role.at_least(minimum):
        raise PermissionDenied(f"this needs the {minimum} role or higher")
    return session, role


def parse_uuid(value: str, what: str) -> str:
    """An id that is not a UUID names nothing: NOT_FOUND, like an unknown one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"{what} not found") from None


def event_type(value: str) -> str:
    if not EVENT_TYPE.match(value) or len(value) > 64:
        raise _violation("type", "must be a dotted lower-case name such as review.created")
    if not value.startswith(APPEND_PREFIXES):
        raise _violation("type", "must start with " + " or ".join(APPEND_PREFIXES))
    return value


def event_payload(raw: str) -> dict[str, Any]:
    if len(raw.encode()) > PAYLOAD_MAX_BYTES:
        raise _violation("payload_json", f"must be at most {PAYLOAD_MAX_BYTES} bytes")
    try:
        payload = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise _violation("payload_json", "must be valid JSON") from None
    if not isinstance(payload, dict):
        raise _violation("payload_json", "must be a JSON object")
    reserved = {"type", "seq", "session_id", "at"} & payload.keys()
    if reserved:
        raise _violation("payload_json", "must not set the envelope fields "
                                         + ", ".join(sorted(reserved)))
    return payload


# --- cursors -----------------------------------------------------------------------------


def encode_cursor(*parts: Any) -> str:
    """An opaque, URL-safe cursor over a tuple of JSON-able values."""
    raw = orjson.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, shape: tuple[type, ...]) -> tuple[Any, ...]:
    """Decode a cursor made by `encode_cursor`, checking each value against `shape`."""
    bad = _violation("cursor", "is not a cursor returned by this list")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(shape):
        raise bad
    out: list[Any] = []
    for value, kind in zip(values, shape, strict=True):
        try:
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive timestamp")
                out.append(parsed.astimezone(UTC))
            elif kind is uuid.UUID:
                out.append(str(uuid.UUID(value)))
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
            else:
                raise TypeError(kind)
        except (ValueError, TypeError, AttributeError):
            raise bad from None
    return tuple(out)


# --- invitations -------------------------------------------------------------------------


def new_invitation_token() -> str:
    """256 random bits; only its hash is stored, the token is shown once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def invitation_state(status: InvitationState, expires_at: datetime,
                     now: datetime) -> InvitationState:
    """The state a client sees: a pending invitation past its expiry is expired."""
    if status is InvitationState.PENDING and expires_at <= now:
        return InvitationState.EXPIRED
    return status


def addressed_to(invitation: Invitation, user_id: str, login: str) -> bool:
    """An invitation is the caller's by user id, or by login while it has no user id yet."""
    if invitation.invitee_id is not None:
        return invitation.invitee_id == user_id
    stored = invitation.invitee_login
    return bool(login) and stored is not None and stored.lower() == login.lower()


def session_json(session: Session) -> dict[str, Any]:
    """The session as clients see it (REST shape without the per-caller role)."""
    return {
        "id": session.id, "title": session.title, "description": session.description,
        "language": session.language, "status": str(session.status),
        "owner_id": session.owner_id, "version": session.version,
        "created_at": datetime_rfc3339(session.created_at),
        "updated_at": datetime_rfc3339(session.updated_at),
    }
