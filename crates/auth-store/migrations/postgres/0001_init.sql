-- Tenants, users, roles and signing keys. Timestamps are Unix seconds; ids are text
-- (UUIDv7 for users, short identifiers for tenants and roles).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

INSERT INTO tenants (id, name, created_at) VALUES ('default', 'Default', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT));

CREATE TABLE users (
    id                   TEXT PRIMARY KEY NOT NULL,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    email                TEXT NOT NULL,
    email_normalized     TEXT NOT NULL,
    username             TEXT,
    username_normalized  TEXT,
    password_hash        TEXT NOT NULL,
    email_verified_at    BIGINT,
    disabled_at          BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email_normalized),
    CONSTRAINT users_tenant_username_key UNIQUE (tenant_id, username_normalized)
);

CREATE TABLE roles (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    builtin      SMALLINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

INSERT INTO roles (tenant_id, name, description, builtin, created_at) VALUES
    ('default', 'admin', 'Administrators', 1, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)),
    ('default', 'user', 'Every signed-up user', 1, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT));

CREATE TABLE user_roles (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    role_name   TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, role_name),
    FOREIGN KEY (tenant_id, role_name) REFERENCES roles (tenant_id, name) ON DELETE CASCADE
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY NOT NULL,
    algorithm     TEXT NOT NULL,
    public_key    BYTEA NOT NULL,
    private_key   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'removed')),
    created_at    BIGINT NOT NULL,
    activated_at  BIGINT,
    retired_at    BIGINT
);

-- At most one key signs at any time, even when several instances start together.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
