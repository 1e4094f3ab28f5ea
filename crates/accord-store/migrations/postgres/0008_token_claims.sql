-- What an app's tokens carry beyond the defaults: Graph's groupMembershipClaims (a JSON string:
-- "None", "SecurityGroup", …) and optionalClaims ({"id_token": [...], "access_token": [...]}).
ALTER TABLE applications ADD COLUMN group_membership_claims TEXT NOT NULL DEFAULT '"None"';
ALTER TABLE applications ADD COLUMN optional_claims TEXT NOT NULL DEFAULT '{}';
