-- One-time repairs of data that SQL alone cannot compute, each recorded by name when done (the
-- store runs them in Rust when it opens). The first: `name_keys_v1`, the case-folded display
-- names of users and groups from before migration 0016 wrote them in Rust (its SQL lower()
-- folds only ASCII on SQLite, so a name like "Émile" sorted and searched wrongly).
CREATE TABLE store_repairs (
    name   TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);
