-- Earlier password hashes of each user (Argon2id only), for AUTH_PASSWORD_HISTORY: a new
-- password may not repeat the current one nor the newest of these. Erased with the user.

CREATE TABLE password_history (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE INDEX password_history_user ON password_history (user_id, created_at);
