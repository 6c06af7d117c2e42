//! Reviews (`/review`, `harness review`) and the Stop gate's state: the SQL.
//!
//! Owns the `reviews` table and the reads the gate needs at Stop, each bounded: the session's
//! latest review by index, the files written since it from the session's events after a mark
//! (never a git diff), and the turn's writes since its previous Stop.

use rusqlite::{Connection, OptionalExtension, Result, Row, params};

use crate::policy::review_gate::{self, BlockKind, Finding, Latest, Status};

/// One row of `reviews`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    pub id: i64,
    pub session_id: String,
    pub thread: i64,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub status: String,
    pub trigger: String,
    pub event_mark: i64,
    pub base: Option<String>,
    pub criteria: Option<String>,
    pub criteria_from: Option<String>,
    pub files: Vec<String>,
    pub left_out: Option<String>,
    pub summary: Option<String>,
    pub findings: Vec<Finding>,
    pub error: Option<String>,
    pub run_ids: Vec<String>,
    pub blocks: i64,
    pub last_block: Option<String>,
    pub handed_off_ms: Option<i64>,
    pub waive_reason: Option<String>,
    pub note: Option<String>,
}

/// The columns of a [`Review`], in `row`'s order (a macro, for `concat!`).
macro_rules! columns {
    () => {
        "id, session_id, thread, created_ms, finished_ms, status, trigger, \
         event_mark, base, criteria, criteria_from, files, left_out, summary, findings, error, \
         run_ids, blocks, last_block, handed_off_ms, waive_reason, note"
    };
}

const COLUMNS: &str = columns!();

/// The session's latest review (`latest`).
pub const LATEST_SQL: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM reviews WHERE session_id = ?1 ORDER BY id DESC LIMIT 1"
);

fn json_list<T: serde::de::DeserializeOwned>(text: Option<String>) -> Vec<T> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn row(r: &Row<'_>) -> Result<Review> {
    Ok(Review {
        id: r.get(0)?,
        session_id: r.get(1)?,
        thread: r.get(2)?,
        created_ms: r.get(3)?,
        finished_ms: r.get(4)?,
        status: r.get(5)?,
        trigger: r.get(6)?,
        event_mark: r.get(7)?,
        base: r.get(8)?,
        criteria: r.get(9)?,
        criteria_from: r.get(10)?,
        files: json_list(r.get(11)?),
        left_out: r.get(12)?,
        summary: r.get(13)?,
        findings: json_list(r.get(14)?),
        error: r.get(15)?,
        run_ids: json_list(r.get(16)?),
        blocks: r.get(17)?,
        last_block: r.get(18)?,
        handed_off_ms: r.get(19)?,
        waive_reason: r.get(20)?,
        note: r.get(21)?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// A new review of `session_id`; it joins the thread of the session's latest review while that
/// one is an open REJECT or wanted review (its blocks count against the same cap). Returns its id.
pub fn open(
    conn: &Connection,
    session_id: &str,
    now_ms: i64,
    status: Status,
    trigger: &str,
    note: Option<&str>,
) -> Result<i64> {
    let thread: Option<i64> = conn
        .query_row(
            "SELECT thread FROM reviews WHERE session_id = ?1 AND handed_off_ms IS NULL \
             AND status IN ('reject', 'wanted') \
             AND id = (SELECT max(id) FROM reviews WHERE session_id = ?1)",
            [session_id],
            |r| r.get(0),
        )
        .optional()?;
    conn.prepare_cached(
        "INSERT INTO reviews (session_id, thread, created_ms, status, trigger, note) \
         VALUES (?1, 0, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![session_id, now_ms, status.as_str(), trigger, note])?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "UPDATE reviews SET thread = ?2 WHERE id = ?1",
        params![id, thread.unwrap_or(id)],
    )?;
    Ok(id)
}

/// A review's change, as collected: stored before the verdict, with the criteria.
#[allow(clippy::too_many_arguments)]
pub fn set_change(
    conn: &Connection,
    id: i64,
    event_mark: i64,
    base: Option<&str>,
    criteria: &str,
    criteria_from: &str,
    files: &[String],
    left_out: Option<&str>,
) -> Result<()> {
    conn.execute(
        "UPDATE reviews SET status = 'running', event_mark = ?2, base = ?3, criteria = ?4, \
         criteria_from = ?5, files = ?6, left_out = ?7 WHERE id = ?1",
        params![
            id,
            event_mark,
            base,
            criteria,
            criteria_from,
            to_json(&files),
            left_out
        ],
    )?;
    Ok(())
}

/// A review's outcome: a verdict (`approve`/`reject` with summary and findings) or `unavailable`
/// with why.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    conn: &Connection,
    id: i64,
    now_ms: i64,
    status: Status,
    summary: Option<&str>,
    findings: &[Finding],
    error: Option<&str>,
    run_ids: &[String],
) -> Result<()> {
    // The project briefs cached in `meta` read reviews and runs: made again when next asked.
    crate::store::memory::forget_briefs(conn)?;
    conn.execute(
        "UPDATE reviews SET status = ?2, finished_ms = ?3, summary = ?4, findings = ?5, \
         error = ?6, run_ids = ?7 WHERE id = ?1",
        params![
            id,
            status.as_str(),
            now_ms,
            summary,
            to_json(&findings),
            error,
            to_json(&run_ids)
        ],
    )?;
    Ok(())
}

/// The newest review of a session, whatever its state.
pub fn latest(conn: &Connection, session_id: &str) -> Result<Option<Review>> {
    conn.prepare_cached(LATEST_SQL)?
        .query_row([session_id], row)
        .optional()
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Review>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM reviews WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
}

/// The newest reviews, of one session or all.
pub fn recent(conn: &Connection, session_id: Option<&str>, limit: usize) -> Result<Vec<Review>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE ?1 IS NULL OR session_id = ?1 \
         ORDER BY id DESC LIMIT ?2"
    ))?
    .query_map(params![session_id, limit as i64], row)?
    .collect()
}

/// Each session's latest review while the gate still acts on it (a REJECT, wanted or running
/// review not handed off), newest first: what `harness status` shows.
pub fn open_reviews(conn: &Connection) -> Result<Vec<Review>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM reviews r WHERE handed_off_ms IS NULL \
         AND status IN ('reject', 'wanted', 'running') \
         AND id = (SELECT max(id) FROM reviews WHERE session_id = r.session_id) \
         ORDER BY id DESC LIMIT 50"
    ))?
    .query_map([], row)?
    .collect()
}

/// Blocks given in a thread.
pub fn thread_blocks(conn: &Connection, thread: i64) -> Result<u32> {
    conn.prepare_cached("SELECT coalesce(sum(blocks), 0) FROM reviews WHERE thread = ?1")?
        .query_row([thread], |r| r.get::<_, i64>(0))
        .map(|n| n.clamp(0, i64::from(u32::MAX)) as u32)
}

/// The gate blocked once for review `id`.
pub fn count_block(conn: &Connection, id: i64, kind: BlockKind) -> Result<()> {
    conn.prepare_cached("UPDATE reviews SET blocks = blocks + 1, last_block = ?2 WHERE id = ?1")?
        .execute(params![id, kind.as_str()])?;
    Ok(())
}

/// The gate is done with review `id`'s thread.
pub fn hand_off(conn: &Connection, id: i64, now_ms: i64) -> Result<()> {
    // The project briefs cached in `meta` read reviews and runs: made again when next asked.
    crate::store::memory::forget_briefs(conn)?;
    conn.prepare_cached("UPDATE reviews SET handed_off_ms = ?2 WHERE thread = (SELECT thread FROM reviews WHERE id = ?1)")?
        .execute(params![id, now_ms])?;
    Ok(())
}

/// The user sets the session's open review aside; returns its id, or None when none is open.
pub fn waive(
    conn: &Connection,
    session_id: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<Option<i64>> {
    // The project briefs cached in `meta` read reviews and runs: made again when next asked.
    crate::store::memory::forget_briefs(conn)?;
    let Some(r) = latest(conn, session_id)? else {
        return Ok(None);
    };
    if !matches!(
        r.status.as_str(),
        "reject" | "wanted" | "running" | "requested"
    ) {
        return Ok(None);
    }
    conn.execute(
        "UPDATE reviews SET status = 'waived', waive_reason = ?2, finished_ms = coalesce(finished_ms, ?3) \
         WHERE id = ?1",
        params![r.id, reason, now_ms],
    )?;
    Ok(Some(r.id))
}

/// `/review`'s recorded request: the criteria as typed.
pub fn request(conn: &Connection, session_id: &str, now_ms: i64, criteria: &str) -> Result<i64> {
    let id = open(conn, session_id, now_ms, Status::Requested, "command", None)?;
    conn.execute(
        "UPDATE reviews SET criteria = ?2 WHERE id = ?1",
        params![id, criteria],
    )?;
    Ok(id)
}

/// Takes the newest `/review` request of a session made at or after `since_ms`: (id, criteria).
pub fn take_request(
    conn: &Connection,
    session_id: &str,
    since_ms: i64,
) -> Result<Option<(i64, String)>> {
    conn.query_row(
        "SELECT id, coalesce(criteria, '') FROM reviews WHERE session_id = ?1 \
         AND status = 'requested' AND created_ms >= ?2 ORDER BY id DESC LIMIT 1",
        params![session_id, since_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The tools whose successful call writes the file it names (see `event::ToolClass::FileWrite`).
const WRITE_TOOLS: &str = write_tools_sql!();

/// The files a session wrote after an event (`written_since`).
pub const WRITTEN_SINCE_SQL: &str = concat!(
    "SELECT file_path FROM (SELECT event, tool_name, file_path FROM events \
     WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3) \
     WHERE event IN ('PostToolUse', 'AfterTool') AND tool_name IN ",
    write_tools_sql!(),
    " AND file_path IS NOT NULL"
);

/// The session's previous Stop (`previous_stop`).
pub const PREVIOUS_STOP_SQL: &str = "SELECT id FROM events WHERE session_id = ?1 AND id < ?2 \
     AND id > ?3 AND event IN ('Stop', 'AfterAgent') ORDER BY id DESC LIMIT 1";

/// The most events read after a mark: a Stop stays within its budget however long the turn.
pub const SCAN_BOUND: i64 = 2000;

/// Files the session wrote (successful file-writing tool calls) after event `after_id`, distinct,
/// in order. Reads at most [`SCAN_BOUND`] of the session's events, through its index.
pub fn written_since(conn: &Connection, session_id: &str, after_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(WRITTEN_SINCE_SQL)?;
    let mut out: Vec<String> = Vec::new();
    for f in stmt.query_map(params![session_id, after_id, SCAN_BOUND], |r| {
        r.get::<_, String>(0)
    })? {
        let f = f?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

/// Lines added or replaced by the session's file writes after event `after_id` (newlines in
/// Write `content`, Edit `new_string`, Gemini's `content`/`new_string`; a MultiEdit counts one,
/// its `edits` being JSON text with escaped newlines), or the count kept beside a clipped body,
/// made the same way (`record::written_lines`).
pub fn lines_since(conn: &Connection, session_id: &str, after_id: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT coalesce(sum(coalesce(n, length(t) - length(replace(t, char(10), '')) + 1)), \
             0) FROM \
             (SELECT json_extract(payload, '$.agent_harness.lines') AS n, \
                     coalesce(json_extract(payload, '$.tool_input.content'), \
                              json_extract(payload, '$.tool_input.new_string'), \
                              json_extract(payload, '$.tool_input.edits'), '') AS t \
              FROM (SELECT event, tool_name, payload FROM events \
                    WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3) \
              WHERE event IN ('PostToolUse', 'AfterTool') AND tool_name IN {WRITE_TOOLS} \
              AND json_valid(payload))"
        ))?
        .query_row(params![session_id, after_id, SCAN_BOUND], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// The id of the session's previous Stop before event `before_id` (0 when none). Walks back
/// through the session's index entries and stops at the first Stop; never further back than
/// [`SCAN_BOUND`] × 25 event ids (a window of the whole store's events, so a session without a
/// Stop in it costs at most its own events there).
pub fn previous_stop(conn: &Connection, session_id: &str, before_id: i64) -> Result<i64> {
    conn.prepare_cached(PREVIOUS_STOP_SQL)?
        .query_row(
            params![session_id, before_id, before_id - SCAN_BOUND * 25],
            |r| r.get(0),
        )
        .optional()
        .map(|id| id.unwrap_or_else(|| (before_id - SCAN_BOUND * 25).max(0)))
}

/// The largest event id (the mark a review's change is collected at).
pub fn event_mark(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
}

/// What the gate needs for one Stop (event `stop_event_id`, already recorded) of `session_id`.
/// `count_lines`: also count the turn's changed lines (only when that trigger is on).
pub fn gate_state<'a>(
    conn: &Connection,
    session_id: &'a str,
    stop_event_id: i64,
    count_lines: bool,
) -> Result<review_gate::State<'a>> {
    let latest = latest(conn, session_id)?;
    let mut state = review_gate::State {
        session_id,
        ..Default::default()
    };
    // The turn's writes: after the previous Stop, and after the latest review's change.
    let prev = previous_stop(conn, session_id, stop_event_id)?;
    let since = latest.as_ref().map_or(prev, |r| prev.max(r.event_mark));
    if let Some(r) = latest {
        let open = r.handed_off_ms.is_none() && r.status == "reject";
        let written_since = if open {
            written_since(conn, session_id, r.event_mark)?
        } else {
            Vec::new()
        };
        state.latest = Some(Latest {
            id: r.id,
            status: Status::parse(&r.status).unwrap_or(Status::Unavailable),
            handed_off: r.handed_off_ms.is_some(),
            blocks: r.blocks.clamp(0, i64::from(u32::MAX)) as u32,
            last_block: r.last_block.as_deref().and_then(BlockKind::parse),
            thread_blocks: if open || r.status == "wanted" {
                thread_blocks(conn, r.thread)?
            } else {
                0
            },
            summary: r.summary.unwrap_or_default(),
            findings: r.findings,
            written_since,
        });
    }
    let settled = state.latest.as_ref().is_none_or(|l| {
        l.handed_off
            || matches!(
                l.status,
                Status::Approve | Status::Unavailable | Status::Waived
            )
    });
    // Only a settled (or absent) review leaves room for the trigger: skip the scan otherwise.
    if settled {
        state.turn_files = written_since(conn, session_id, since)?;
        if count_lines && !state.turn_files.is_empty() {
            state.turn_lines = Some(lines_since(conn, session_id, since)?);
        }
    }
    Ok(state)
}

/// The `plan` of the session's last ExitPlanMode call (the plan the user accepted), if any.
pub fn last_plan(conn: &Connection, session_id: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT json_extract(payload, '$.tool_input.plan') FROM events \
         WHERE session_id = ?1 AND tool_name = 'ExitPlanMode' AND json_valid(payload) \
         AND json_extract(payload, '$.tool_input.plan') IS NOT NULL ORDER BY id DESC LIMIT 1",
        [session_id],
        |r| r.get(0),
    )
    .optional()
}

/// The session's first `n` prompts, oldest first.
pub fn first_prompts(conn: &Connection, session_id: &str, n: usize) -> Result<Vec<String>> {
    conn.prepare(
        "SELECT json_extract(payload, '$.prompt') FROM events WHERE session_id = ?1 \
         AND event IN ('UserPromptSubmit', 'BeforeAgent') AND json_valid(payload) \
         AND json_extract(payload, '$.prompt') IS NOT NULL ORDER BY id LIMIT ?2",
    )?
    .query_map(params![session_id, n as i64], |r| r.get(0))?
    .collect()
}

/// Every file the session wrote with a file-writing tool that succeeded, in order (from its
/// tool calls), for a review outside git.
pub fn edited_files(conn: &Connection, session_id: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT file_path FROM tool_calls WHERE session_id = ?1 AND tool_name IN {WRITE_TOOLS} \
         AND file_path IS NOT NULL AND outcome = 'success' \
         ORDER BY coalesce(started_ms, finished_ms), seq"
    ))?;
    for f in stmt.query_map([session_id], |r| r.get::<_, String>(0))? {
        let f = f?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}
