//! What the exporters read, and the one thing they write: their cursors.
//!
//! Owns the SELECTs behind `harness export` (events by keyset on `id`, sessions, usage per turn,
//! finished runs, reviews, counts for metrics) and the cursor table (migration 0010). Reads never
//! hold a write lock; a cursor is one row written in its own short transaction. Must not decide
//! what is exported: that is `crate::export`.

use rusqlite::{Connection, OptionalExtension, Result, params};

use super::Store;

/// One event, as the exporter reads it: a row of `events` (its payload left empty where the
/// exporter does not look into it, see [`events_after`]).
pub type ExportEvent = super::query::EventRow;

/// Up to `limit` events with an id above `after_id`, oldest first (keyset pagination: each page
/// costs the same however far into the store it is). The payload is read only for the events
/// whose payload the exporter looks into (prompts, PreToolUse, failures; `''` for the others): a
/// PostToolUse payload carries the tool's whole response, and a page must stay small.
pub fn events_after(conn: &Connection, after_id: i64, limit: usize) -> Result<Vec<ExportEvent>> {
    let mut st = conn.prepare_cached(
        "SELECT id, ts_ms, session_id, agent, event, tool_name, tool_use_id, file_path, truncated, \
         CASE WHEN event IN ('UserPromptSubmit', 'BeforeAgent', 'PreToolUse', 'BeforeTool', \
         'PostToolUseFailure', 'StopFailure') THEN payload ELSE '' END, decision \
         FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![after_id, limit as i64], super::query::event_row)?;
    rows.collect()
}

/// The id of the first event at or after `ts_ms` (ids follow time closely: found by bisecting
/// ids, not by a scan), or the last id + 1 when there is none.
pub fn first_id_at(conn: &Connection, ts_ms: i64) -> Result<i64> {
    let (lo, hi): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(id), max(id) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut lo), Some(max)) = (lo, hi) else {
        return Ok(1);
    };
    let mut hi = max + 1;
    let mut st =
        conn.prepare_cached("SELECT id, ts_ms FROM events WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let row: Option<(i64, i64)> = st
            .query_row([mid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((id, ts)) if ts < ts_ms => lo = id + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// What the exporter needs to know about a session.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub agent: String,
    pub model: Option<String>,
    pub cwd: Option<String>,
    pub project_root: Option<String>,
}

pub fn session_facts(conn: &Connection, session_id: &str) -> Result<Option<SessionFacts>> {
    conn.prepare_cached(
        "SELECT agent, model, cwd, project_root FROM sessions WHERE session_id = ?1",
    )?
    .query_row([session_id], |r| {
        Ok(SessionFacts {
            agent: r.get(0)?,
            model: r.get(1)?,
            cwd: r.get(2)?,
            project_root: r.get(3)?,
        })
    })
    .optional()
}

/// Token usage the transcripts show for a session between two times.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnUsage {
    pub model: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub responses: i64,
}

pub fn turn_usage(
    conn: &Connection,
    session_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<TurnUsage> {
    conn.prepare_cached(
        "SELECT max(model), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), \
         coalesce(sum(cache_creation_tokens), 0), coalesce(sum(cache_read_tokens), 0), count(*) \
         FROM usage WHERE ts_ms BETWEEN ?2 AND ?3 AND session_id = ?1",
    )?
    .query_row(params![session_id, from_ms, to_ms], |r| {
        Ok(TurnUsage {
            model: r.get(0)?,
            input_tokens: r.get(1)?,
            output_tokens: r.get(2)?,
            cache_creation_tokens: r.get(3)?,
            cache_read_tokens: r.get(4)?,
            responses: r.get(5)?,
        })
    })
}

/// A review that finished, as a span event.
#[derive(Debug, Clone)]
pub struct ReviewMark {
    pub id: i64,
    pub finished_ms: i64,
    pub status: String,
    pub trigger: String,
    pub findings: i64,
}

/// Reviews of a session that finished between two times.
pub fn reviews_between(
    conn: &Connection,
    session_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ReviewMark>> {
    let mut st = conn.prepare_cached(
        "SELECT id, finished_ms, status, trigger, coalesce(json_array_length(findings), 0) \
         FROM reviews WHERE session_id = ?1 AND finished_ms BETWEEN ?2 AND ?3 ORDER BY id",
    )?;
    let rows = st.query_map(params![session_id, from_ms, to_ms], |r| {
        Ok(ReviewMark {
            id: r.get(0)?,
            finished_ms: r.get(1)?,
            status: r.get(2)?,
            trigger: r.get(3)?,
            findings: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A Gemini run that has finished, as a span.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub run_id: String,
    pub requester: Option<String>,
    pub model: Option<String>,
    pub models_used: Option<String>,
    pub mode: String,
    pub status: String,
    pub error_kind: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: i64,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub requests: Option<i64>,
    pub tool_calls: Option<i64>,
    pub task: String,
}

/// Runs finished after the keyset `(finished_ms, run_id)` and before `before_ms`, oldest first.
pub fn runs_finished_after(
    conn: &Connection,
    after: (i64, &str),
    before_ms: i64,
    limit: usize,
) -> Result<Vec<FinishedRun>> {
    let mut st = conn.prepare_cached(
        "SELECT run_id, requester, model, models_used, mode, status, error_kind, created_ms, \
         started_ms, finished_ms, input_tokens, output_tokens, requests, tool_calls, task \
         FROM runs WHERE finished_ms IS NOT NULL AND finished_ms < ?3 \
         AND (finished_ms > ?1 OR (finished_ms = ?1 AND run_id > ?2)) \
         ORDER BY finished_ms, run_id LIMIT ?4",
    )?;
    let rows = st.query_map(params![after.0, after.1, before_ms, limit as i64], |r| {
        Ok(FinishedRun {
            run_id: r.get(0)?,
            requester: r.get(1)?,
            model: r.get(2)?,
            models_used: r.get(3)?,
            mode: r.get(4)?,
            status: r.get(5)?,
            error_kind: r.get(6)?,
            created_ms: r.get(7)?,
            started_ms: r.get(8)?,
            finished_ms: r.get(9)?,
            input_tokens: r.get(10)?,
            output_tokens: r.get(11)?,
            requests: r.get(12)?,
            tool_calls: r.get(13)?,
            task: r.get(14)?,
        })
    })?;
    rows.collect()
}

/// The id of the session's last prompt event at or before `ts_ms` (the turn a run was asked
/// from), if any.
pub fn turn_at(conn: &Connection, session_id: &str, ts_ms: i64) -> Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT id FROM events WHERE session_id = ?1 AND ts_ms <= ?2 \
         AND event IN ('UserPromptSubmit', 'BeforeAgent') ORDER BY id DESC LIMIT 1",
    )?
    .query_row(params![session_id, ts_ms], |r| r.get(0))
    .optional()
}

/// The id of a session's first prompt event, if it has one (a Gemini run's own session, which its
/// hooks record under the run id).
pub fn first_turn(conn: &Connection, session_id: &str) -> Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT id FROM events WHERE session_id = ?1 \
         AND event IN ('UserPromptSubmit', 'BeforeAgent') ORDER BY id LIMIT 1",
    )?
    .query_row([session_id], |r| r.get(0))
    .optional()
}

/// Counts for the metrics: (name, attribute value, count).
pub fn counters(conn: &Connection) -> Result<Vec<(&'static str, String, i64)>> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, sql: &str| -> Result<()> {
        let mut st = conn.prepare(sql)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (attr, n) = row?;
            out.push((name, attr, n));
        }
        Ok(())
    };
    push(
        "lock_denials",
        "SELECT 'deny', count(*) FROM lock_log WHERE action = 'deny'",
    )?;
    push(
        "delegations",
        "SELECT status, count(*) FROM runs GROUP BY status",
    )?;
    push(
        "review_verdicts",
        "SELECT status, count(*) FROM reviews WHERE status IN ('approve', 'reject', 'unavailable', \
         'waived') GROUP BY status",
    )?;
    Ok(out)
}

/// Tokens per model from the transcripts, all time (cumulative): (model, input, output,
/// cache_write, cache_read, first ts).
pub fn tokens_per_model(conn: &Connection) -> Result<Vec<(String, [i64; 4], i64)>> {
    let mut st = conn.prepare(
        "SELECT coalesce(model, 'unknown'), sum(input_tokens), sum(output_tokens), \
         sum(cache_creation_tokens), sum(cache_read_tokens), min(ts_ms) FROM usage GROUP BY 1",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
            r.get(5)?,
        ))
    })?;
    rows.collect()
}

/// Gemini tokens per model from the runs the harness made: (model, input, output, first ts).
pub fn run_tokens_per_model(conn: &Connection) -> Result<Vec<(String, i64, i64, i64)>> {
    let mut st = conn.prepare(
        "SELECT coalesce(models_used, model, 'gemini'), coalesce(sum(input_tokens), 0), \
         coalesce(sum(output_tokens), 0), min(created_ms) FROM runs GROUP BY 1",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// The first event's time, for the start of cumulative metrics.
pub fn first_event_ms(conn: &Connection) -> Result<Option<i64>> {
    conn.query_row("SELECT ts_ms FROM events ORDER BY id LIMIT 1", [], |r| {
        r.get(0)
    })
    .optional()
}

/// A stream's cursor, as the exporter wrote it.
pub fn cursor(conn: &Connection, stream: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT position FROM export_cursors WHERE stream = ?1")?
        .query_row([stream], |r| r.get(0))
        .optional()
}

/// Moves a stream's cursor: one row, in its own short transaction.
pub fn put_cursor(
    store: &mut Store,
    stream: &str,
    position: &str,
    now_ms: i64,
) -> crate::error::Result<()> {
    let path = store.path().to_path_buf();
    store.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO export_cursors (stream, position, updated_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (stream) DO UPDATE SET position = excluded.position, \
             updated_ms = excluded.updated_ms",
        )
        .and_then(|mut st| st.execute(params![stream, position, now_ms]))
        .map_err(|e| crate::error::Error::db("write the export cursor to", &path, e))?;
        Ok(())
    })
}

/// Forgets a stream's cursor (`harness export otlp --reset`).
pub fn reset_cursor(store: &mut Store, stream: &str) -> crate::error::Result<()> {
    let path = store.path().to_path_buf();
    store.write(|tx| {
        tx.execute("DELETE FROM export_cursors WHERE stream = ?1", [stream])
            .map_err(|e| crate::error::Error::db("reset the export cursor in", &path, e))?;
        Ok(())
    })
}
