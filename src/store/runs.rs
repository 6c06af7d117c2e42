//! Gemini runs and pending delegations: the SQL.

use rusqlite::{Connection, OptionalExtension, Result, Row, params};

/// One row of `runs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub run_id: String,
    pub requester: Option<String>,
    pub task: String,
    pub prompt: String,
    pub cwd: Option<String>,
    pub model: Option<String>,
    pub models_used: Option<String>,
    pub mode: String,
    pub status: String,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub requests: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub tool_calls: Option<i64>,
    pub files_written: Option<String>,
    pub result: Option<String>,
    pub retried_with: Option<String>,
    pub waiter: String,
    pub worker_pid: Option<i64>,
}

const COLUMNS: &str = "run_id, requester, task, prompt, cwd, model, models_used, mode, status, \
     error_kind, error, exit_code, created_ms, started_ms, finished_ms, duration_ms, requests, \
     input_tokens, output_tokens, total_tokens, cached_tokens, tool_calls, files_written, result, \
     retried_with, waiter, worker_pid";

fn run_row(r: &Row<'_>) -> Result<Run> {
    Ok(Run {
        run_id: r.get(0)?,
        requester: r.get(1)?,
        task: r.get(2)?,
        prompt: r.get(3)?,
        cwd: r.get(4)?,
        model: r.get(5)?,
        models_used: r.get(6)?,
        mode: r.get(7)?,
        status: r.get(8)?,
        error_kind: r.get(9)?,
        error: r.get(10)?,
        exit_code: r.get(11)?,
        created_ms: r.get(12)?,
        started_ms: r.get(13)?,
        finished_ms: r.get(14)?,
        duration_ms: r.get(15)?,
        requests: r.get(16)?,
        input_tokens: r.get(17)?,
        output_tokens: r.get(18)?,
        total_tokens: r.get(19)?,
        cached_tokens: r.get(20)?,
        tool_calls: r.get(21)?,
        files_written: r.get(22)?,
        result: r.get(23)?,
        retried_with: r.get(24)?,
        waiter: r.get(25)?,
        worker_pid: r.get(26)?,
    })
}

/// Writes a run row (insert or replace).
pub fn put(conn: &Connection, r: &Run) -> Result<()> {
    // The project briefs cached in `meta` read reviews and runs: made again when next asked.
    crate::store::memory::forget_briefs(conn)?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO runs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
         ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)"
    ))?
    .execute(params![
        r.run_id,
        r.requester,
        r.task,
        r.prompt,
        r.cwd,
        r.model,
        r.models_used,
        r.mode,
        r.status,
        r.error_kind,
        r.error,
        r.exit_code,
        r.created_ms,
        r.started_ms,
        r.finished_ms,
        r.duration_ms,
        r.requests,
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cached_tokens,
        r.tool_calls,
        r.files_written,
        r.result,
        r.retried_with,
        r.waiter,
        r.worker_pid,
    ])?;
    Ok(())
}

/// A queued run started: its status, start and worker, and nothing else (the waiter column is
/// the waiting process's to set).
pub fn mark_running(conn: &Connection, run_id: &str, started_ms: i64, pid: i64) -> Result<()> {
    // The project briefs cached in `meta` read reviews and runs: made again when next asked.
    crate::store::memory::forget_briefs(conn)?;
    conn.execute(
        "UPDATE runs SET status = 'running', started_ms = ?2, worker_pid = ?3 WHERE run_id = ?1",
        params![run_id, started_ms, pid],
    )?;
    Ok(())
}

/// Ties a taken /delegate-gemini task to the run made of it.
pub fn link_delegation(conn: &Connection, id: i64, run_id: &str) -> Result<()> {
    conn.execute(
        "UPDATE delegations SET run_id = ?2 WHERE id = ?1",
        params![id, run_id],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, run_id: &str) -> Result<Option<Run>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM runs WHERE run_id = ?1"),
        [run_id],
        run_row,
    )
    .optional()
}

/// Runs whose id starts with `prefix`, newest first.
pub fn with_prefix(conn: &Connection, prefix: &str) -> Result<Vec<Run>> {
    let mut upper = prefix.to_owned();
    upper.push(char::MAX);
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM runs WHERE run_id >= ?1 AND run_id < ?2 ORDER BY created_ms DESC"
    ))?
    .query_map([prefix, upper.as_str()], run_row)?
    .collect()
}

/// The newest runs.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<Run>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM runs ORDER BY created_ms DESC LIMIT ?1"
    ))?
    .query_map([limit as i64], run_row)?
    .collect()
}

/// Runs created at or after `since_ms` (for the Gemini side of quota).
pub fn since(conn: &Connection, since_ms: i64) -> Result<Vec<Run>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM runs WHERE created_ms >= ?1 ORDER BY created_ms"
    ))?
    .query_map([since_ms], run_row)?
    .collect()
}

/// Records a /delegate-gemini task for `harness delegate --pending` to take.
pub fn add_delegation(
    conn: &Connection,
    session_id: &str,
    now_ms: i64,
    task: &str,
    write: bool,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO delegations (session_id, created_ms, task, write) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![session_id, now_ms, task, write])?;
    Ok(conn.last_insert_rowid())
}

/// A pending delegation: (id, task, write).
pub type Delegation = (i64, String, bool);

/// Takes the newest pending delegation of a session created at or after `since_ms` (the run made
/// of it is linked with [`link_delegation`]).
pub fn take_delegation(
    conn: &Connection,
    session_id: &str,
    since_ms: i64,
    now_ms: i64,
) -> Result<Option<Delegation>> {
    let found: Option<Delegation> = conn
        .query_row(
            "SELECT id, task, write FROM delegations WHERE session_id = ?1 AND taken_ms IS NULL \
             AND created_ms >= ?2 ORDER BY id DESC LIMIT 1",
            params![session_id, since_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((id, _, _)) = &found {
        conn.execute(
            "UPDATE delegations SET taken_ms = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
    }
    Ok(found)
}
