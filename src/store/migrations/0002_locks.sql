-- 0002: file locks (claims), their history, and notices waiting for an agent.

-- One claim per file: the primary key is what makes two holders impossible.
CREATE TABLE claims (
    path         TEXT PRIMARY KEY,               -- canonical absolute path
    session_id   TEXT NOT NULL,                  -- the holder
    agent        TEXT NOT NULL,                  -- 'claude' | 'gemini'
    project_root TEXT,
    tool_name    TEXT,                           -- the tool that took or last touched it
    claimed_ms   INTEGER NOT NULL,
    touched_ms   INTEGER NOT NULL,               -- last write (or write attempt) by the holder
    expires_ms   INTEGER NOT NULL                -- touched_ms + the TTL in force then
) WITHOUT ROWID;
CREATE INDEX claims_by_session ON claims (session_id);

-- Every change of hands: grant, release, lapse (taken over after its TTL), orphan (taken over
-- from an ended or vanished holder), deny. Refreshes are not logged.
CREATE TABLE lock_log (
    id         INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    path       TEXT NOT NULL,
    session_id TEXT NOT NULL,                    -- who acted (granted, released, was denied)
    action     TEXT NOT NULL,
    other      TEXT                              -- the previous or blocking holder
);

-- Text for an agent's context, delivered on its next hook that can carry context.
CREATE TABLE notices (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT NOT NULL,                  -- the recipient
    created_ms   INTEGER NOT NULL,
    text         TEXT NOT NULL,
    delivered_ms INTEGER
);
CREATE INDEX notices_pending ON notices (session_id) WHERE delivered_ms IS NULL;

-- What the harness answered to an event, when it said more than nothing.
ALTER TABLE events ADD COLUMN decision TEXT;
