-- Sessions the sessions service deleted, as review learnt of them (the `session.deleted`
-- domain event). Their reviews are deleted when the event arrives, and again by a sweep
-- while the entry lives: it catches a review an import was still writing at that moment.
CREATE TABLE deleted_sessions (
    session_id uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deleted_sessions_at ON deleted_sessions (deleted_at);
