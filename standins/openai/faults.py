"""Failure switches: per request (X-Standin-Fault header) and app-wide (control routes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from standins.openai.config import MAX_SLOW_MS

FAULT_HEADER = "X-Standin-Fault"
SLOW_MS_HEADER = "X-Standin-Slow-Ms"


class Fault(StrEnum):
    """Names accepted in the header and by ``POST /_standin/faults``."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    MALFORMED = "malformed"
    OUT_OF_RANGE = "out_of_range"
    DISCONNECT = "disconnect"


class FaultSpecError(ValueError):
    """A fault name or option that the stand-in does not know."""


def parse_fault_names(names: Iterable[str]) -> frozenset[Fault]:
    """Validate names; unknown ones are an error so a typo in a test cannot pass silently."""
    faults: set[Fault] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        try:
            faults.add(Fault(name))
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise FaultSpecError(f"unknown fault {name!r}; known faults: {known}") from None
    return frozenset(faults)


def parse_fault_header(value: str | None) -> frozenset[Fault]:
    """``X-Standin-Fault: slow, malformed`` -> {SLOW, MALFORMED}."""
    return parse_fault_names(value.split(",")) if value else frozenset()


def parse_slow_ms(value: object) -> int:
    """A delay in milliseconds, bounded so a typo cannot hang a test run for hours."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FaultSpecError("slow_ms must be an integer")
    try:
        slow_ms = int(value)
    except ValueError:
        raise FaultSpecError("slow_ms must be an integer") from None
    if not 0 <= slow_ms <= MAX_SLOW_MS:
        raise FaultSpecError(f"slow_ms must be between 0 and {MAX_SLOW_MS}")
    return slow_ms


@dataclass(slots=True)
class FaultBoard:
    """App-wide faults set by the control route, optionally for the next N requests only."""

    faults: frozenset[Fault] = frozenset()
    remaining: int | None = None  # None: until cleared
    slow_ms: int | None = None  # None: the config default

    def set(self, faults: frozenset[Fault], times: int | None, slow_ms: int | None) -> None:
        """Replace the current switches (setting is not additive, so tests start clean)."""
        self.faults, self.remaining, self.slow_ms = faults, times, slow_ms

    def clear(self) -> None:
        """Turn every app-wide switch off."""
        self.set(frozenset(), None, None)

    def take(self) -> tuple[frozenset[Fault], int | None]:
        """Faults for one request; consumes one of ``times``. Synchronous, so race-free."""
        if not self.faults:
            return frozenset(), None
        taken = (self.faults, self.slow_ms)
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.clear()
        return taken

    def describe(self) -> dict[str, object]:
        """JSON view for the control routes."""
        return {
            "faults": sorted(f.value for f in self.faults),
            "times": self.remaining,
            "slow_ms": self.slow_ms,
        }


@dataclass(frozen=True, slots=True)
class AppliedFaults:
    """The faults in force for one request after merging header and board."""

    faults: frozenset[Fault] = field(default_factory=frozenset)
    slow_ms: int = 0

    def __contains__(self, fault: Fault) -> bool:
        return fault in self.faults

    def names(self) -> list[str]:
        """Sorted names, for the request log."""
        return sorted(f.value for f in self.faults)
