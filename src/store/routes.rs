//! Routing decisions (`routes`) and the cached project sizes they use (`project_sizes`).
//!
//! Owns the SQL: storing a decision, settling its outcome (was a delegation run started in that
//! session before its next prompt, or within [`FOLLOW_WINDOW_MS`]; what the turn cost on Claude)
//! when a reader asks ([`settle_all`]: the hook only stores), the history the policy weighs, and
//! the listings of `harness routes`. Must not decide.

use rusqlite::{Connection, OptionalExtension, Result, params};

use crate::policy::route::Past;
use crate::route::prices::{self, Tokens};

/// How long after a decision a delegation run still counts as following it (when no later
/// prompt of the session ends the turn first).
pub const FOLLOW_WINDOW_MS: i64 = 30 * 60_000;

/// Open decisions of one session read at a time when settling.
const SETTLE_PAGE: usize = 20;
/// How many recent decisions of a type the history looks at.
const HISTORY_ROWS: i64 = 200;

/// One decision, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Route {
    pub id: i64,
    pub session_id: String,
    pub decided_ms: i64,
    pub project_root: Option<String>,
    pub task: String,
    pub task_type: String,
    pub complexity: String,
    pub score: f64,
    pub bar: f64,
    pub selected: String,
    pub reason: String,
    /// JSON object: the factors per provider.
    pub factors: serde_json::Value,
    pub outcome: Option<String>,
    pub run_id: Option<String>,
    /// The delegation run's status now (`runs.status`), if there was one.
    pub run_status: Option<String>,
    pub turn_tokens: Option<i64>,
    pub turn_cost_usd: Option<f64>,
    pub gemini_cost_usd: Option<f64>,
}

/// Stores a decision; returns its id.
#[allow(clippy::too_many_arguments)]
/// A decision (`put`).
pub const PUT_SQL: &str = "INSERT INTO routes (session_id, decided_ms, project_root, task, \
     task_type, complexity, score, bar, selected, reason, factors) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

pub fn put(conn: &Connection, r: &Route) -> Result<i64> {
    conn.prepare_cached(PUT_SQL)?.execute(params![
        r.session_id,
        r.decided_ms,
        r.project_root,
        r.task,
        r.task_type,
        r.complexity,
        r.score,
        r.bar,
        r.selected,
        r.reason,
        r.factors.to_string()
    ])?;
    Ok(conn.last_insert_rowid())
}

/// How advice of `task_type` went: over its last `HISTORY_ROWS` (200) pieces of advice whose
/// outcome is known, settled or not. The hook settles nothing (the readers do, see
/// [`settle_all`]), so a decision not settled yet counts once its follow window has passed, with
/// the run [`settle_all`] would give it: the first delegation run of its session in its turn
/// (up to the session's next decision, within the window); `now_ms` places the window.
pub fn past(conn: &Connection, task_type: &str, now_ms: i64) -> Result<Past> {
    conn.prepare_cached(
        "SELECT count(*), coalesce(sum(x.run IS NOT NULL), 0), \
                coalesce(sum(runs.status = 'success'), 0) \
         FROM (SELECT CASE WHEN r.outcome IS NOT NULL THEN r.run_id ELSE \
                        (SELECT run_id FROM runs INDEXED BY runs_by_requester \
                         WHERE requester = r.session_id AND created_ms >= r.decided_ms \
                           AND created_ms <= r.decided_ms + ?3 \
                           AND NOT EXISTS (SELECT 1 FROM routes n INDEXED BY routes_by_session \
                             WHERE n.session_id = r.session_id AND n.decided_ms > r.decided_ms \
                               AND n.decided_ms < runs.created_ms) \
                         ORDER BY created_ms LIMIT 1) END AS run \
               FROM routes r INDEXED BY routes_by_type \
               WHERE r.task_type = ?1 AND r.selected = 'gemini' \
                 AND (r.outcome IS NOT NULL OR r.decided_ms <= ?4) \
               ORDER BY r.decided_ms DESC LIMIT ?2) x \
         LEFT JOIN runs ON runs.run_id = x.run",
    )?
    .query_row(
        params![
            task_type,
            HISTORY_ROWS,
            FOLLOW_WINDOW_MS,
            now_ms - FOLLOW_WINDOW_MS
        ],
        |row| {
            Ok(Past {
                advised: row.get::<_, i64>(0)? as u32,
                followed: row.get::<_, i64>(1)? as u32,
                succeeded: row.get::<_, i64>(2)? as u32,
            })
        },
    )
}

/// Settles every decision whose turn has ended, for the readers (`harness routes`, the
/// dashboard): the hook leaves this to them, so that a prompt pays only for its own decision. A
/// turn ends at the session's next decision or after [`FOLLOW_WINDOW_MS`]; a session's newest
/// decision is settled sooner only when a delegation run already followed it.
///
/// Settles at most about `max_rows` decisions per call (each takes a few statements inside the
/// caller's write transaction, so a reader beside busy hooks keeps its transaction short); returns
/// how many it settled. `harness routes` calls it until none is left.
pub fn settle_all(conn: &Connection, now_ms: i64, max_rows: usize) -> Result<usize> {
    let sessions: Vec<(String, i64)> = conn
        .prepare(
            "SELECT session_id, max(decided_ms) FROM routes WHERE session_id IN \
             (SELECT DISTINCT session_id FROM routes WHERE outcome IS NULL) GROUP BY session_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    let mut settled = 0;
    for (session, newest) in sessions {
        if settled >= max_rows {
            break;
        }
        // Every turn of the session has ended (its last by the window), or every turn before
        // the newest (at the next decision), a page at a time.
        let ended = if newest + FOLLOW_WINDOW_MS <= now_ms {
            newest + FOLLOW_WINDOW_MS
        } else {
            newest
        };
        loop {
            let n = settle_within(conn, &session, ended, now_ms, true)?;
            settled += n;
            if n < SETTLE_PAGE || settled >= max_rows {
                break;
            }
        }
        if ended == newest {
            // The newest turn may still be running: settled now only if a run followed it.
            settled += settle_within(conn, &session, now_ms, now_ms, false)?;
        }
    }
    Ok(settled)
}

fn settle_within(
    conn: &Connection,
    session: &str,
    end_ms: i64,
    now_ms: i64,
    last: bool,
) -> Result<usize> {
    let open: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, decided_ms FROM routes INDEXED BY routes_by_session \
             WHERE session_id = ?1 AND decided_ms < ?2 AND outcome IS NULL \
             ORDER BY decided_ms LIMIT ?3",
        )?
        .query_map(params![session, end_ms, SETTLE_PAGE as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_>>()?;
    let mut settled = 0;
    for (id, decided) in open {
        let next: Option<i64> = conn
            .prepare_cached(
                "SELECT min(decided_ms) FROM routes INDEXED BY routes_by_session \
                 WHERE session_id = ?1 AND decided_ms > ?2",
            )?
            .query_row(params![session, decided], |r| r.get(0))?;
        let end = next
            .unwrap_or(end_ms)
            .min(end_ms)
            .min(decided + FOLLOW_WINDOW_MS);
        settled += settle_one(conn, id, session, decided, end, now_ms, last)? as usize;
    }
    Ok(settled)
}

#[allow(clippy::too_many_arguments)]
fn settle_one(
    conn: &Connection,
    id: i64,
    session: &str,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
    last: bool,
) -> Result<bool> {
    let run: Option<String> = conn
        .prepare_cached(
            "SELECT run_id FROM runs INDEXED BY runs_by_requester \
             WHERE requester = ?1 AND created_ms >= ?2 AND created_ms <= ?3 \
             ORDER BY created_ms LIMIT 1",
        )?
        .query_row(params![session, from_ms, to_ms], |r| r.get(0))
        .optional()?;
    if run.is_none() && !last {
        return Ok(false);
    }
    let mut st = conn.prepare_cached(
        "SELECT model, sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), \
         sum(cache_read_tokens) FROM usage INDEXED BY usage_by_time \
         WHERE ts_ms >= ?1 AND ts_ms <= ?2 AND session_id = ?3 GROUP BY model",
    )?;
    let rows = st.query_map(params![from_ms, to_ms, session], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            Tokens {
                input: r.get::<_, i64>(1)? as u64,
                output: r.get::<_, i64>(2)? as u64,
                cache_write: r.get::<_, i64>(3)? as u64,
                cache_read: r.get::<_, i64>(4)? as u64,
            },
        ))
    })?;
    let (mut tokens, mut claude, mut gemini) = (0u64, 0f64, 0f64);
    for row in rows {
        let (model, t) = row?;
        tokens += t.input + t.output + t.cache_write + t.cache_read;
        claude += prices::claude_cost(model.as_deref(), t);
        gemini += prices::gemini_cost(Tokens {
            cache_read: t.cache_read + t.cache_write,
            cache_write: 0,
            ..t
        });
    }
    let outcome = if run.is_some() { "delegated" } else { "kept" };
    conn.prepare_cached(
        "UPDATE routes SET outcome = ?2, run_id = ?3, turn_tokens = ?4, turn_cost_usd = ?5, \
         gemini_cost_usd = ?6, settled_ms = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        outcome,
        run,
        (tokens > 0).then_some(tokens as i64),
        (tokens > 0).then_some(claude),
        (tokens > 0).then_some(gemini),
        now_ms
    ])?;
    Ok(true)
}

const COLUMNS: &str = "r.id, r.session_id, r.decided_ms, r.project_root, r.task, r.task_type, \
    r.complexity, r.score, r.bar, r.selected, r.reason, r.factors, r.outcome, r.run_id, \
    runs.status, r.turn_tokens, r.turn_cost_usd, r.gemini_cost_usd";

fn row(r: &rusqlite::Row<'_>) -> Result<Route> {
    let factors: String = r.get(11)?;
    Ok(Route {
        id: r.get(0)?,
        session_id: r.get(1)?,
        decided_ms: r.get(2)?,
        project_root: r.get(3)?,
        task: r.get(4)?,
        task_type: r.get(5)?,
        complexity: r.get(6)?,
        score: r.get(7)?,
        bar: r.get(8)?,
        selected: r.get(9)?,
        reason: r.get(10)?,
        factors: serde_json::from_str(&factors).unwrap_or(serde_json::Value::Null),
        outcome: r.get(12)?,
        run_id: r.get(13)?,
        run_status: r.get(14)?,
        turn_tokens: r.get(15)?,
        turn_cost_usd: r.get(16)?,
        gemini_cost_usd: r.get(17)?,
    })
}

/// The latest `limit` decisions, oldest first.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<Route>> {
    let mut rows: Vec<Route> = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM routes r LEFT JOIN runs ON runs.run_id = r.run_id \
             ORDER BY r.decided_ms DESC, r.id DESC LIMIT ?1"
        ))?
        .query_map([limit as i64], row)?
        .collect::<Result<_>>()?;
    rows.reverse();
    Ok(rows)
}

/// One decision by id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Route>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM routes r LEFT JOIN runs ON runs.run_id = r.run_id WHERE r.id = ?1"
    ))?
    .query_row([id], row)
    .optional()
}

/// Per task type: what `harness routes --stats` shows.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TypeStats {
    pub task_type: String,
    /// Decisions made.
    pub decisions: i64,
    /// Of those, the note was given.
    pub advised: i64,
    /// Advice followed by a delegation run.
    pub followed: i64,
    /// Followed runs that succeeded / failed.
    pub succeeded: i64,
    pub failed: i64,
    /// Advised turns kept on Claude: what they cost there, and the estimate on Gemini.
    pub kept_cost_usd: f64,
    pub kept_gemini_usd: f64,
}

/// Statistics per task type.
pub fn stats(conn: &Connection) -> Result<Vec<TypeStats>> {
    conn.prepare(
        "SELECT r.task_type, count(*), coalesce(sum(r.selected = 'gemini'), 0), \
           coalesce(sum(r.selected = 'gemini' AND r.outcome = 'delegated'), 0), \
           coalesce(sum(r.selected = 'gemini' AND runs.status = 'success'), 0), \
           coalesce(sum(r.selected = 'gemini' AND runs.status = 'error'), 0), \
           coalesce(sum(CASE WHEN r.selected = 'gemini' AND r.outcome = 'kept' THEN r.turn_cost_usd END), 0), \
           coalesce(sum(CASE WHEN r.selected = 'gemini' AND r.outcome = 'kept' THEN r.gemini_cost_usd END), 0) \
         FROM routes r LEFT JOIN runs ON runs.run_id = r.run_id \
         GROUP BY r.task_type ORDER BY r.task_type",
    )?
    .query_map([], |r| {
        Ok(TypeStats {
            task_type: r.get(0)?,
            decisions: r.get(1)?,
            advised: r.get(2)?,
            followed: r.get(3)?,
            succeeded: r.get(4)?,
            failed: r.get(5)?,
            kept_cost_usd: r.get(6)?,
            kept_gemini_usd: r.get(7)?,
        })
    })?
    .collect()
}

/// A project's cached size: (index mtime ns, index length, tracked files).
pub fn project_size(conn: &Connection, root: &str) -> Result<Option<(i64, i64, i64)>> {
    conn.prepare_cached("SELECT index_mtime, index_len, files FROM project_sizes WHERE root = ?1")?
        .query_row([root], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
}

/// Caches a project's size.
pub fn put_project_size(
    conn: &Connection,
    root: &str,
    index_mtime: i64,
    index_len: i64,
    files: i64,
    now_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO project_sizes (root, index_mtime, index_len, files, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (root) DO UPDATE SET \
         index_mtime = excluded.index_mtime, index_len = excluded.index_len, \
         files = excluded.files, updated_ms = excluded.updated_ms",
    )?
    .execute(params![root, index_mtime, index_len, files, now_ms])?;
    Ok(())
}
