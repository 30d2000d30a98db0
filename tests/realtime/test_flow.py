"""Flow control: token bucket, in-order delivery across replay and gaps, token-expiry steps."""

from __future__ import annotations

from gateway.realtime.flow import ExpiryStep, SeqGate, TokenBucket, expiry_step


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(20, 40, clock)
    assert all(bucket.allow() for _ in range(40))
    assert not bucket.allow()
    assert 0 < bucket.retry_after() <= 0.05
    clock.now += 0.5  # 10 more tokens
    assert sum(bucket.allow() for _ in range(20)) == 10
    clock.now += 100  # refills to the burst, never beyond
    assert sum(bucket.allow() for _ in range(100)) == 40


def test_zero_rate_disables_the_limit() -> None:
    bucket = TokenBucket(0, 1, Clock())
    assert all(bucket.allow() for _ in range(1000))


def test_gate_holds_until_released_then_delivers_in_order_without_duplicates() -> None:
    gate: SeqGate[str] = SeqGate()
    gate.delivered = 5
    assert gate.offer(7, "e7") == ([], False)
    assert gate.offer(6, "e6") == ([], False)
    assert gate.offer(4, "old") == ([], False)
    assert gate.release() == (["e6", "e7"], False)
    assert gate.delivered == 7
    assert gate.offer(7, "again") == ([], False)
    assert gate.offer(8, "e8") == (["e8"], False)


def test_gate_reports_a_gap_and_a_refill_fills_it_without_a_seam() -> None:
    gate: SeqGate[str] = SeqGate()
    gate.release()
    assert gate.offer(1, "e1") == (["e1"], False)
    # 2 and 3 were missed (a Redis blip); 4 arrives live.
    assert gate.offer(4, "e4") == ([], True)
    gate.hold()
    # Live events during the refill wait in the buffer.
    assert gate.offer(5, "e5") == ([], False)
    sent = [seq for seq in (2, 3, 4) if gate.advance(seq)]
    assert sent == [2, 3, 4]
    assert gate.release() == (["e5"], False)
    assert gate.delivered == 5


def test_gate_replay_skips_what_was_already_delivered() -> None:
    gate: SeqGate[str] = SeqGate()
    gate.release()
    for seq in (1, 2, 3):
        gate.offer(seq, f"e{seq}")
    assert [gate.advance(seq) for seq in (2, 3, 4)] == [False, False, True]


def test_gate_can_skip_a_hole_that_never_fills() -> None:
    gate: SeqGate[str] = SeqGate()
    gate.release()
    gate.offer(1, "e1")
    assert gate.offer(3, "e3") == ([], True)
    assert gate.skip_hole() == (["e3"], False)
    assert gate.delivered == 3


def test_gate_drops_an_oversized_buffer_and_asks_for_a_refill() -> None:
    gate: SeqGate[str] = SeqGate(max_buffer=3)
    for seq in (2, 3, 4):
        gate.offer(seq, "x")
    assert gate.offer(5, "x") == ([], True)
    assert gate.release() == ([], False)


def test_expiry_steps_wait_then_warn_then_close() -> None:
    assert expiry_step(10, 20, 5, False) == ExpiryStep("wait", 10)
    assert expiry_step(20, 20, 5, False) == ExpiryStep("warn", 5)
    assert expiry_step(22, 20, 5, True) == ExpiryStep("wait", 3)
    assert expiry_step(25, 20, 5, True) == ExpiryStep("close")
    assert expiry_step(30, 20, 5, False) == ExpiryStep("close")
