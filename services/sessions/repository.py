"""All SQL of the sessions service: reads on the pool, writes inside one transaction (`Tx`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from services.common.grpcserver import Pool

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


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a session's event log (seq 0: published live only, never stored)."""

    session_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """A row of the outbox: what happened, for consumers of the domain-events stream."""

    outbox_id: int
    event_id: str
    type: str
    data: dict[str, Any]


class Repository:
    """Reads outside transactions; `transaction()` yields a `Tx` for multi-statement writes."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.pool.connection() as conn, conn.transaction():
            yield Tx(conn)

    async def _one(self, query: str, params: Any) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchone()

    async def _all(self, query: str, params: Any) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall()

    # --- sessions and members ----------------------------------------------------------

    async def create_session(self, title: str, description: str, language: str,
                             owner_id: str) -> dict[str, Any]:
        # One statement: the session and its owner membership commit together.
        row = await self._one(
            f"WITH s AS (INSERT INTO sessions (id, title, description, language, owner_id) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING *), "
            f"m AS (INSERT INTO members (session_id, user_id, role, joined_at, session_created_at) "
            f"SELECT id, owner_id, 'owner', created_at, created_at FROM s) "
            f"SELECT {_SESSION_COLS} FROM s",
            (uuid.uuid4(), title, description, language, owner_id))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return row

    async def session_and_role(self, session_id: str,
                               user_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
        row = await self._one(
            f"SELECT {_SESSION_COLS}, m.role AS caller_role FROM sessions s "
            f"LEFT JOIN members m ON m.session_id = s.id AND m.user_id = %s WHERE s.id = %s",
            (user_id, session_id))
        if row is None:
            return None, None
        role = row.pop("caller_role")
        return row, role

    async def last_seq(self, session_id: str) -> int:
        row = await self._one("SELECT last_seq FROM sessions WHERE id = %s", (session_id,))
        return int(row["last_seq"]) if row else 0

    async def list_sessions(self, user_id: str, limit: int,
                            after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """The user's sessions, newest first: one range scan of members_by_user (keyset)."""
        if after is None:
            return await self._all(
                f"SELECT {_SESSION_LIST_COLS}, m.role FROM members m "
                f"JOIN sessions s ON s.id = m.session_id WHERE m.user_id = %s "
                f"ORDER BY m.session_created_at DESC, m.session_id DESC LIMIT %s",
                (user_id, limit))
        return await self._all(
            f"SELECT {_SESSION_LIST_COLS}, m.role FROM members m "
            f"JOIN sessions s ON s.id = m.session_id WHERE m.user_id = %s "
            f"AND (m.session_created_at, m.session_id) < (%s, %s) "
            f"ORDER BY m.session_created_at DESC, m.session_id DESC LIMIT %s",
            (user_id, after[0], after[1], limit))

    async def members(self, session_id: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT user_id, role, joined_at FROM members WHERE session_id = %s "
            "ORDER BY joined_at, user_id", (session_id,))
        return [{"user_id": str(r["user_id"]), "role": r["role"], "joined_at": r["joined_at"]}
                for r in rows]

    # --- chat --------------------------------------------------------------------------

    async def post_message(self, session_id: str, author_id: str, message_id: str, body: str,
                           client_id: str | None, created_at: datetime,
                           payload: dict[str, Any]) -> int | None:
        """Store a message and its chat.message event under the next seq, in one statement.

        Returns the seq, or None when the author is not a member or the session is
        not active (nothing is written, so no sequence number is used up).
        """
        row = await self._one(
            "WITH s AS (UPDATE sessions SET last_seq = last_seq + 1 "
            "  WHERE id = %(sid)s AND status = 'active' AND EXISTS ("
            "    SELECT 1 FROM members WHERE session_id = %(sid)s AND user_id = %(uid)s) "
            "  RETURNING last_seq), "
            "m AS (INSERT INTO messages (id, session_id, seq, author_id, body, client_id, created_at) "
            "  SELECT %(id)s, %(sid)s, last_seq, %(uid)s, %(body)s, %(cid)s, %(at)s FROM s "
            "  RETURNING seq), "
            "e AS (INSERT INTO events (session_id, seq, type, payload, created_at) "
            "  SELECT %(sid)s, seq, 'chat.message', %(payload)s, %(at)s FROM m) "
            "SELECT seq FROM m",
            {"sid": session_id, "uid": author_id, "id": message_id, "body": body,
             "cid": client_id, "at": created_at, "payload": _json(payload)})
        return int(row["seq"]) if row else None

    async def message_by_client_id(self, session_id: str, author_id: str,
                                   client_id: str) -> dict[str, Any] | None:
        return await self._one(
            "SELECT id, session_id, seq, author_id, body, client_id, created_at FROM messages "
            "WHERE session_id = %s AND author_id = %s AND client_id = %s",
            (session_id, author_id, client_id))

    async def messages(self, session_id: str, after_seq: int, limit: int) -> list[dict[str, Any]]:
        # Ids as text, like the session lists: a page holds up to 100 rows of three ids.
        return await self._all(
            "SELECT id::text AS id, session_id::text AS session_id, seq, "
            "author_id::text AS author_id, body, client_id, created_at FROM messages "
            "WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (session_id, after_seq, limit))

    async def events(self, session_id: str, after_seq: int, limit: int) -> list[Event]:
        rows = await self._all(
            "SELECT seq, type, payload, created_at FROM events "
            "WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (session_id, after_seq, limit))
        return [Event(session_id, int(r["seq"]), r["type"], r["payload"], r["created_at"])
                for r in rows]

    # --- invitations -------------------------------------------------------------------

    async def invitation(self, invitation_id: str) -> dict[str, Any] | None:
        return await self._one(
            f"SELECT {_INVITATION_COLS}, i.token_hash IS NOT NULL AS is_link FROM invitations i "
            f"JOIN sessions s ON s.id = i.session_id WHERE i.id = %s", (invitation_id,))

    async def invitation_by_token(self, digest: bytes) -> dict[str, Any] | None:
        return await self._one(
            f"SELECT {_INVITATION_COLS}, true AS is_link FROM invitations i "
            f"JOIN sessions s ON s.id = i.session_id WHERE i.token_hash = %s", (digest,))

    async def used_invitation(self, invitation_id: str, user_id: str) -> bool:
        row = await self._one("SELECT 1 AS used FROM invitation_uses "
                              "WHERE invitation_id = %s AND user_id = %s", (invitation_id, user_id))
        return row is not None

    async def invitations_for(self, user_id: str, login: str, limit: int,
                              after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """Invitations addressed to the user, usable (pending, unexpired) ones first."""
        params: dict[str, Any] = {"uid": user_id, "login": login, "limit": limit}
        page = ""
        if after is not None:
            params.update(rank=after[0], at=after[1], id=after[2])
            page = ("WHERE rank > %(rank)s OR (rank = %(rank)s AND (created_at, id) < "
                    "(%(at)s, %(id)s))")
        return await self._all(
            f"SELECT * FROM (SELECT {_INVITATION_COLS}, i.token_hash IS NOT NULL AS is_link, "
            f"  CASE WHEN i.status = 'pending' AND i.expires_at > now() THEN 0 ELSE 1 END AS rank "
            f"  FROM invitations i JOIN sessions s ON s.id = i.session_id WHERE {_ADDRESSED}) q "
            f"{page} ORDER BY rank, created_at DESC, id DESC LIMIT %(limit)s", params)

    # --- notifications -----------------------------------------------------------------

    async def notifications(self, user_id: str, login: str, unread_only: bool, limit: int,
                            after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"uid": user_id, "login": login, "limit": limit}
        where = _NOTIFIED
        if unread_only:
            where += " AND n.read_at IS NULL"
        if after is not None:
            params.update(at=after[0], id=after[1])
            where += " AND (n.created_at, n.id) < (%(at)s, %(id)s)"
        return await self._all(
            f"SELECT n.id, n.kind, n.payload, n.read_at, n.created_at FROM notifications n "
            f"WHERE {where} ORDER BY n.created_at DESC, n.id DESC LIMIT %(limit)s", params)

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
    async def stale_outbox(self, older_than: float, limit: int = 100) -> AsyncIterator[list[DomainEvent]]:
        """Outbox rows left behind (Redis was down), locked so one relay handles each."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                b"SELECT id, event_id, type, data FROM outbox "
                b"WHERE created_at < now() - make_interval(secs => %s) "
                b"ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", (older_than, limit))
            rows = [DomainEvent(int(r["id"]), str(r["event_id"]), r["type"], r["data"])
                    for r in await cur.fetchall()]
            yield rows
            if rows:
                await conn.execute(b"DELETE FROM outbox WHERE id = ANY(%s)",
                                   ([r.outbox_id for r in rows],))


class Tx:
    """Statements that run inside one transaction; row locks taken here hold until commit."""

    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
        self.conn = conn

    async def _one(self, query: str, params: Any) -> dict[str, Any] | None:
        cur = await self.conn.execute(query.encode(), params)
        return await cur.fetchone()

    async def _all(self, query: str, params: Any) -> list[dict[str, Any]]:
        cur = await self.conn.execute(query.encode(), params)
        return await cur.fetchall()

    async def lock_session(self, session_id: str, user_id: str) -> dict[str, Any] | None:
        """The session row, locked, with the user's role as `caller_role` (None if not a member)."""
        return await self._one(
            f"SELECT {_SESSION_COLS}, m.role AS caller_role FROM sessions s "
            f"LEFT JOIN members m ON m.session_id = s.id AND m.user_id = %s "
            f"WHERE s.id = %s FOR UPDATE OF s", (user_id, session_id))

    async def update_session(self, session_id: str, changes: dict[str, str],
                             *, end: bool = False) -> dict[str, Any]:
        sets = [f"{column} = %({column})s" for column in changes]  # columns come from code
        if end:
            sets.append("status = 'ended', ended_at = now()")
        row = await self._one(
            f"UPDATE sessions s SET {', '.join(sets)}, version = version + 1, updated_at = now() "
            f"WHERE id = %(sid)s RETURNING {_SESSION_COLS}", {**changes, "sid": session_id})
        assert row is not None  # noqa: S101 - the row is locked by this transaction
        return row

    async def set_owner(self, session_id: str, old_owner: str, new_owner: str) -> dict[str, Any]:
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
        return row

    async def delete_session(self, session_id: str) -> list[str]:
        """Delete the session and everything under it; returns the former members' ids."""
        rows = await self._all("SELECT user_id FROM members WHERE session_id = %s", (session_id,))
        await self.conn.execute(b"DELETE FROM notifications WHERE session_id = %s", (session_id,))
        # The shared document's tables (migration 050) carry no foreign key.
        await self.conn.execute(b"DELETE FROM document_updates WHERE session_id = %s", (session_id,))
        await self.conn.execute(b"DELETE FROM documents WHERE session_id = %s", (session_id,))
        await self.conn.execute(b"DELETE FROM sessions WHERE id = %s", (session_id,))
        return [str(r["user_id"]) for r in rows]

    async def member(self, session_id: str, user_id: str) -> dict[str, Any] | None:
        return await self._one(
            "SELECT user_id, role, joined_at FROM members WHERE session_id = %s AND user_id = %s "
            "FOR UPDATE", (session_id, user_id))

    async def add_member(self, session_id: str, user_id: str, role: str,
                         session_created_at: datetime) -> dict[str, Any]:
        row = await self._one(
            "INSERT INTO members (session_id, user_id, role, session_created_at) "
            "VALUES (%s, %s, %s, %s) RETURNING user_id, role, joined_at",
            (session_id, user_id, role, session_created_at))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return row

    async def set_role(self, session_id: str, user_id: str, role: str) -> dict[str, Any]:
        row = await self._one(
            "UPDATE members SET role = %s WHERE session_id = %s AND user_id = %s "
            "RETURNING user_id, role, joined_at", (role, session_id, user_id))
        assert row is not None  # noqa: S101 - the caller locked the member row
        return row

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

    async def add_outbox(self, event_type: str, data: dict[str, Any]) -> DomainEvent:
        event_id = str(uuid.uuid4())
        row = await self._one(
            "INSERT INTO outbox (event_id, type, data) VALUES (%s, %s, %s) RETURNING id",
            (event_id, event_type, _json(data)))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return DomainEvent(int(row["id"]), event_id, event_type, data)

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

    async def create_invitation(self, session_id: str, role: str, invitee_id: str | None,
                                invitee_login: str | None, digest: bytes | None, max_uses: int,
                                invited_by: str, expires_in: int) -> dict[str, Any]:
        row = await self._one(
            "INSERT INTO invitations (id, session_id, role, invitee_id, invitee_login, token_hash, "
            "max_uses, invited_by, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
            "RETURNING id, session_id, role, status, invitee_id, invitee_login, max_uses, uses, "
            "invited_by, expires_at, created_at",
            (uuid.uuid4(), session_id, role, invitee_id, invitee_login, digest, max_uses,
             invited_by, expires_in))
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields the row
        return row

    async def lock_invitation(self, invitation_id: str) -> dict[str, Any] | None:
        return await self._one(
            "SELECT id, session_id, role, status, invitee_id, invitee_login, max_uses, uses, "
            "invited_by, expires_at, created_at, token_hash IS NOT NULL AS is_link, now() AS now "
            "FROM invitations WHERE id = %s FOR UPDATE", (invitation_id,))

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

    async def set_invitation_status(self, invitation_id: str, status: str) -> None:
        await self.conn.execute(
            b"UPDATE invitations SET status = %s, updated_at = now() WHERE id = %s",
            (status, invitation_id))

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
