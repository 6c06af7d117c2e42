-- 0010: export cursors: how far each exporter (OTLP traces, logs) has been accepted by its
-- collector, so that an export resumes where it stopped and sends nothing twice.

CREATE TABLE export_cursors (
    stream     TEXT PRIMARY KEY,                 -- 'otlp.traces' | 'otlp.runs' | 'otlp.logs' | ...
    position   TEXT NOT NULL,                    -- JSON, owned by the exporter of that stream
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
