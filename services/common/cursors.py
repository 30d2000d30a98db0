"""Opaque cursors of newest-first lists keyed by (created_at, id), shared by the services
whose lists page that way (review's reviews and threads, ai's jobs)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from services.common.errors import FieldViolation, InvalidArgument


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """An opaque cursor after an item of a newest-first list."""
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The (created_at, id) a cursor of encode_cursor names; None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, item_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, str(uuid.UUID(item_id))
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("cursor is not a cursor returned by this list", [
            FieldViolation("cursor", "is not a cursor returned by this list")]) from None
