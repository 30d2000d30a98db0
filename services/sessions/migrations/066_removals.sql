-- Who the owner removed from a session, and when. An invitation made before that
-- moment no longer admits them: only one the owner makes afterwards lets them back.
-- (Members who leave by themselves are not recorded: any open link takes them back.)
CREATE TABLE removals (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    removed_by uuid NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, user_id)
);
