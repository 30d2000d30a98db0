-- The shared Yjs document of each session: a compacted snapshot plus the log of
-- updates applied after it. The document's state is `state` + every update with
-- id > `upto`, in id order.

CREATE TABLE IF NOT EXISTS documents (
    session_id  uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    -- Encoded Yjs state (an update from the empty document) of everything up to `upto`.
    state       bytea NOT NULL DEFAULT '\x0000'::bytea,
    upto        bigint NOT NULL DEFAULT 0,
    -- Incremented by every stored update; clients and gateways compare it.
    version     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS document_updates (
    -- The head row exists before any update (the writer upserts it first).
    session_id  uuid NOT NULL REFERENCES documents (session_id) ON DELETE CASCADE,
    id          bigserial NOT NULL,
    update      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Serves the tail read (session_id, id > upto ORDER BY id) and the compaction delete.
    PRIMARY KEY (session_id, id)
);
