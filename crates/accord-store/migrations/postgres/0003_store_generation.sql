-- The write generation: one row, bumped in the same transaction as every write to a table the
-- in-memory directory cache holds (tenants, applications, client secrets, service principals,
-- delegated grants, app role assignments, permission classifications). Each process compares it with the generation its
-- cache was read under and empties the cache when another process wrote (src/sql/cache.rs).
CREATE TABLE store_generation (
    id          BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO store_generation (id, generation) VALUES (1, 0);
