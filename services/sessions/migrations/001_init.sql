-- Sessions, members, invitations, chat, the per-session event log, notifications, outbox.

CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    language    text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    owner_id    uuid NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    -- The per-session sequence: every sequenced event (chat included) takes
    -- last_seq + 1 under this row's lock, so numbers are gap-free and ordered.
    last_seq    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz
);

CREATE TABLE members (
    session_id         uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id            uuid NOT NULL,
    role               text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    joined_at          timestamptz NOT NULL DEFAULT now(),
    -- Copied from the session so "my sessions, newest first" is one index range scan.
    session_created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
-- Exactly one owner per session (transfer demotes before it promotes).
CREATE UNIQUE INDEX members_one_owner ON members (session_id) WHERE role = 'owner';
-- Keyset pagination of a user's sessions: (session_created_at DESC, session_id DESC).
CREATE INDEX members_by_user ON members (user_id, session_created_at DESC, session_id DESC)
    INCLUDE (role);

CREATE TABLE events (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    type       text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE messages (
    id         uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    author_id  uuid NOT NULL,
    body       text NOT NULL,
    client_id  text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, seq)
);
-- A client retrying a send with the same client_id gets the stored message back.
CREATE UNIQUE INDEX messages_client_id ON messages (session_id, author_id, client_id)
    WHERE client_id IS NOT NULL;

CREATE TABLE invitations (
    id            uuid PRIMARY KEY,
    session_id    uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role          text NOT NULL CHECK (role IN ('editor', 'viewer')),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
    -- Addressed invitations name a user, or a GitHub login with no Tandem user yet
    -- (matched by the login claim when that person signs in).
    invitee_id    uuid,
    invitee_login text,
    -- Link invitations: sha256 of the token; the token itself is never stored.
    token_hash    bytea UNIQUE,
    max_uses      integer NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
    uses          integer NOT NULL DEFAULT 0,
    invited_by    uuid NOT NULL,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (invitee_id IS NOT NULL OR invitee_login IS NOT NULL OR token_hash IS NOT NULL)
);
CREATE INDEX invitations_by_invitee ON invitations (invitee_id, created_at DESC, id DESC)
    WHERE invitee_id IS NOT NULL;
CREATE INDEX invitations_by_login ON invitations (lower(invitee_login), created_at DESC, id DESC)
    WHERE invitee_login IS NOT NULL AND invitee_id IS NULL;
CREATE INDEX invitations_by_session ON invitations (session_id);

-- Who accepted which invitation: makes a second accept by the same user harmless.
CREATE TABLE invitation_uses (
    invitation_id uuid NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL,
    accepted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invitation_id, user_id)
);

CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    recipient_id    uuid,
    recipient_login text,
    -- 'user:<uuid>' or 'login:<lower-case login>': with event_id, the idempotency key
    -- that makes a redelivered domain event create nothing new.
    recipient_key   text NOT NULL,
    event_id        uuid NOT NULL,
    session_id      uuid,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    read_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, recipient_key)
);
CREATE INDEX notifications_by_user ON notifications (recipient_id, created_at DESC, id DESC)
    WHERE recipient_id IS NOT NULL;
CREATE INDEX notifications_by_login
    ON notifications (lower(recipient_login), created_at DESC, id DESC)
    WHERE recipient_login IS NOT NULL;
CREATE INDEX notifications_by_session ON notifications (session_id) WHERE session_id IS NOT NULL;

-- Domain events written in the transaction of the change they describe; published to
-- the Redis Stream after commit and deleted, or later by the relay if Redis was down.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    event_id   uuid NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_age ON outbox (created_at);
