-- Job lists (GET /api/v1/sessions/{id}/ai, GET /api/v1/reviews/{id}/ai): newest first
-- per session and per review, read by a (created_at, id) keyset.
CREATE INDEX jobs_session_list ON jobs (session_id, created_at DESC, id DESC);
CREATE INDEX jobs_review_list ON jobs (review_id, created_at DESC, id DESC)
    WHERE review_id IS NOT NULL;
