-- Values every instance on this database must agree on, recorded once by the first instance
-- that needs one (the token issuer, when neither AUTH_ISSUER nor AUTH_PUBLIC_URL is set) and
-- read by every later one.

CREATE TABLE service_settings (
    name        TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
