-- The transactional outbox: events for other services (channel 'event') and mail to send
-- (channel 'mail'), written in the transaction of the change they announce and delivered
-- afterwards by relays, at least once. Ids are UUIDv7: the order of delivery.

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    channel          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    subject          TEXT,
    payload          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    delivered_at     BIGINT,
    parked_at        BIGINT
);

CREATE INDEX outbox_pending ON outbox (channel, id) WHERE delivered_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_tenant ON outbox (tenant_id, id);
CREATE INDEX outbox_created_at ON outbox (created_at);

-- One relay of a channel runs at a time among instances: the holder of its lease, which it
-- renews while it runs; another instance takes over once a lease has expired.
CREATE TABLE outbox_leases (
    channel     TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Single-use tokens mailed as links (password reset, email verification): only their SHA-256
-- is stored. A newer token of a user and purpose supersedes the older ones.
CREATE TABLE action_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    purpose     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE INDEX action_tokens_user ON action_tokens (user_id, purpose);
CREATE INDEX action_tokens_expires_at ON action_tokens (expires_at);
