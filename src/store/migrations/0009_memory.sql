-- 0009: memory shared by both providers and every session: notes, turn summaries and the
-- snapshots taken before a compaction, with full-text search over them.
--
-- Kept small on purpose: every hook process parses the whole schema on its first statement, so
-- this adds one table, one index (the hand-backs read by project, newest first) and an
-- external-content FTS5 index (no copy of the text, no per-row sizes: `columnsize=0`), which
-- brings three shadow tables (_data, _idx, _config). The store keeps the index in step with
-- `memory` itself (store::memory), without triggers.

CREATE TABLE memory (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,                    -- note|turn|snapshot|run|review
    session_id TEXT,                             -- NULL for a note added outside a session
    agent      TEXT NOT NULL,                    -- 'claude' | 'gemini' | 'user'
    project    TEXT NOT NULL,                    -- project root, else the cwd, else ''
    created_ms INTEGER NOT NULL,
    text       TEXT NOT NULL                     -- capped, secrets redacted, no control characters
);
CREATE INDEX memory_by_project ON memory (project, id);

CREATE VIRTUAL TABLE memory_fts USING fts5(
    text,
    content = 'memory',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2',
    columnsize = 0
);
