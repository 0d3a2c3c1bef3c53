-- Failed logins that named no account are counted like an account's (by a hash of the tenant
-- and the name given, never the name itself), so an unknown name and a locked account take the
-- same steps and answer alike. Rows are forgotten a while after their last failure.

CREATE TABLE login_failures (
    name_key        TEXT PRIMARY KEY NOT NULL,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    lockouts        BIGINT NOT NULL DEFAULT 0,
    last_failed_at  BIGINT NOT NULL
);

CREATE INDEX login_failures_last_failed_at ON login_failures (last_failed_at);
