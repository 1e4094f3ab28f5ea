-- A member's groups, and theirs in turn (the transitive-groups query of every sign-in), read
-- from one covering index: without it SQLite's planner, which has no statistics here, chose
-- the primary key and visited every membership of the tenant (36 ms a sign-in at 100,000
-- users and 10,000 groups; 0.05 ms with it).
DROP INDEX group_members_member_idx;
CREATE INDEX group_members_member_idx ON group_members (tenant_id, member_id, member_kind, group_id);
