-- AI review jobs, their findings in streamed order, and the result cache.

CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    session_id uuid NOT NULL,
    review_id uuid,
    kind text NOT NULL CHECK (kind IN ('review', 'document')),
    -- The files asked for (empty: every changed file of the review).
    paths text[] NOT NULL DEFAULT '{}',
    requested_by uuid NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    summary text NOT NULL DEFAULT '',
    error text,
    files_reviewed integer NOT NULL DEFAULT 0,
    files_reused integer NOT NULL DEFAULT 0,
    -- How many times a runner picked the job up (a crashed replica's jobs are retried).
    attempts integer NOT NULL DEFAULT 0,
    -- The replica running it and its last sign of life.
    runner text,
    heartbeat_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);

-- The queue: runners take the oldest queued job with FOR UPDATE SKIP LOCKED.
CREATE INDEX jobs_queued ON jobs (created_at, id) WHERE status = 'queued';
-- The reaper looks for running jobs whose runner stopped beating.
CREATE INDEX jobs_running ON jobs (heartbeat_at) WHERE status = 'running';
-- The per-user limit counts a user's unfinished jobs.
CREATE INDEX jobs_user_active ON jobs (requested_by) WHERE status IN ('queued', 'running');

CREATE TABLE findings (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- 0-based position: the order the findings were streamed in.
    idx integer NOT NULL,
    path text NOT NULL,
    line integer NOT NULL,
    end_line integer NOT NULL,
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
    category text NOT NULL,
    message text NOT NULL,
    suggestion text,
    source text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, idx)
);

-- Findings per (provider, model, sha256 of path + content [+ lines sent]): a file
-- reviewed once is not sent to the provider again while its entry lives.
CREATE TABLE result_cache (
    provider text NOT NULL,
    model text NOT NULL,
    content_key text NOT NULL,
    findings jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, model, content_key)
);

-- Pruning drops entries nobody used for a while.
CREATE INDEX result_cache_used ON result_cache (used_at);
