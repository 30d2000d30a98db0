"""Fast timestamp conversions agree with protobuf's own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.timeconv import (
    datetime_rfc3339,
    epoch_rfc3339,
    now_rfc3339,
    rfc3339,
    set_timestamp,
    timestamp_rfc3339,
    to_timestamp,
)


@pytest.mark.parametrize("value", [
    datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
])
def test_to_timestamp_matches_protobuf(value: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value)
    assert to_timestamp(value) == expected
    assert to_timestamp(value).ToDatetime(tzinfo=UTC) == value.astimezone(UTC)
    in_place = Timestamp(seconds=1, nanos=2)  # overwritten, not added to
    set_timestamp(in_place, value)
    assert in_place == expected


def test_rfc3339_formats() -> None:
    value = datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC)
    assert timestamp_rfc3339(to_timestamp(value)) == "2026-11-22T01:02:03.456789Z"
    assert datetime_rfc3339(value) == "2026-11-22T01:02:03.456789Z"
    assert timestamp_rfc3339(Timestamp()) is None
    whole = datetime(2026, 1, 1, tzinfo=UTC)
    assert timestamp_rfc3339(to_timestamp(whole)) == "2026-01-01T00:00:00.000000Z"
    assert datetime.fromisoformat(timestamp_rfc3339(to_timestamp(value)) or "") == value


def test_rfc3339_stays_exact_past_the_bound_of_its_per_second_cache() -> None:
    # More distinct seconds than the cache holds, each formatted twice (a miss, then a hit,
    # or a miss again after the cache was cleared): every answer matches datetime's own.
    start = datetime(2026, 11, 22, tzinfo=UTC)
    for step in range(0, 40_000, 2):
        value = start + timedelta(seconds=step * 37, microseconds=step % 1_000_000)
        expected = value.isoformat(timespec="microseconds").replace("+00:00", "Z")
        assert timestamp_rfc3339(to_timestamp(value)) == expected
        assert timestamp_rfc3339(to_timestamp(value)) == expected


def test_every_rfc3339_helper_writes_the_one_format() -> None:
    shape = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
    assert shape.fullmatch(now_rfc3339())
    assert epoch_rfc3339(0) == "1970-01-01T00:00:00.000000Z"
    assert epoch_rfc3339(1.5) == "1970-01-01T00:00:01.500000Z"
    offset = datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert rfc3339(offset) == "2026-06-01T06:30:00.000001Z"
    assert rfc3339(datetime(2026, 6, 1, 12)) == "2026-06-01T12:00:00.000000Z"  # naive: UTC
    assert rfc3339(to_timestamp(offset)) == "2026-06-01T06:30:00.000001Z"
    assert rfc3339(None) is None
    assert rfc3339(Timestamp()) is None
