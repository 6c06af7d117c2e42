//! Read queries for the `harness` CLI: events and the decisions the hooks made, sessions, tool
//! calls, the lock history, counts.
//!
//! Owns the SELECTs; must not write.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Result, Row, params_from_iter};

use crate::process::{self, ClientProcess};

/// One row of `events`.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub ts_ms: i64,
    pub session_id: Option<String>,
    pub agent: String,
    pub event: String,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub file_path: Option<String>,
    pub truncated: bool,
    pub payload: String,
    /// What the harness answered, when it said more than nothing (`deny: ...`, `block: ...`,
    /// `context: ...`, `wait until <ms>`, `allowed after the wait`).
    pub decision: Option<String>,
}

/// The kinds of answer a hook records in `events.decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// A tool call refused (`deny: <reason>`).
    Deny,
    /// A prompt or stop blocked (`block: <reason>`).
    Block,
    /// Text added to the agent's context: advice, notices, answers (`context: <text>`).
    Context,
    /// A write held back until a claim lapsed (`wait until <ms>`, then `allowed after the wait`
    /// or the final deny).
    Wait,
    /// Any of these.
    Any,
}

impl DecisionKind {
    /// The SQL condition on `decision` that selects this kind.
    fn condition(self) -> &'static str {
        match self {
            DecisionKind::Deny => "decision LIKE 'deny:%'",
            DecisionKind::Block => "decision LIKE 'block:%'",
            DecisionKind::Context => "decision LIKE 'context:%'",
            DecisionKind::Wait => "(decision LIKE 'wait until%' OR decision LIKE 'allowed after%')",
            DecisionKind::Any => "decision IS NOT NULL",
        }
    }

    /// The kind of a recorded decision and the text that follows it (`deny: held by ...` →
    /// `(Deny, "held by ...")`). Anything unknown counts as context.
    pub fn of(decision: &str) -> (DecisionKind, &str) {
        for (prefix, kind) in [
            ("deny:", DecisionKind::Deny),
            ("block:", DecisionKind::Block),
            ("context:", DecisionKind::Context),
        ] {
            if let Some(rest) = decision.strip_prefix(prefix) {
                return (kind, rest.trim_start());
            }
        }
        if decision.starts_with("wait until") || decision.starts_with("allowed after") {
            return (DecisionKind::Wait, decision);
        }
        (DecisionKind::Context, decision)
    }

    /// One word for a table: `deny`, `block`, `context`, `wait`.
    pub fn word(self) -> &'static str {
        match self {
            DecisionKind::Deny => "deny",
            DecisionKind::Block => "block",
            DecisionKind::Context => "context",
            DecisionKind::Wait => "wait",
            DecisionKind::Any => "any",
        }
    }
}

/// Which events to list. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Session ids (already resolved from a prefix).
    pub sessions: Option<Vec<String>>,
    /// Event names, matched exactly (`PreToolUse`, `BeforeTool`, ...).
    pub events: Vec<String>,
    /// Tool names, matched exactly.
    pub tools: Vec<String>,
    /// Only events at or after this time.
    pub since_ms: Option<i64>,
    /// Only events with a larger id (for `--follow`).
    pub after_id: Option<i64>,
    /// Only events the harness answered this way.
    pub decision: Option<DecisionKind>,
}

const EVENT_COLUMNS: &str = "id, ts_ms, session_id, agent, event, tool_name, tool_use_id, \
     file_path, truncated, payload, decision";

pub(crate) fn event_row(r: &Row<'_>) -> Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        ts_ms: r.get(1)?,
        session_id: r.get(2)?,
        agent: r.get(3)?,
        event: r.get(4)?,
        tool_name: r.get(5)?,
        tool_use_id: r.get(6)?,
        file_path: r.get(7)?,
        truncated: r.get(8)?,
        payload: r.get(9)?,
        decision: r.get(10)?,
    })
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A `since` scan walks back from the newest event and stops after this many events in a row that
/// are older than `since` (there is no index on time; ids follow time, except for the few events
/// that waited in the spool).
const SINCE_SCAN_SLACK: usize = 256;

/// The newest `limit` events that match, oldest first.
pub fn events(conn: &Connection, filter: &EventFilter, limit: usize) -> Result<Vec<EventRow>> {
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(sessions) = &filter.sessions {
        sql += &format!(" AND session_id IN ({})", placeholders(sessions.len()));
        args.extend(sessions.iter().cloned().map(SqlValue::Text));
    }
    if !filter.events.is_empty() {
        sql += &format!(" AND event IN ({})", placeholders(filter.events.len()));
        args.extend(filter.events.iter().cloned().map(SqlValue::Text));
    }
    if !filter.tools.is_empty() {
        sql += &format!(" AND tool_name IN ({})", placeholders(filter.tools.len()));
        args.extend(filter.tools.iter().cloned().map(SqlValue::Text));
    }
    if let Some(kind) = filter.decision {
        sql += " AND ";
        sql += kind.condition();
    }
    if let Some(after) = filter.after_id {
        sql += " AND id > ?";
        args.push(SqlValue::Integer(after));
    }
    sql += " ORDER BY id DESC";
    if filter.since_ms.is_none() {
        sql += " LIMIT ?";
        args.push(SqlValue::Integer(limit.min(i64::MAX as usize) as i64));
    }
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    let mut older_in_a_row = 0;
    while out.len() < limit {
        let Some(row) = rows.next()? else { break };
        let row = event_row(row)?;
        if let Some(since) = filter.since_ms
            && row.ts_ms < since
        {
            older_in_a_row += 1;
            if older_in_a_row >= SINCE_SCAN_SLACK {
                break;
            }
            continue;
        }
        older_in_a_row = 0;
        out.push(row);
    }
    out.reverse();
    Ok(out)
}

/// How far back [`recent_decisions`] looks, in events: `decision` has no index, and it sits
/// after the payload in each row, so a scan reads every payload it passes.
pub const RECENT_DECISIONS_SCAN: i64 = 5_000;

/// The newest `limit` events among the last [`RECENT_DECISIONS_SCAN`] that carry a decision of
/// this kind, oldest first (for `harness status`).
pub fn recent_decisions(
    conn: &Connection,
    kind: DecisionKind,
    limit: usize,
) -> Result<Vec<EventRow>> {
    let floor = last_event_id(conn)? - RECENT_DECISIONS_SCAN;
    let mut rows = conn
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 AND {} ORDER BY id DESC LIMIT ?2",
            kind.condition()
        ))?
        .query_map(
            rusqlite::params![floor, limit.min(i64::MAX as usize) as i64],
            event_row,
        )?
        .collect::<Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

/// One entry of the lock history (`lock_log`): a claim taken, taken over, released or denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLogRow {
    pub id: i64,
    pub ts_ms: i64,
    pub path: String,
    /// Who acted: the session granted, released or denied (`harness-cli` for a release by hand).
    pub session_id: String,
    /// `grant`, `release`, `deny`, `lapse` (taken over after its TTL) or `orphan` (taken over
    /// from an ended or vanished holder).
    pub action: String,
    /// The previous holder (lapse, orphan, a release by hand) or the blocking one (deny).
    pub other: Option<String>,
}

/// Which lock history to list. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct LockLogFilter {
    /// Entries where one of these sessions acted or was the other party.
    pub sessions: Option<Vec<String>>,
    /// Only entries at or after this time.
    pub since_ms: Option<i64>,
}

/// The newest `limit` entries of the lock history that match, oldest first.
pub fn lock_history(
    conn: &Connection,
    filter: &LockLogFilter,
    limit: usize,
) -> Result<Vec<LockLogRow>> {
    let mut sql =
        String::from("SELECT id, ts_ms, path, session_id, action, other FROM lock_log WHERE 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(sessions) = &filter.sessions {
        let marks = placeholders(sessions.len());
        sql += &format!(" AND (session_id IN ({marks}) OR other IN ({marks}))");
        for _ in 0..2 {
            args.extend(sessions.iter().cloned().map(SqlValue::Text));
        }
    }
    if let Some(since) = filter.since_ms {
        sql += " AND ts_ms >= ?";
        args.push(SqlValue::Integer(since));
    }
    sql += " ORDER BY id DESC LIMIT ?";
    args.push(SqlValue::Integer(limit.min(i64::MAX as usize) as i64));
    let mut rows = conn
        .prepare(&sql)?
        .query_map(params_from_iter(args), |r| {
            Ok(LockLogRow {
                id: r.get(0)?,
                ts_ms: r.get(1)?,
                path: r.get(2)?,
                session_id: r.get(3)?,
                action: r.get(4)?,
                other: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

/// The largest event id, or 0 for an empty store.
pub fn last_event_id(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
}

/// One row of `sessions`.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub session_id: String,
    pub agent: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub cwd: Option<String>,
    pub project_root: Option<String>,
    pub transcript_path: Option<String>,
    pub model: Option<String>,
    pub source: Option<String>,
    pub client: Option<ClientProcess>,
    pub ended_ms: Option<i64>,
    pub end_reason: Option<String>,
    pub event_count: i64,
}

/// Whether a session's agent is still at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// No SessionEnd; its client process runs (or is not known and was heard from lately).
    Live,
    /// A SessionEnd was recorded.
    Ended,
    /// No SessionEnd, but its client process is gone (crashed, killed).
    Gone,
    /// No SessionEnd, no known process, and silent for longer than the idle bound.
    Stale,
}

impl Liveness {
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Ended => "ended",
            Liveness::Gone => "gone",
            Liveness::Stale => "stale",
        }
    }
}

/// A session whose client process is unknown counts as live for this long after its last event.
pub const UNKNOWN_PROCESS_IDLE_MS: i64 = 60 * 60 * 1000;

impl SessionRow {
    pub fn liveness(&self, now_ms: i64) -> Liveness {
        if self.ended_ms.is_some() {
            Liveness::Ended
        } else if let Some(client) = self.client {
            if process::is_alive(client) {
                Liveness::Live
            } else {
                Liveness::Gone
            }
        } else if now_ms - self.last_seen_ms <= UNKNOWN_PROCESS_IDLE_MS {
            Liveness::Live
        } else {
            Liveness::Stale
        }
    }
}

/// The columns of a session row, with its last activity and event count taken from `events`
/// (through `events_by_session`) for sessions picked by the `picked (session_id, last_id)` CTE.
const SESSION_SELECT: &str = "SELECT s.session_id, s.agent, s.first_seen_ms, \
     coalesce((SELECT ts_ms FROM events WHERE id = p.last_id), s.first_seen_ms), \
     s.cwd, s.project_root, s.transcript_path, s.model, s.source, s.client_pid, s.client_start, \
     s.ended_ms, s.end_reason, \
     (SELECT count(*) FROM events e WHERE e.session_id = s.session_id) \
     FROM picked p JOIN sessions s ON s.session_id = p.session_id \
     ORDER BY p.last_id DESC";

/// The newest event id of a session, for ordering sessions by activity.
const LAST_ID: &str = "(SELECT max(id) FROM events e WHERE e.session_id = s.session_id)";

fn session_row(r: &Row<'_>) -> Result<SessionRow> {
    let pid: Option<i64> = r.get(9)?;
    let start: Option<i64> = r.get(10)?;
    Ok(SessionRow {
        session_id: r.get(0)?,
        agent: r.get(1)?,
        first_seen_ms: r.get(2)?,
        last_seen_ms: r.get(3)?,
        cwd: r.get(4)?,
        project_root: r.get(5)?,
        transcript_path: r.get(6)?,
        model: r.get(7)?,
        source: r.get(8)?,
        client: pid.zip(start).map(|(pid, start)| ClientProcess {
            pid: pid as u32,
            start_ticks: start as u64,
        }),
        ended_ms: r.get(11)?,
        end_reason: r.get(12)?,
        event_count: r.get(13)?,
    })
}

/// Sessions by most recent activity, at most `limit`.
pub fn sessions(conn: &Connection, limit: usize) -> Result<Vec<SessionRow>> {
    conn.prepare(&format!(
        "WITH picked AS (SELECT s.session_id, {LAST_ID} AS last_id FROM sessions s \
         ORDER BY last_id DESC LIMIT ?1) {SESSION_SELECT}"
    ))?
    .query_map([limit as i64], session_row)?
    .collect()
}

/// Sessions that have not ended, by most recent activity.
pub fn open_sessions(conn: &Connection) -> Result<Vec<SessionRow>> {
    conn.prepare(&format!(
        "WITH picked AS (SELECT s.session_id, {LAST_ID} AS last_id FROM sessions s \
         WHERE s.ended_ms IS NULL) {SESSION_SELECT}"
    ))?
    .query_map([], session_row)?
    .collect()
}

/// One session by id.
pub fn session(conn: &Connection, id: &str) -> Result<Option<SessionRow>> {
    conn.query_row(
        &format!(
            "WITH picked AS (SELECT s.session_id, {LAST_ID} AS last_id FROM sessions s \
             WHERE s.session_id = ?1) {SESSION_SELECT}"
        ),
        [id],
        session_row,
    )
    .optional()
}

/// Session ids that start with `prefix`.
pub fn sessions_with_prefix(conn: &Connection, prefix: &str) -> Result<Vec<String>> {
    // A range scan on the primary key; `LIKE` could not use it and would treat `_` as a wildcard.
    let mut upper = prefix.to_owned();
    upper.push(char::MAX);
    conn.prepare(
        "SELECT session_id FROM sessions WHERE session_id >= ?1 AND session_id < ?2 \
         ORDER BY first_seen_ms DESC",
    )?
    .query_map([prefix, upper.as_str()], |r| r.get(0))?
    .collect()
}

/// One row of `tool_calls`.
#[derive(Debug, Clone)]
pub struct ToolCallRow {
    pub session_id: String,
    pub call_key: String,
    pub tool_name: String,
    pub file_path: Option<String>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub outcome: String,
    pub error: Option<String>,
}

/// A session's tool calls, in order.
pub fn tool_calls(conn: &Connection, session_id: &str) -> Result<Vec<ToolCallRow>> {
    conn.prepare(
        "SELECT session_id, call_key, tool_name, file_path, started_ms, finished_ms, duration_ms, \
         outcome, error FROM tool_calls WHERE session_id = ?1 \
         ORDER BY coalesce(started_ms, finished_ms), seq",
    )?
    .query_map([session_id], |r| {
        Ok(ToolCallRow {
            session_id: r.get(0)?,
            call_key: r.get(1)?,
            tool_name: r.get(2)?,
            file_path: r.get(3)?,
            started_ms: r.get(4)?,
            finished_ms: r.get(5)?,
            duration_ms: r.get(6)?,
            outcome: r.get(7)?,
            error: r.get(8)?,
        })
    })?
    .collect()
}

/// How many events were recorded at or after `since_ms` (the same backwards walk as `events`).
pub fn count_since(conn: &Connection, since_ms: i64) -> Result<i64> {
    let mut stmt = conn.prepare("SELECT ts_ms FROM events ORDER BY id DESC")?;
    let mut rows = stmt.query([])?;
    let (mut count, mut older_in_a_row) = (0, 0);
    while let Some(row) = rows.next()? {
        if row.get::<_, i64>(0)? >= since_ms {
            count += 1;
            older_in_a_row = 0;
        } else {
            older_in_a_row += 1;
            if older_in_a_row >= SINCE_SCAN_SLACK {
                break;
            }
        }
    }
    Ok(count)
}

/// Totals for the status panel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub events: i64,
    pub sessions: i64,
    pub events_last_hour: i64,
}

pub fn totals(conn: &Connection, now_ms: i64) -> Result<Totals> {
    Ok(Totals {
        events: last_event_id(conn)?,
        sessions: conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?,
        events_last_hour: count_since(conn, now_ms - 3_600_000)?,
    })
}
