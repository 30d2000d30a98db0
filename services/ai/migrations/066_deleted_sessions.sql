-- Sessions the sessions service deleted, as ai learnt of them (the `session.deleted`
-- domain event). Their jobs (and findings) are deleted when the event arrives, and again
-- by a sweep while the entry lives: it catches a job that was being created at that moment.
CREATE TABLE deleted_sessions (
    session_id uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deleted_sessions_at ON deleted_sessions (deleted_at);
-- Purging a session finds its jobs without scanning the table.
CREATE INDEX jobs_session_purge ON jobs (session_id);
