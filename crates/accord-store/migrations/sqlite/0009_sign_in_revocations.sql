-- When the user's sign-ins were last ended (revokeSignInSessions, a password reset, a disabled
-- account): tokens issued before it are challenged by continuous access evaluation.
ALTER TABLE users ADD COLUMN sign_ins_valid_from BIGINT;
