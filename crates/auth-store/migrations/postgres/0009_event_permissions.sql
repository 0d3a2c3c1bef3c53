-- The event outbox's admin API: `events:read` (list events, see the backlog) and
-- `events:write` (re-queue a parked event), held by every tenant's `admin` (tenants created
-- from now on get them from the code) and by the platform's `superadmin`.

INSERT INTO role_permissions (tenant_id, role_name, permission)
    SELECT tenant_id, name, 'events:read' FROM roles WHERE name = 'admin'
    ON CONFLICT DO NOTHING;
INSERT INTO role_permissions (tenant_id, role_name, permission)
    SELECT tenant_id, name, 'events:write' FROM roles WHERE name = 'admin'
    ON CONFLICT DO NOTHING;
INSERT INTO role_permissions (tenant_id, role_name, permission)
    SELECT tenant_id, name, 'events:read' FROM roles
    WHERE tenant_id = 'default' AND name = 'superadmin'
    ON CONFLICT DO NOTHING;
INSERT INTO role_permissions (tenant_id, role_name, permission)
    SELECT tenant_id, name, 'events:write' FROM roles
    WHERE tenant_id = 'default' AND name = 'superadmin'
    ON CONFLICT DO NOTHING;
