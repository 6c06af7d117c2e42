-- 0007: /review: Gemini's verdicts on a session's change, and the Stop gate's round counter.

-- One row per review: asked for (`/review`, the complexity trigger), run, and its verdict.
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    thread        INTEGER NOT NULL,              -- id of the review that opened the thread
    created_ms    INTEGER NOT NULL,
    finished_ms   INTEGER,
    status        TEXT NOT NULL,                 -- requested|wanted|running|approve|reject|unavailable|waived
    trigger       TEXT NOT NULL,                 -- command|cli|sensitive|lines
    event_mark    INTEGER NOT NULL DEFAULT 0,    -- the store's last event id when the change was collected
    base          TEXT,                          -- the git ref the change was taken against
    criteria      TEXT,                          -- the acceptance criteria, declared before the verdict
    criteria_from TEXT,                          -- given|plan|prompts|none
    files         TEXT,                          -- JSON array: the files reviewed
    left_out      TEXT,                          -- what the bounds left out of the prompt, for people
    summary       TEXT,
    findings      TEXT,                          -- JSON array of {file, line, severity, problem, fix}
    error         TEXT,                          -- unavailable: why, and what to do
    run_ids       TEXT,                          -- JSON array: the Gemini runs (the repair retry's too)
    blocks        INTEGER NOT NULL DEFAULT 0,    -- Stop blocks given for this review
    last_block    TEXT,                          -- findings|rereview|want
    handed_off_ms INTEGER,                       -- the gate gave the thread to the user
    waive_reason  TEXT,
    note          TEXT                           -- why the review was wanted
);
CREATE INDEX reviews_by_session ON reviews (session_id, id);
