"""Realtime settings from the environment (all optional; defaults suit interactive use)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Env, document_max_bytes

# Fixed by the public contract (docs/api.md): a bigger events frame closes with 1009.
EVENTS_MAX_FRAME = 64 * 1024
# A document frame carries at most one update of DOCUMENT_MAX_BYTES (a y-websocket sync
# step 2 carries a client's whole document) behind two type bytes and a varuint length.
DOC_FRAME_FRAMING = 16


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    send_queue: int
    rate_per_second: float
    rate_burst: int
    auth_grace: float
    hello_wait: float
    presence_heartbeat: float
    presence_ttl: float
    doc_max_frame: int
    doc_rate_per_second: float
    doc_rate_burst: int
    awareness_clients: int
    awareness_entry_bytes: int
    close_timeout: float
    subscribe_timeout: float
    seq_check: float

    @classmethod
    def from_env(cls, env: Env) -> RealtimeConfig:
        heartbeat = env.float("REALTIME_PRESENCE_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
        return cls(
            send_queue=env.int("REALTIME_SEND_QUEUE", 1000, minimum=10, maximum=1_000_000),
            # 0 disables the per-connection limit (benchmarks).
            rate_per_second=env.float("REALTIME_RATE_PER_SECOND", 20.0),
            rate_burst=env.int("REALTIME_RATE_BURST", 40, minimum=1, maximum=100_000),
            auth_grace=env.float("REALTIME_AUTH_GRACE_SECONDS", 30.0),
            # How long sequenced events wait for a client's `hello` after the welcome.
            hello_wait=env.float("REALTIME_HELLO_WAIT_SECONDS", 0.5),
            presence_heartbeat=heartbeat,
            presence_ttl=env.float("REALTIME_PRESENCE_TTL_SECONDS", 3 * heartbeat,
                                   minimum=heartbeat),
            # Follows the document limit: any update the sessions service could store fits.
            doc_max_frame=max(EVENTS_MAX_FRAME, document_max_bytes(env) + DOC_FRAME_FRAMING),
            # Document socket frames per connection (a keystroke is an update and an awareness
            # frame); a client over it is closed with 4429. 0 disables the limit.
            doc_rate_per_second=env.float("REALTIME_DOC_RATE_PER_SECOND", 100.0),
            doc_rate_burst=env.int("REALTIME_DOC_RATE_BURST", 300, minimum=1, maximum=100_000),
            # Awareness client ids one document connection may own, and bytes of one entry's
            # state JSON: what a joining client is sent stays small.
            awareness_clients=env.int("REALTIME_AWARENESS_CLIENTS", 4, minimum=1, maximum=64),
            awareness_entry_bytes=env.int("REALTIME_AWARENESS_ENTRY_BYTES", 4096, minimum=64,
                                          maximum=64 * 1024),
            close_timeout=env.float("REALTIME_CLOSE_TIMEOUT_SECONDS", 2.0, minimum=0.1),
            subscribe_timeout=env.float("REALTIME_SUBSCRIBE_TIMEOUT_SECONDS", 3.0, minimum=0.1),
            # How often each session's last_seq is compared with what clients were sent:
            # the safety net for an event whose publish was lost with nothing after it.
            seq_check=env.float("REALTIME_SEQ_CHECK_SECONDS", 15.0, minimum=0.1),
        )
