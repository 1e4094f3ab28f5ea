-- Client apps whose consent also consents to this API (Graph api.knownClientApplications).
ALTER TABLE applications ADD COLUMN known_client_applications TEXT NOT NULL DEFAULT '[]';
