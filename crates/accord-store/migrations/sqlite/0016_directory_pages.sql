-- Directory lists read one page at a time, in display-name order, with prefix search on the
-- name and the UPN served by indexes (the admin center's lists, the people pickers). A user's
-- name_key is the case-folded display name, written by the store (Rust's Unicode lower case);
-- rows written before this migration get SQLite's lower(), which folds ASCII only, until they
-- are next written.
ALTER TABLE users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(display_name);
CREATE INDEX users_name_idx ON users (tenant_id, name_key, id);
