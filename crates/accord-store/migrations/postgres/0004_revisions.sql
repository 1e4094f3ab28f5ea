-- Optimistic concurrency for the tenant row, the target of read-modify-write paths (user consent,
-- the admin consent request policy, reviewers): each write bumps `revision` and applies only when
-- the row still has the revision the writer read, so two writers cannot silently undo each other.
ALTER TABLE tenants ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
