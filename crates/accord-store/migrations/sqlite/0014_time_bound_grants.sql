-- Time-bound grants and assignments (an Accord extension): consent "for 90 days". NULL: no end.
ALTER TABLE delegated_grants ADD COLUMN expires_at BIGINT;
ALTER TABLE app_role_assignments ADD COLUMN expires_at BIGINT;
CREATE INDEX delegated_grants_expiry_idx ON delegated_grants (expires_at);
CREATE INDEX app_role_assignments_expiry_idx ON app_role_assignments (expires_at);
