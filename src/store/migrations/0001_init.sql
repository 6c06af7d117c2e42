-- 0001: sessions, events and tool calls. Times are Unix milliseconds (UTC).

-- Small facts about the store itself (the last doctor write test, ...).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per agent: a Claude Code session, or a Gemini CLI session. Written when first seen and
-- at SessionStart / SessionEnd only, not on every event (each write is a page in the WAL that
-- every later hook call reads back); last activity and event counts come from `events`.
CREATE TABLE sessions (
    session_id      TEXT PRIMARY KEY,
    agent           TEXT NOT NULL,               -- 'claude' | 'gemini'
    first_seen_ms   INTEGER NOT NULL,
    cwd             TEXT,
    project_root    TEXT,                        -- nearest directory above cwd holding .git
    transcript_path TEXT,
    model           TEXT,
    source          TEXT,                        -- SessionStart source: startup|resume|clear|compact
    client_pid      INTEGER,                     -- the client process, learned at SessionStart
    client_start    INTEGER,                     -- its start time (clock ticks), against pid reuse
    ended_ms        INTEGER,
    end_reason      TEXT
) WITHOUT ROWID;

-- Every hook call, payload redacted.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    ts_ms       INTEGER NOT NULL,
    session_id  TEXT,                            -- NULL only for payloads without one
    agent       TEXT NOT NULL,
    event       TEXT NOT NULL,                   -- hook_event_name as the client sent it
    tool_name   TEXT,
    tool_use_id TEXT,
    file_path   TEXT,                            -- canonical path of the file the tool names
    truncated   INTEGER NOT NULL DEFAULT 0,      -- 1 when the payload exceeded the read bound
    payload     TEXT NOT NULL                    -- the JSON payload, secrets redacted
);
-- No index on ts_ms: every index is one more page written by every hook call. Ids follow time
-- closely enough to find a time by bisecting ids (see store::query).
CREATE INDEX events_by_session ON events (session_id, id);

-- Tool calls, joined from PreToolUse (BeforeTool) to PostToolUse / PostToolUseFailure (AfterTool).
-- Clustered on its join key: one page written per call, no separate index.
CREATE TABLE tool_calls (
    session_id  TEXT NOT NULL,
    call_key    TEXT NOT NULL,                   -- tool_use_id; for Gemini, tool name + input hash
    seq         INTEGER NOT NULL,                -- 0, 1, ... for repeats of one key (Gemini)
    tool_name   TEXT NOT NULL,
    file_path   TEXT,
    agent_id    TEXT,                            -- the subagent the call ran in, if any
    started_ms  INTEGER,                         -- NULL when only the Post event was seen
    finished_ms INTEGER,
    duration_ms INTEGER,
    outcome     TEXT NOT NULL,                   -- pending|success|failure|interrupted|abandoned
    error       TEXT,
    PRIMARY KEY (session_id, call_key, seq)
) WITHOUT ROWID;
