-- 0011: usage kept in order of time. Its rows were keyed by message and request id alone, random
-- strings, so the responses of one read landed on as many random pages as there were responses:
-- 1 MiB of new transcript (about 40 responses) wrote 40 pages into the WAL and crossed its bound.
-- Keyed by the hour first, one read's responses share a page or two. A response is still one row:
-- its lines are looked for in its own hour and the two beside it (see store::quota::put_usage).
CREATE TABLE usage_by_hour (
    hour                  INTEGER NOT NULL,      -- ts_ms / 3,600,000
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
    PRIMARY KEY (hour, message_id, request_id)
) WITHOUT ROWID;
INSERT INTO usage_by_hour
    SELECT ts_ms / 3600000, message_id, request_id, ts_ms, session_id, model, input_tokens,
           output_tokens, cache_creation_tokens, cache_read_tokens, sidechain
    FROM usage;
DROP TABLE usage;
ALTER TABLE usage_by_hour RENAME TO usage;
CREATE INDEX usage_by_time ON usage (ts_ms, input_tokens, output_tokens, cache_creation_tokens,
                                     cache_read_tokens);

-- Per hour, what the 5-hour blocks and the week's total are computed from, kept by
-- store::quota::put_usage beside each row it adds or grows, so that refreshing the estimates
-- (inside a Stop's or a prompt's write) reads at most a week of hours, not every response of it:
-- 20,000 responses in two days held the lock 10 ms. usage is never deleted from. (Triggers would
-- keep it too, but every hook parses the schema, and two triggers cost each call 7%.)
CREATE TABLE usage_hours (
    hour       INTEGER PRIMARY KEY,              -- as usage.hour
    first_ms   INTEGER NOT NULL,                 -- its earliest and latest response
    last_ms    INTEGER NOT NULL,
    tokens     INTEGER NOT NULL,                 -- input + output (what the budgets count)
    all_tokens INTEGER NOT NULL                  -- all four kinds
);
INSERT INTO usage_hours
    SELECT hour, min(ts_ms), max(ts_ms), sum(input_tokens + output_tokens),
           sum(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)
    FROM usage GROUP BY hour;
