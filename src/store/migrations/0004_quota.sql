-- 0004: quota: figures from the status line, usage read from transcripts, exhaustion, warnings.

-- The latest figure per provider, window and source.
CREATE TABLE quota_figures (
    provider     TEXT NOT NULL,                  -- 'claude' | 'gemini'
    window       TEXT NOT NULL,                  -- 'five_hour' | 'seven_day'
    source       TEXT NOT NULL,                  -- 'statusline' | 'transcripts'
    used_pct     REAL,                           -- NULL: an amount without a budget to compare
    resets_at_ms INTEGER,
    official     INTEGER NOT NULL,               -- 1: Claude Code's own figure; 0: an estimate
    observed_ms  INTEGER NOT NULL,
    session_id   TEXT,
    detail       TEXT,                           -- estimates: what was counted, for people
    projected_ms INTEGER,                        -- estimates: when the budget runs out at this rate
    PRIMARY KEY (provider, window, source)
) WITHOUT ROWID;

-- A provider known to be exhausted: it answered with a rate-limit or quota error.
CREATE TABLE exhaustion (
    provider   TEXT PRIMARY KEY,
    since_ms   INTEGER NOT NULL,
    until_ms   INTEGER NOT NULL,
    until_from TEXT NOT NULL,                    -- how until_ms is known: 'message', 'statusline', 'block', 'guess', 'pacific-midnight'
    reason     TEXT NOT NULL
) WITHOUT ROWID;

-- Warnings given: one per provider, window and level per reset window.
CREATE TABLE quota_alerts (
    provider     TEXT NOT NULL,
    window       TEXT NOT NULL,
    level        TEXT NOT NULL,
    resets_at_ms INTEGER NOT NULL,
    fired_ms     INTEGER NOT NULL,
    PRIMARY KEY (provider, window, level, resets_at_ms)
) WITHOUT ROWID;

-- API usage read from Claude Code transcripts: one row per API response (message id and request
-- id), the largest of its duplicated lines.
CREATE TABLE usage (
    message_id            TEXT NOT NULL,
    request_id            TEXT NOT NULL,
    ts_ms                 INTEGER NOT NULL,
    session_id            TEXT,
    model                 TEXT,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    sidechain             INTEGER NOT NULL,
    PRIMARY KEY (message_id, request_id)
) WITHOUT ROWID;
CREATE INDEX usage_by_time ON usage (ts_ms);

-- How far each transcript file has been read (the reader's cursor, as JSON).
CREATE TABLE transcript_cursors (
    path       TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- What each session's status line last showed (Claude Code runs it only in interactive sessions).
CREATE TABLE session_status (
    session_id  TEXT PRIMARY KEY,
    observed_ms INTEGER NOT NULL,
    model       TEXT,
    context_pct REAL,
    cost_usd    REAL
) WITHOUT ROWID;
