-- 0003: Gemini CLI runs the harness starts, and /delegate-gemini tasks waiting for one.

CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,             -- also the Gemini session id of the run
    requester      TEXT,                         -- the session that asked, if any
    task           TEXT NOT NULL,                -- as asked, secrets redacted
    prompt         TEXT NOT NULL,                -- task plus the brief, as sent to Gemini
    cwd            TEXT,
    model          TEXT,                         -- asked for; NULL lets Gemini CLI choose
    models_used    TEXT,                         -- from the result stats, comma-separated
    mode           TEXT NOT NULL,                -- 'read-only' | 'write'
    status         TEXT NOT NULL,                -- queued|running|success|error
    error_kind     TEXT,                         -- auth|quota|timeout|no_result|...
    error          TEXT,
    exit_code      INTEGER,
    created_ms     INTEGER NOT NULL,
    started_ms     INTEGER,
    finished_ms    INTEGER,
    duration_ms    INTEGER,
    requests       INTEGER,                      -- model requests (estimated from the stream)
    input_tokens   INTEGER,
    output_tokens  INTEGER,
    total_tokens   INTEGER,
    cached_tokens  INTEGER,
    tool_calls     INTEGER,
    files_written  TEXT,                         -- JSON array of paths
    result         TEXT,                         -- the answer (its end, capped), redacted
    retried_with   TEXT,                         -- the fallback model after a quota error
    waiter         TEXT NOT NULL DEFAULT 'none', -- 'waiting' | 'gone' | 'delivered' | 'none'
    worker_pid     INTEGER
) WITHOUT ROWID;
CREATE INDEX runs_by_requester ON runs (requester, created_ms);
CREATE INDEX runs_by_time ON runs (created_ms);

-- What /delegate-gemini was asked, recorded by the UserPromptExpansion hook (the only safe way
-- in: the arguments arrive as JSON, never through a shell), taken by `harness delegate --pending`.
CREATE TABLE delegations (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    task       TEXT NOT NULL,                    -- secrets redacted
    write      INTEGER NOT NULL DEFAULT 0,
    taken_ms   INTEGER,
    run_id     TEXT
);
CREATE INDEX delegations_pending ON delegations (session_id) WHERE taken_ms IS NULL;
