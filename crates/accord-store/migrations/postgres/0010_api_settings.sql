-- An API's pre-authorized clients (Graph api.preAuthorizedApplications, JSON) and the shape of
-- its access tokens (api.requestedAccessTokenVersion: 1 or 2).
ALTER TABLE applications ADD COLUMN pre_authorized TEXT NOT NULL DEFAULT '[]';
ALTER TABLE applications ADD COLUMN access_token_version BIGINT NOT NULL DEFAULT 2;
