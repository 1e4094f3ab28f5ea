-- Single-page-app redirect URIs (Graph `spa.redirectUris`) and federated identity credentials,
-- both JSON lists on the application row.
ALTER TABLE applications ADD COLUMN spa_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE applications ADD COLUMN federated_credentials TEXT NOT NULL DEFAULT '[]';

-- The origins of every app's SPA redirect URIs, kept with the application row, so a CORS
-- preflight (which names no client) is answered with one indexed lookup.
CREATE TABLE spa_origins (
    origin         TEXT NOT NULL,
    app_object_id  TEXT NOT NULL,
    PRIMARY KEY (origin, app_object_id)
);
CREATE INDEX spa_origins_app_idx ON spa_origins (app_object_id);

-- Refresh tokens issued to a single-page app: redeemable only cross-origin, and their family
-- ends 24 hours after sign-in whatever rotation happens.
ALTER TABLE refresh_tokens ADD COLUMN spa BIGINT NOT NULL DEFAULT 0;
