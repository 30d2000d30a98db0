"""All SQL of the sessions service: typed records out, driver errors turned into domain errors.

Reads run on the pool; multi-statement writes inside one transaction (`Tx`); the shared
document's statements in `DocumentTx` (storage layout: migration 050 and documents.py).
Constraint violations the use cases act on become domain errors here (a raced client_id:
DuplicateClientId; a session deleted under a document write: NotFound); a database that
does not answer stays a psycopg error, which the kit's server interceptor answers with
UNAVAILABLE for every service alike.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from services.common.errors import NotFound
from services.common.grpcserver import Pool
from services.sessions.domain import (
    INVITATION_STATES,
    ROLES,
    STATUSES,
    DocumentHead,
    DuplicateClientId,
    Event,
    Invitation,
    InvitationState,
    Member,
    Message,
    Notification,
    OutboxEvent,
    Role,
    Session,
)
from services.sessions.ports import After

Row = dict[str, Any]

_SESSION_COLS = ("s.id, s.title, s.description, s.language, s.status, s.owner_id, s.version, "
                 "s.created_at, s.updated_at")
# Lists send ids as text: PostgreSQL formats them faster than Python builds and prints
# UUID objects (two per row, up to 100 rows per page).
_SESSION_LIST_COLS = ("s.id::text AS id, s.title, s.description, s.language, s.status, "
                      "s.owner_id::text AS owner_id, s.version, s.created_at, s.updated_at")
_INVITATION_COLS = ("i.id, i.session_id, i.role, i.status, i.invitee_id, i.invitee_login, "
                    "i.max_uses, i.uses, i.invited_by, i.expires_at, i.created_at, "
                    "s.title AS session_title")
# Addressed to a user: by id, or by login while no user id is known yet.
_ADDRESSED = ("(i.invitee_id = %(uid)s OR (i.invitee_id IS NULL AND i.invitee_login IS NOT NULL"
              " AND lower(i.invitee_login) = lower(%(login)s)))")
_NOTIFIED = ("(n.recipient_id = %(uid)s OR (n.recipient_id IS NULL AND n.recipient_login IS NOT NULL"
             " AND lower(n.recipient_login) = lower(%(login)s)))")


def _json(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: orjson.dumps(v).decode())


# --- rows -> records ---------------------------------------------------------------------


def _session(r: Row) -> Session:
    return Session(str(r["id"]), r["title"], r["description"], r["language"],
                   STATUSES[r["status"]], str(r["owner_id"]), r["version"], r["created_at"],
                   r["updated_at"])


def _member(r: Row) -> Member:
    return Member(str(r["user_id"]), ROLES[r["role"]], r["joined_at"])


def _message(r: Row) -> Message:
    return Message(str(r["id"]), str(r["session_id"]), r["seq"], str(r["author_id"]), r["body"],
                   r["client_id"], r["created_at"])


def _invitation(r: Row, is_link: bool, session_title: str = "") -> Invitation:
    invitee = r["invitee_id"]
    return Invitation(str(r["id"]), str(r["session_id"]), ROLES[r["role"]],
                      INVITATION_STATES[r["status"]], None if invitee is None else str(invitee),
                      r["invitee_login"], r["max_uses"], r["uses"], str(r["invited_by"]),
                      r["expires_at"], r["created_at"], is_link, session_title)


def _listed_invitation(r: Row) -> Invitation:
    return _invitation(r, r["is_link"], r["session_title"])


class SessionsRepository:
    """Reads outside transactions; `transaction()` yields a `Tx` for multi-statement writes."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.pool.connection() as conn, conn.transaction():
            yield Tx(conn)

    async def _one(self, query: str, params: Any) -> Row | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchone()

    async def _all(self, query: str, params: Any) -> list[Row]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall()

    # --- sessions and members ----------------------------------------------------------

    async def create_session(self, title: str, description: str, language: str,
                             owner_id: str) -> Session:
        # One statement: the session and its owner membership commit together.
        row = await self._one(
            f"WITH s AS (INSERT INTO sessions (id, title, description, language, owner_id) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING *), "
            f"m AS (INSERT INTO members (session_id, user_id, role, joined_at, session_created_at) "
            f"SELECT id, owner_id, 'owner', created_at, created_at FROM s) "
            f"SELECT {_SESSION_COLS} FROM s",
            (uuid.uuid4(), title, description, language, owner_id))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return _session(row)

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[Session | None, Role | None]:
        row = await self._one(
            f"SELECT {_SESSION_COLS}, m.role AS caller_role FROM sessions s "
            f"LEFT JOIN members m ON m.session_id = s.id AND m.user_id = %s WHERE s.id = %s",
            (user_id, session_id))
        if row is None:
            return None, None
        role = row["caller_role"]
        return _session(row), None if role is None else ROLES[role]

    async def last_seq(self, session_id: str) -> int:
        row = await self._one("SELECT last_seq FROM sessions WHERE id = %s", (session_id,))
        return int(row["last_seq"]) if row else 0

    async def list_sessions(self, user_id: str, limit: int,
                            after: After | None) -> list[tuple[Session, Role]]:
        """The user's sessions, newest first: one range scan of members_by_user (keyset)."""
        if after is None:
            rows = await self._all(
                f"SELECT {_SESSION_LIST_COLS}, m.role FROM members m "
                f"JOIN sessions s ON s.id = m.session_id WHERE m.user_id = %s "
                f"ORDER BY m.session_created_at DESC, m.session_id DESC LIMIT %s",
                (user_id, limit))
        else:
            rows = await self._all(
                f"SELECT {_SESSION_LIST_COLS}, m.role FROM members m "
                f"JOIN sessions s ON s.id = m.session_id WHERE m.user_id = %s "
                f"AND (m.session_created_at, m.session_id) < (%s, %s) "
                f"ORDER BY m.session_created_at DESC, m.session_id DESC LIMIT %s",
                (user_id, after[0], after[1], limit))
        # Ids arrive as text already (see _SESSION_LIST_COLS): no str() per row.
        return [(Session(r["id"], r["title"], r["description"], r["language"],
                         STATUSES[r["status"]], r["owner_id"], r["version"], r["created_at"],
                         r["updated_at"]), ROLES[r["role"]]) for r in rows]

    async def members(self, session_id: str) -> list[Member]:
        rows = await self._all(
            "SELECT user_id, role, joined_at FROM members WHERE session_id = %s "
            "ORDER BY joined_at, user_id", (session_id,))
        return [_member(r) for r in rows]

    # --- chat --------------------------------------------------------------------------

    async def post_message(self, session_id: str, author_id: str, message_id: str, body: str,
                           client_id: str | None, created_at: datetime,
                           payload: dict[str, Any]) -> int | None:
        """Store a message and its chat.message event under the next seq, in one statement.

        Returns the seq, or None when the author is not a member or the session is
        not active (nothing is written, so no sequence number is used up).
        """
        try:
            row = await self._one(
                "WITH s AS (UPDATE sessions SET last_seq = last_seq + 1 "
                "  WHERE id = %(sid)s AND status = 'active' AND EXISTS ("
                "    SELECT 1 FROM members WHERE session_id = %(sid)s AND user_id = %(uid)s) "
                "  RETURNING last_seq), "
                "m AS (INSERT INTO messages (id, session_id, seq, author_id, body, client_id, "
                "  created_at) "
                "  SELECT %(id)s, %(sid)s, last_seq, %(uid)s, %(body)s, %(cid)s, %(at)s FROM s "
                "  RETURNING seq), "
                "e AS (INSERT INTO events (session_id, seq, type, payload, created_at) "
                "  SELECT %(sid)s, seq, 'chat.message', %(payload)s, %(at)s FROM m) "
                "SELECT seq FROM m",
                {"sid": session_id, "uid": author_id, "id": message_id, "body": body,
                 "cid": client_id, "at": created_at, "payload": _json(payload)})
        except psycopg.errors.UniqueViolation:
            # Only the (session, author, client_id) index can conflict: ids are fresh UUIDs
            # and the seq comes from the row lock.
            raise DuplicateClientId from None
        return int(row["seq"]) if row else None

    async def message_by_client_id(self, session_id: str, author_id: str,
                                   client_id: str) -> Message | None:
        row = await self._one(
            "SELECT id, session_id, seq, author_id, body, client_id, created_at FROM messages "
            "WHERE session_id = %s AND author_id = %s AND client_id = %s",
            (session_id, author_id, client_id))
        return None if row is None else _message(row)

    async def messages(self, session_id: str, after_seq: int, limit: int) -> list[Message]:
        # Ids as text, like the session lists: a page holds up to 100 rows of three ids.
        rows = await self._all(
            "SELECT id::text AS id, session_id::text AS session_id, seq, "
            "author_id::text AS author_id, body, client_id, created_at FROM messages "
            "WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (session_id, after_seq, limit))
        return [Message(r["id"], r["session_id"], r["seq"], r["author_id"], r["body"],
                        r["client_id"], r["created_at"]) for r in rows]

    async def events(self, session_id: str, after_seq: int, limit: int) -> list[Event]:
        rows = await self._all(
            "SELECT seq, type, payload, created_at FROM events "
            "WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (session_id, after_seq, limit))
        return [Event(session_id, int(r["seq"]), r["type"], r["payload"], r["created_at"])
                for r in rows]

    # --- invitations -------------------------------------------------------------------

    async def invitation(self, invitation_id: str) -> Invitation | None:
        row = await self._one(
            f"SELECT {_INVITATION_COLS}, i.token_hash IS NOT NULL AS is_link FROM invitations i "
            f"JOIN sessions s ON s.id = i.session_id WHERE i.id = %s", (invitation_id,))
        return None if row is None else _listed_invitation(row)

    async def invitation_by_token(self, digest: bytes) -> Invitation | None:
        row = await self._one(
            f"SELECT {_INVITATION_COLS}, true AS is_link FROM invitations i "
            f"JOIN sessions s ON s.id = i.session_id WHERE i.token_hash = %s", (digest,))
        return None if row is None else _listed_invitation(row)

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool:
        row = await self._one("SELECT 1 AS used FROM invitation_uses "
                              "WHERE invitation_id = %s AND user_id = %s", (invitation_id, user_id))
        return row is not None

    async def invitations_for(self, user_id: str, login: str, limit: int,
                              after: After | None) -> list[tuple[int, Invitation]]:
        """Invitations addressed to the user, usable (pending, unexpired) ones first."""
        params: dict[str, Any] = {"uid": user_id, "login": login, "limit": limit}
        page = ""
        if after is not None:
            params.update(rank=after[0], at=after[1], id=after[2])
            page = ("WHERE rank > %(rank)s OR (rank = %(rank)s AND (created_at, id) < "
                    "(%(at)s, %(id)s))")
        rows = await self._all(
            f"SELECT * FROM (SELECT {_INVITATION_COLS}, i.token_hash IS NOT NULL AS is_link, "
            f"  CASE WHEN i.status = 'pending' AND i.expires_at > now() THEN 0 ELSE 1 END AS rank "
            f"  FROM invitations i JOIN sessions s ON s.id = i.session_id WHERE {_ADDRESSED}) q "
            f"{page} ORDER BY rank, created_at DESC, id DESC LIMIT %(limit)s", params)
        return [(int(r["rank"]), _listed_invitation(r)) for r in rows]

    # --- notifications -----------------------------------------------------------------

    async def notifications(self, user_id: str, login: str, unread_only: bool, limit: int,
                            after: After | None) -> list[Notification]:
        params: dict[str, Any] = {"uid": user_id, "login": login, "limit": limit}
        where = _NOTIFIED
        if unread_only:
            where += " AND n.read_at IS NULL"
        if after is not None:
            params.update(at=after[0], id=after[1])
            where += " AND (n.created_at, n.id) < (%(at)s, %(id)s)"
        rows = await self._all(
            f"SELECT n.id, n.kind, n.payload, n.read_at, n.created_at FROM notifications n "
            f"WHERE {where} ORDER BY n.created_at DESC, n.id DESC LIMIT %(limit)s", params)
        return [Notification(str(r["id"]), r["kind"], r["payload"], r["read_at"], r["created_at"])
                for r in rows]

    async def mark_notification_read(self, notification_id: str, user_id: str, login: str) -> bool:
        row = await self._one(
            f"UPDATE notifications n SET read_at = coalesce(n.read_at, now()) "
            f"WHERE n.id = %(id)s AND {_NOTIFIED} RETURNING n.id",
            {"id": notification_id, "uid": user_id, "login": login})
        return row is not None

    async def add_notifications(self, event_id: str, session_id: str | None,
                                rows: Sequence[tuple[str | None, str | None, str, dict[str, Any]]]
                                ) -> int:
        """Insert (recipient_id, recipient_login, kind, payload) rows once per (event, recipient).

        Nothing is inserted for a session deleted meanwhile: its notifications went with it.
        """
        created = 0
        async with self.pool.connection() as conn, conn.transaction():
            for recipient_id, recipient_login, kind, payload in rows:
                key = (f"user:{recipient_id}" if recipient_id
                       else f"login:{(recipient_login or '').lower()}")
                cur = await conn.execute(
                    b"INSERT INTO notifications (id, recipient_id, recipient_login, recipient_key, "
                    b"event_id, session_id, kind, payload) "
                    b"SELECT %s, %s, %s, %s, %s, %s, %s, %s "
                    b"WHERE %s::uuid IS NULL OR EXISTS (SELECT 1 FROM sessions WHERE id = %s) "
                    b"ON CONFLICT (event_id, recipient_key) DO NOTHING",
                    (uuid.uuid4(), recipient_id, None if recipient_id else recipient_login, key,
                     event_id, session_id, kind, _json(payload), session_id, session_id))
                created += cur.rowcount
        return created

    # --- outbox ------------------------------------------------------------------------

    async def delete_outbox(self, ids: Sequence[int]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(b"DELETE FROM outbox WHERE id = ANY(%s)", (list(ids),))

    @asynccontextmanager
    async def stale_outbox(self, older_than: float, limit: int = 100) -> AsyncIterator[list[OutboxEvent]]:
        """Outbox rows left behind (Redis was down), locked so one relay handles each."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                b"SELECT id, event_id, type, data FROM outbox "
                b"WHERE created_at < now() - make_interval(secs => %s) "
                b"ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", (older_than, limit))
            rows = [OutboxEvent(int(r["id"]), str(r["event_id"]), r["type"], r["data"])
                    for r in await cur.fetchall()]
            yield rows
            if rows:
                await conn.execute(b"DELETE FROM outbox WHERE id = ANY(%s)",
                                   ([r.outbox_id for r in rows],))


class Tx:
    """Statements that run inside one transaction; row locks taken here hold until commit."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn

    async def _one(self, query: str, params: Any) -> Row | None:
        cur = await self.conn.execute(query.encode(), params)
        return await cur.fetchone()

    async def _all(self, query: str, params: Any) -> list[Row]:
        cur = await self.conn.execute(query.encode(), params)
        return await cur.fetchall()

    async def lock_session(self, session_id: str,
                           user_id: str) -> tuple[Session, Role | None] | None:
        """The session row, locked, with the user's role (None if not a member)."""
        row = await self._one(
            f"SELECT {_SESSION_COLS}, m.role AS caller_role FROM sessions s "
            f"LEFT JOIN members m ON m.session_id = s.id AND m.user_id = %s "
            f"WHERE s.id = %s FOR UPDATE OF s", (user_id, session_id))
        if row is None:
            return None
        role = row["caller_role"]
        return _session(row), None if role is None else ROLES[role]

    async def update_session(self, session_id: str, changes: dict[str, str],
                             *, end: bool = False) -> Session:
        sets = [f"{column} = %({column})s" for column in changes]  # columns come from code
        if end:
            sets.append("status = 'ended', ended_at = now()")
        row = await self._one(
            f"UPDATE sessions s SET {', '.join(sets)}, version = version + 1, updated_at = now() "
            f"WHERE id = %(sid)s RETURNING {_SESSION_COLS}", {**changes, "sid": session_id})
        assert row is not None  # noqa: S101 - the row is locked by this transaction
        return _session(row)

    async def set_owner(self, session_id: str, old_owner: str, new_owner: str) -> Session:
        # Demote first: the one-owner unique index is checked row by row.
        await self.conn.execute(
            b"UPDATE members SET role = 'editor' WHERE session_id = %s AND user_id = %s",
            (session_id, old_owner))
        await self.conn.execute(
            b"UPDATE members SET role = 'owner' WHERE session_id = %s AND user_id = %s",
            (session_id, new_owner))
        row = await self._one(
            f"UPDATE sessions s SET owner_id = %s, version = version + 1, updated_at = now() "
            f"WHERE id = %s RETURNING {_SESSION_COLS}", (new_owner, session_id))
        assert row is not None  # noqa: S101 - the row is locked by this transaction
        return _session(row)

    async def delete_session(self, session_id: str) -> list[str]:
        """Delete the session and everything under it; returns the former members' ids."""
        rows = await self._all("SELECT user_id FROM members WHERE session_id = %s", (session_id,))
        await self.conn.execute(b"DELETE FROM notifications WHERE session_id = %s", (session_id,))
        # Everything else, the shared document included (migration 050), cascades.
        await self.conn.execute(b"DELETE FROM sessions WHERE id = %s", (session_id,))
        return [str(r["user_id"]) for r in rows]

    async def member(self, session_id: str, user_id: str) -> Member | None:
        row = await self._one(
            "SELECT user_id, role, joined_at FROM members WHERE session_id = %s AND user_id = %s "
            "FOR UPDATE", (session_id, user_id))
        return None if row is None else _member(row)

    async def add_member(self, session_id: str, user_id: str, role: Role,
                         session_created_at: datetime) -> Member:
        row = await self._one(
            "INSERT INTO members (session_id, user_id, role, session_created_at) "
            "VALUES (%s, %s, %s, %s) RETURNING user_id, role, joined_at",
            (session_id, user_id, str(role), session_created_at))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return _member(row)

    async def set_role(self, session_id: str, user_id: str, role: Role) -> Member:
        row = await self._one(
            "UPDATE members SET role = %s WHERE session_id = %s AND user_id = %s "
            "RETURNING user_id, role, joined_at", (str(role), session_id, user_id))
        assert row is not None  # noqa: S101 - the caller locked the member row
        return _member(row)

    async def remove_member(self, session_id: str, user_id: str) -> None:
        await self.conn.execute(b"DELETE FROM members WHERE session_id = %s AND user_id = %s",
                                (session_id, user_id))

    async def append_events(self, session_id: str,
                            events: Sequence[tuple[str, dict[str, Any]]]) -> list[Event]:
        """Give the events the session's next sequence numbers and store them."""
        row = await self._one(
            "UPDATE sessions SET last_seq = last_seq + %s WHERE id = %s "
            "RETURNING last_seq, clock_timestamp() AS at", (len(events), session_id))
        if row is None:
            return []
        first = int(row["last_seq"]) - len(events) + 1
        out = [Event(session_id, first + i, kind, payload, row["at"])
               for i, (kind, payload) in enumerate(events)]
        async with self.conn.cursor() as cur:
            await cur.executemany(
                b"INSERT INTO events (session_id, seq, type, payload, created_at) "
                b"VALUES (%s, %s, %s, %s, %s)",
                [(session_id, e.seq, e.type, _json(e.payload), e.at) for e in out])
        return out

    async def add_outbox(self, event_type: str, data: dict[str, Any]) -> OutboxEvent:
        event_id = str(uuid.uuid4())
        row = await self._one(
            "INSERT INTO outbox (event_id, type, data) VALUES (%s, %s, %s) RETURNING id",
            (event_id, event_type, _json(data)))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return OutboxEvent(int(row["id"]), event_id, event_type, data)

    # --- invitations -------------------------------------------------------------------

    async def pending_invitation_exists(self, session_id: str, invitee_id: str | None,
                                        login: str) -> bool:
        row = await self._one(
            "SELECT 1 AS found FROM invitations WHERE session_id = %s AND status = 'pending' "
            "AND expires_at > now() AND (invitee_id = %s OR lower(invitee_login) = lower(%s))",
            (session_id, invitee_id, login))
        return row is not None

    async def is_member(self, session_id: str, user_id: str) -> bool:
        row = await self._one("SELECT 1 AS found FROM members WHERE session_id = %s AND user_id = %s",
                              (session_id, user_id))
        return row is not None

    async def create_invitation(self, session_id: str, role: Role, invitee_id: str | None,
                                invitee_login: str | None, digest: bytes | None, max_uses: int,
                                invited_by: str, expires_in: int) -> Invitation:
        row = await self._one(
            "INSERT INTO invitations (id, session_id, role, invitee_id, invitee_login, token_hash, "
            "max_uses, invited_by, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
            "RETURNING id, session_id, role, status, invitee_id, invitee_login, max_uses, uses, "
            "invited_by, expires_at, created_at",
            (uuid.uuid4(), session_id, str(role), invitee_id, invitee_login, digest, max_uses,
             invited_by, expires_in))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return _invitation(row, digest is not None)

    async def lock_invitation(self, invitation_id: str) -> tuple[Invitation, datetime] | None:
        row = await self._one(
            "SELECT id, session_id, role, status, invitee_id, invitee_login, max_uses, uses, "
            "invited_by, expires_at, created_at, token_hash IS NOT NULL AS is_link, now() AS now "
            "FROM invitations WHERE id = %s FOR UPDATE", (invitation_id,))
        if row is None:
            return None
        return _invitation(row, row["is_link"]), row["now"]

    async def use_invitation(self, invitation_id: str, user_id: str, *, addressed: bool) -> None:
        await self.conn.execute(
            b"INSERT INTO invitation_uses (invitation_id, user_id) VALUES (%s, %s)",
            (invitation_id, user_id))
        # An addressed invitation accepted through a login match now knows its user.
        await self.conn.execute(
            b"UPDATE invitations SET uses = uses + 1, updated_at = now(), "
            b"status = CASE WHEN uses + 1 >= max_uses THEN 'accepted' ELSE status END, "
            b"invitee_id = CASE WHEN %s THEN %s::uuid ELSE invitee_id END WHERE id = %s",
            (addressed, user_id, invitation_id))

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool:
        row = await self._one("SELECT 1 AS used FROM invitation_uses "
                              "WHERE invitation_id = %s AND user_id = %s", (invitation_id, user_id))
        return row is not None

    async def set_invitation_status(self, invitation_id: str, status: InvitationState) -> None:
        await self.conn.execute(
            b"UPDATE invitations SET status = %s, updated_at = now() WHERE id = %s",
            (str(status), invitation_id))

    async def record_removal(self, session_id: str, user_id: str, removed_by: str) -> None:
        """The owner removed `user_id` now; pending invitations addressed to them are revoked."""
        await self.conn.execute(
            b"INSERT INTO removals (session_id, user_id, removed_by) VALUES (%s, %s, %s) "
            b"ON CONFLICT (session_id, user_id) DO UPDATE "
            b"SET removed_by = EXCLUDED.removed_by, removed_at = now()",
            (session_id, user_id, removed_by))
        await self.conn.execute(
            b"UPDATE invitations SET status = 'revoked', updated_at = now() "
            b"WHERE session_id = %s AND invitee_id = %s AND status = 'pending'",
            (session_id, user_id))

    async def removed_at(self, session_id: str, user_id: str) -> datetime | None:
        """When the owner last removed `user_id` from the session, if ever."""
        row = await self._one("SELECT removed_at FROM removals WHERE session_id = %s "
                              "AND user_id = %s", (session_id, user_id))
        return row["removed_at"] if row else None


# --- the shared document -------------------------------------------------------------------


class DocumentRepository:
    """The document's head row, snapshot and update log (the use case decides what to do)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[DocumentTx]:
        async with self._pool.connection() as conn, conn.transaction():
            # One snapshot for the head row and the tail: a compaction committed
            # between two reads would otherwise hide updates from us.
            await conn.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield DocumentTx(conn)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[DocumentTx]:
        async with self._pool.connection() as conn, conn.transaction():
            yield DocumentTx(conn)


class DocumentTx:
    """Statements on one document inside one transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self._conn = conn

    async def head(self, session_id: str, *, lock: bool = False) -> DocumentHead | None:
        cur = await self._conn.execute(
            b"SELECT upto, version, updated_at FROM documents WHERE session_id = %s FOR UPDATE"
            if lock else b"SELECT upto, version, updated_at FROM documents WHERE session_id = %s",
            (session_id,))
        row = await cur.fetchone()
        return None if row is None else DocumentHead(row["upto"], row["version"], row["updated_at"])

    async def bump(self, session_id: str) -> DocumentHead:
        # The upsert takes the row lock: writers of one document (on any replica)
        # queue here, so versions and update ids follow commit order.
        try:
            cur = await self._conn.execute(
                b"INSERT INTO documents (session_id, version) VALUES (%s, 1) "
                b"ON CONFLICT (session_id) DO UPDATE "
                b"SET version = documents.version + 1, updated_at = now() "
                b"RETURNING upto, version, updated_at",
                (session_id,))
        except psycopg.errors.ForeignKeyViolation:
            # Deleted after the (cached) membership check passed.
            raise NotFound("session not found") from None
        row = await cur.fetchone()
        assert row is not None  # noqa: S101 - RETURNING of an upsert always yields the row
        return DocumentHead(row["upto"], row["version"], row["updated_at"])

    async def snapshot(self, session_id: str) -> bytes:
        cur = await self._conn.execute(b"SELECT state FROM documents WHERE session_id = %s",
                                       (session_id,))
        row = await cur.fetchone()
        return b"" if row is None else bytes(row["state"])

    async def updates_after(self, session_id: str, after_id: int) -> list[tuple[int, bytes]]:
        # Tuples, not dicts: a cold load reads up to the compaction threshold of rows.
        async with self._conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(
                b"SELECT id, update FROM document_updates WHERE session_id = %s AND id > %s "
                b"ORDER BY id", (session_id, after_id))
            return [(int(i), bytes(u)) for i, u in await cur.fetchall()]

    async def append(self, session_id: str, update: bytes) -> int:
        try:
            cur = await self._conn.execute(
                b"INSERT INTO document_updates (session_id, update) VALUES (%s, %s) RETURNING id",
                (session_id, update))
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound("session not found") from None
        row = await cur.fetchone()
        assert row is not None  # noqa: S101 - INSERT ... RETURNING yields the row
        return int(row["id"])

    async def compact(self, session_id: str, state: bytes, upto: int) -> None:
        await self._conn.execute(
            b"UPDATE documents SET state = %s, upto = %s WHERE session_id = %s",
            (state, upto, session_id))
        await self._conn.execute(
            b"DELETE FROM document_updates WHERE session_id = %s AND id <= %s",
            (session_id, upto))
