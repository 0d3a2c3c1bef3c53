-- Audit kinds take their dotted names (login.succeeded, ...): the service names them with
-- one enum from now on. Rows written before keep their meaning under the new names.
UPDATE audit_events SET kind = 'login.succeeded' WHERE kind = 'login_succeeded';
UPDATE audit_events SET kind = 'login.failed' WHERE kind = 'login_failed';
UPDATE audit_events SET kind = 'token.refreshed' WHERE kind = 'token_refreshed';
UPDATE audit_events SET kind = 'refresh_token.reused' WHERE kind = 'refresh_token_reused';
UPDATE audit_events SET kind = 'session.logout' WHERE kind = 'logout';
UPDATE audit_events SET kind = 'session.logout_all' WHERE kind = 'logout_all';
UPDATE audit_events SET kind = 'session.revoked' WHERE kind = 'session_revoked';
