-- Certificates registered on app registrations (Graph `keyCredentials`), as a JSON list of
-- {key_id, display_name, certificate (base64 DER), start, end}.
ALTER TABLE applications ADD COLUMN key_credentials TEXT NOT NULL DEFAULT '[]';
