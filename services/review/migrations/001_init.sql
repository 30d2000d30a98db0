-- Reviews imported from GitHub, their files (patch and parsed hunks), line
-- threads with comments, verdicts, and the publish state of each review.
CREATE TABLE reviews (
    id               uuid PRIMARY KEY,
    session_id       uuid NOT NULL,            -- owned by the sessions service; no foreign key
    repo             text NOT NULL,            -- "owner/name" as the caller spelled it
    pull_number      integer,                  -- NULL for an imported ref
    ref              text NOT NULL DEFAULT '',
    head_sha         text NOT NULL,
    base_sha         text NOT NULL,
    title            text NOT NULL,
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'published')),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- NULL, 'publishing' (a publish holds the lease since publish_started_at),
    -- 'uncertain' (GitHub may have the review: look for its marker before posting),
    -- 'published'.
    publish_state      text CHECK (publish_state IN ('publishing', 'uncertain', 'published')),
    publish_started_at timestamptz,
    github_review_id   bigint,
    github_review_url  text NOT NULL DEFAULT '',
    published_at       timestamptz
);
-- ListReviews: a session's reviews, newest first, keyset-paginated.
CREATE INDEX reviews_session_created ON reviews (session_id, created_at DESC, id DESC);
-- Webhooks find every review of a pull request (GitHub names are case-insensitive).
CREATE INDEX reviews_pull ON reviews (lower(repo), pull_number) WHERE pull_number IS NOT NULL;

CREATE TABLE review_files (
    review_id     uuid NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    path          text NOT NULL,
    ordinal       integer NOT NULL,            -- GitHub's order
    status        text NOT NULL,
    additions     integer NOT NULL,
    deletions     integer NOT NULL,
    previous_path text NOT NULL DEFAULT '',
    patch         text NOT NULL DEFAULT '',
    hunks         jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (review_id, path)
);

CREATE TABLE threads (
    id          uuid PRIMARY KEY,
    review_id   uuid NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    path        text NOT NULL,
    side        text NOT NULL CHECK (side IN ('LEFT', 'RIGHT')),
    line        integer NOT NULL CHECK (line > 0),
    start_line  integer CHECK (start_line > 0 AND start_line <= line),
    commit_sha  text NOT NULL,                 -- the review's head when the thread was made
    -- The text of the anchored lines then: a refresh marks the thread outdated
    -- when the same lines read differently at the new head.
    anchor_text text NOT NULL,
    resolved    boolean NOT NULL DEFAULT false,
    outdated    boolean NOT NULL DEFAULT false,
    created_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- ListThreads: a review's threads, oldest first, keyset-paginated.
CREATE INDEX threads_review_created ON threads (review_id, created_at, id);

CREATE TABLE comments (
    id         uuid PRIMARY KEY,
    thread_id  uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    author_id  uuid NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_thread_created ON comments (thread_id, created_at, id);

CREATE TABLE verdicts (
    id         uuid PRIMARY KEY,
    review_id  uuid NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    author_id  uuid NOT NULL,
    state      text NOT NULL CHECK (state IN ('approve', 'request_changes', 'comment')),
    body       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The latest verdict of a review decides what publishing posts.
CREATE INDEX verdicts_review_created ON verdicts (review_id, created_at DESC, id DESC);
