-- Users (internal UUID identity, GitHub identity kept current), encrypted GitHub
-- tokens, signing keys with rotation, and refresh-token families.
CREATE TABLE users (
    id           uuid PRIMARY KEY,
    github_id    bigint NOT NULL UNIQUE,
    github_login text NOT NULL,
    name         text NOT NULL DEFAULT '',
    avatar_url   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Invitations look users up by login, case-insensitively as GitHub does.
CREATE INDEX users_login_lower ON users (lower(github_login));

CREATE TABLE github_tokens (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed     bytea NOT NULL,          -- AES-GCM nonce || ciphertext, user id as associated data
    scope      text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    sealed_key   bytea NOT NULL,        -- private key (raw Ed25519), sealed like GitHub tokens
    public_jwk   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,           -- no longer signs
    verify_until timestamptz            -- dropped from JWKS after this
);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,  -- sha256 of the token; the token itself is never stored
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
