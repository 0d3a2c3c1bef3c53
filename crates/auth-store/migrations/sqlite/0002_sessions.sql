-- Sessions with their refresh-token chains, the audit trail, and permissions granted by roles.

CREATE TABLE sessions (
    id                   TEXT PRIMARY KEY NOT NULL,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id            TEXT NOT NULL,
    user_agent           TEXT,
    ip                   TEXT,
    created_at           BIGINT NOT NULL,
    last_used_at         BIGINT NOT NULL,
    idle_expires_at      BIGINT NOT NULL,
    absolute_expires_at  BIGINT NOT NULL,
    revoked_at           BIGINT,
    revoked_reason       TEXT
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);

-- Only the SHA-256 of each refresh token is stored. A rotated token keeps its successor
-- sealed under a key derived from the token itself, for the grace window.
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    used_at           BIGINT,
    successor_sealed  TEXT
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    user_id     TEXT,
    session_id  TEXT,
    ip          TEXT,
    user_agent  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL
);

CREATE INDEX audit_events_user ON audit_events (user_id, created_at);
CREATE INDEX audit_events_kind ON audit_events (kind, created_at);

CREATE TABLE role_permissions (
    tenant_id   TEXT NOT NULL,
    role_name   TEXT NOT NULL,
    permission  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, role_name, permission),
    FOREIGN KEY (tenant_id, role_name) REFERENCES roles (tenant_id, name) ON DELETE CASCADE
);

INSERT INTO role_permissions (tenant_id, role_name, permission) VALUES
    ('default', 'admin', 'users:read'),
    ('default', 'admin', 'users:write'),
    ('default', 'admin', 'roles:read'),
    ('default', 'admin', 'roles:write'),
    ('default', 'admin', 'sessions:write'),
    ('default', 'admin', 'audit:read'),
    ('default', 'admin', 'keys:read'),
    ('default', 'admin', 'keys:write'),
    ('default', 'admin', 'tenants:write');
