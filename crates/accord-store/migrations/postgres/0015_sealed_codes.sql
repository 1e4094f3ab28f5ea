-- Authorization codes are sealed (encrypted and authenticated with a key derived from the
-- master key) and carry what they stand for; a code's single use is a `used_once` row written at
-- redemption. Refresh-token families get a row only when they are revoked. Codes issued before
-- this migration stop working (they live ten minutes).
DROP TABLE auth_codes;
DELETE FROM refresh_token_families WHERE revoked = 0;
