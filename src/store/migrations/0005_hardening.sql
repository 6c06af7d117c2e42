-- 0005: the store's mark, idempotent spool replay, and file identity for claims.

-- Marks the file as an agent-harness store (see store::APPLICATION_ID); any other SQLite file
-- at the store's path is refused instead of migrated.
PRAGMA application_id = 1095258707;

-- Spooled recordings already applied, by the id the spool gave them: a claimer killed after its
-- commit but before it removed its claimed file leaves the file behind, and the next claimer
-- must not store those events twice. Pruned after a week (a spool never waits that long).
CREATE TABLE spool_applied (
    uid   TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- The device and inode of a claimed file that existed when it was claimed or touched, so that a
-- hard link (another path to the same file) meets the same claim.
ALTER TABLE claims ADD COLUMN dev INTEGER;
ALTER TABLE claims ADD COLUMN ino INTEGER;
CREATE INDEX claims_by_inode ON claims (ino, dev) WHERE ino IS NOT NULL;

-- The estimates read the last days' token counts inside a hook's write transaction: a covering
-- index answers that from its own pages, without a lookup into `usage` per response.
DROP INDEX usage_by_time;
CREATE INDEX usage_by_time ON usage (ts_ms, input_tokens, output_tokens, cache_creation_tokens,
                                     cache_read_tokens);
