-- The audit log: who acted (`actor_id`), the request (`request_id`), the `outcome`, the
-- details under the API's name (`details`), indexes for the admin query (tenant + time; the
-- user + time index exists) and for the retention purge (time). Event types take one scheme
-- (`<action>.<result>`, `<object>.<change>`); existing rows keep their meaning under it.

ALTER TABLE audit_events RENAME COLUMN detail TO details;
ALTER TABLE audit_events ADD COLUMN actor_id TEXT;
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
ALTER TABLE audit_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success';

UPDATE audit_events SET kind = 'refresh.succeeded' WHERE kind = 'token.refreshed';
UPDATE audit_events SET kind = 'refresh.reuse_detected' WHERE kind = 'refresh_token.reused';
UPDATE audit_events SET kind = 'logout.succeeded' WHERE kind = 'session.logout';
UPDATE audit_events SET kind = 'logout_all.succeeded' WHERE kind = 'session.logout_all';

UPDATE audit_events SET outcome = 'failure'
    WHERE kind IN ('login.failed', 'refresh.reuse_detected');

-- The actor was kept in the details by administrators' events (`actor`, `by` for a password
-- set); a user's own events were acted by the user.
UPDATE audit_events SET actor_id = details::jsonb ->> 'actor'
    WHERE jsonb_typeof(details::jsonb -> 'actor') = 'string';
UPDATE audit_events SET actor_id = details::jsonb ->> 'by'
    WHERE actor_id IS NULL AND jsonb_typeof(details::jsonb -> 'by') = 'string';
UPDATE audit_events SET actor_id = user_id
    WHERE actor_id IS NULL AND kind IN ('login.succeeded', 'refresh.succeeded',
        'refresh.reuse_detected', 'logout.succeeded', 'logout_all.succeeded', 'session.revoked',
        'password.changed', 'password.rehashed');

CREATE INDEX audit_events_tenant ON audit_events (tenant_id, created_at, id);
CREATE INDEX audit_events_created_at ON audit_events (created_at);

-- `audit:read` is held by every tenant's `admin` (tenants created by this version already
-- have it).
INSERT INTO role_permissions (tenant_id, role_name, permission)
    SELECT tenant_id, name, 'audit:read' FROM roles WHERE name = 'admin'
    ON CONFLICT DO NOTHING;
