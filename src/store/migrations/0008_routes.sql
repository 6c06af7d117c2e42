-- 0008: delegation advice: every decision the UserPromptSubmit hook made about a typed prompt,
-- and later how it went; and the cached size of each project (from its git index).

CREATE TABLE routes (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    decided_ms    INTEGER NOT NULL,
    project_root  TEXT,
    task          TEXT NOT NULL,                 -- one line, secrets redacted
    task_type     TEXT NOT NULL,                 -- codebase|research|summarise|media|docs|edit|debug|refactor|tests|question
    complexity    TEXT NOT NULL,                 -- small|medium|large (estimated tokens)
    score         REAL NOT NULL,
    bar           REAL NOT NULL,
    selected      TEXT NOT NULL,                 -- 'gemini' (the note was given) | 'claude'
    reason        TEXT NOT NULL,
    factors       TEXT NOT NULL,                 -- JSON: {"claude": {...}, "gemini": {...}, "model": {...}}
    -- Filled in later (the next prompt of the session, or `harness routes`):
    outcome       TEXT,                          -- NULL: not yet known | 'delegated' | 'kept'
    run_id        TEXT,                          -- the delegation run started after it, if any
    turn_tokens   INTEGER,                       -- what the turn used on Claude (transcripts)
    turn_cost_usd REAL,                          -- that, at list price (route::prices)
    gemini_cost_usd REAL,                        -- the same tokens on Gemini, at list price
    settled_ms    INTEGER
);
CREATE INDEX routes_by_session ON routes (session_id, decided_ms);
CREATE INDEX routes_by_type ON routes (task_type, decided_ms);

-- Tracked files per project, read from the git index header, kept until the index changes.
CREATE TABLE project_sizes (
    root        TEXT PRIMARY KEY,
    index_mtime INTEGER NOT NULL,                -- ns since the epoch
    index_len   INTEGER NOT NULL,
    files       INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
