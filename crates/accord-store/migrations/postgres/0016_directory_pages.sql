-- Directory lists read one page at a time, in display-name order, with prefix search on the
-- name and the UPN served by indexes (the admin center's lists, the people pickers). A user's
-- name_key is the case-folded display name, written by the store. The keys compare byte by
-- byte (COLLATE "C"), as on SQLite, so that a prefix is a range whatever the database's
-- collation.
ALTER TABLE users ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(display_name);
ALTER TABLE users ALTER COLUMN upn_key TYPE TEXT COLLATE "C";
ALTER TABLE directory_groups ALTER COLUMN name_key TYPE TEXT COLLATE "C";
CREATE INDEX users_name_idx ON users (tenant_id, name_key, id);
