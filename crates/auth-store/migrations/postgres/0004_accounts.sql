-- Accounts and authorization: lockout state an admin can clear, a platform-wide
-- `superadmin` role in the default tenant, the admin permissions the admin API checks, and
-- an index for listing a tenant's users in a stable order.

ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;

CREATE INDEX users_tenant_id ON users (tenant_id, id);

-- A tenant's `admin` holds the permissions of its own tenant; signing keys and tenants are
-- the platform's, held by `superadmin` (a role of the default tenant only).
DELETE FROM role_permissions
    WHERE role_name = 'admin' AND permission IN ('sessions:write', 'keys:write', 'tenants:write');
INSERT INTO role_permissions (tenant_id, role_name, permission)
    SELECT id, 'admin', 'sessions:revoke' FROM tenants
    WHERE EXISTS (SELECT 1 FROM roles WHERE roles.tenant_id = tenants.id AND roles.name = 'admin')
    ON CONFLICT DO NOTHING;

INSERT INTO roles (tenant_id, name, description, builtin, created_at) VALUES
    ('default', 'superadmin', 'Platform administrators: every tenant, keys and tenants', 1,
     CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))
    ON CONFLICT DO NOTHING;
INSERT INTO role_permissions (tenant_id, role_name, permission) VALUES
    ('default', 'superadmin', 'superadmin'),
    ('default', 'superadmin', 'users:read'),
    ('default', 'superadmin', 'users:write'),
    ('default', 'superadmin', 'roles:read'),
    ('default', 'superadmin', 'roles:write'),
    ('default', 'superadmin', 'sessions:revoke'),
    ('default', 'superadmin', 'audit:read'),
    ('default', 'superadmin', 'keys:read'),
    ('default', 'superadmin', 'keys:rotate'),
    ('default', 'superadmin', 'tenants:write')
    ON CONFLICT DO NOTHING;

-- Sessions of erased users: their rows go with the user, but every instance must still
-- learn that they were revoked (its revocation list polls for revocations since a time).
CREATE TABLE erased_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    revoked_at  BIGINT NOT NULL
);

CREATE INDEX erased_sessions_revoked_at ON erased_sessions (revoked_at);
