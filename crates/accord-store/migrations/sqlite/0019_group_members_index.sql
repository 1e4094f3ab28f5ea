-- A group's members, and theirs in turn (transitive members, the admin center's group page),
-- read from a covering index of their own. With only the member-side covering index (0017),
-- SQLite's planner, which has no statistics here, walked down a group through that index on
-- `tenant_id` alone: every membership of the tenant for each group below — the transitive
-- members of the root of 10,000 nested groups did not finish in ten minutes at 100,000 users.
-- With this index each step reads one group's members.
CREATE INDEX group_members_group_idx ON group_members (tenant_id, group_id, member_kind, member_id);
