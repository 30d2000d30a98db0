-- Fair sharing of the workers and the per-session cap (services/ai/repository.py).

-- The per-session cap counts a session's unfinished jobs; the fair order counts the
-- jobs running per session.
CREATE INDEX jobs_session_active ON jobs (session_id) WHERE status IN ('queued', 'running');
-- The fair order asks when each waiting user was last served.
CREATE INDEX jobs_user_started ON jobs (requested_by, started_at);
