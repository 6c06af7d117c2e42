//! `harness events`: the recorded hook events and what the harness answered to each, as a table
//! or JSON lines, once or as a live feed.

use std::time::Duration;

use agent_harness::hook::now_ms;
use agent_harness::store::query::{self, DecisionKind, EventFilter, EventRow};
use rusqlite::Connection;

use crate::fmt::{self, Col, Out, col};
use crate::{CliError, CliResult, Exit, open_store, say};

#[derive(clap::Args)]
pub struct Args {
    /// How many of the newest events to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Only this session (an id or its first characters).
    #[arg(short, long)]
    session: Option<String>,
    /// Only these events, as the client names them (PreToolUse, BeforeTool, ...). Repeatable.
    #[arg(short, long)]
    event: Vec<String>,
    /// Only calls of these tools (Edit, Bash, write_file, ...). Repeatable.
    #[arg(short, long)]
    tool: Vec<String>,
    /// Only events since a span ago (10m, 2h, 7d) or a time (2026-11-21 14:00).
    #[arg(long)]
    since: Option<String>,
    /// Only events the harness answered: a tool call it denied, a prompt or stop it blocked,
    /// context it added (advice, notices, answers), a write it held back, or any of these.
    #[arg(short, long, value_enum)]
    decision: Option<Decision>,
    /// One JSON object per line, payload included.
    #[arg(long)]
    json: bool,
    /// Keep printing new events as they are recorded (Ctrl-C to stop).
    #[arg(short, long)]
    follow: bool,
}

/// `--decision`'s values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Decision {
    Deny,
    Block,
    Context,
    Wait,
    Any,
}

impl From<Decision> for DecisionKind {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Deny => DecisionKind::Deny,
            Decision::Block => DecisionKind::Block,
            Decision::Context => DecisionKind::Context,
            Decision::Wait => DecisionKind::Wait,
            Decision::Any => DecisionKind::Any,
        }
    }
}

/// Resolves a session id prefix to the sessions it names.
pub fn resolve_session(conn: &Connection, prefix: &str) -> CliResult<Vec<String>> {
    let ids = query::sessions_with_prefix(conn, prefix)?;
    if ids.is_empty() {
        return Err(CliError::Message(format!(
            "no session starts with {:?} (see `harness sessions`)",
            agent_harness::text::one_line(prefix)
        )));
    }
    Ok(ids)
}

/// The event table's columns. Fixed widths, so that a live feed stays aligned.
const COLUMNS: [Col; 7] = [
    col("TIME", 11),
    col("SESSION", 8),
    col("AGENT", 6),
    col("EVENT", 18),
    col("TOOL", 12),
    col("DECISION", 8),
    col("DETAIL", 120),
];

fn widths() -> Vec<usize> {
    COLUMNS.iter().map(|c| c.max).collect()
}

/// The table's heading line.
pub fn heading() -> String {
    let heads: Vec<String> = COLUMNS.iter().map(|c| c.head.to_owned()).collect();
    fmt::row(&COLUMNS, &widths(), &heads)
}

pub fn run(args: Args) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let now = now_ms();
    let mut filter = EventFilter {
        sessions: None,
        events: args.event,
        tools: args.tool,
        since_ms: args
            .since
            .as_deref()
            .map(|s| fmt::parse_since(s, now))
            .transpose()?,
        after_id: None,
        decision: args.decision.map(DecisionKind::from),
    };
    if let Some(prefix) = &args.session {
        filter.sessions = Some(resolve_session(conn, prefix)?);
    }
    let mut out = fmt::out();
    let rows = query::events(conn, &filter, args.limit)?;
    if !args.json && !args.follow && rows.is_empty() {
        if filter.decision.is_some() {
            say!(out, "No event matches: the harness made no such decision.")?;
        } else {
            say!(
                out,
                "No events recorded yet. Run `harness install` (every project; `--project DIR` for one), then use claude."
            )?;
        }
        return Ok(Exit::Ok);
    }
    if !args.json {
        out.line(heading().trim_end())?;
    }
    print(&mut out, &rows, args.json)?;
    if !args.follow {
        return Ok(Exit::Ok);
    }
    let mut last = rows.last().map_or(query::last_event_id(conn)?, |r| r.id);
    loop {
        out.flush()?;
        std::thread::sleep(Duration::from_millis(250));
        filter.after_id = Some(last);
        let rows = query::events(conn, &filter, 10_000)?;
        if let Some(r) = rows.last() {
            last = r.id;
        }
        print(&mut out, &rows, args.json)?;
    }
}

/// One event as JSON, payload and decision included.
pub fn json(r: &EventRow) -> serde_json::Value {
    let payload: serde_json::Value =
        serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": r.id,
        "time": fmt::rfc3339(r.ts_ms),
        "ts_ms": r.ts_ms,
        "session_id": r.session_id,
        "agent": r.agent,
        "event": r.event,
        "tool_name": r.tool_name,
        "tool_use_id": r.tool_use_id,
        "file_path": r.file_path,
        "truncated": r.truncated,
        "decision": r.decision,
        "payload": payload,
    })
}

fn print(out: &mut Out, rows: &[EventRow], json: bool) -> CliResult<()> {
    for r in rows {
        if json {
            out.json(&self::json(r))?;
        } else {
            out.line(line(r).trim_end())?;
        }
    }
    Ok(())
}

/// One event as a table row: time, session, agent, event, tool, the harness's decision, and the
/// file or a summary followed by the decision's reason.
pub fn line(r: &EventRow) -> String {
    let mut detail = r
        .file_path
        .as_deref()
        .map(fmt::path)
        .or_else(|| summary(&r.payload))
        .unwrap_or_default();
    if r.truncated {
        detail.push_str(" [truncated]");
    }
    let (kind, reason) = match r.decision.as_deref().map(DecisionKind::of) {
        Some((kind, reason)) => (Some(kind), reason.trim_start_matches("agent-harness: ")),
        None => (None, ""),
    };
    match kind {
        // A refusal's reason names the file and the holder: it is the detail that matters.
        Some(DecisionKind::Deny | DecisionKind::Block) if !reason.is_empty() => {
            detail = reason.to_owned();
        }
        Some(_) if !reason.is_empty() => {
            if !detail.is_empty() {
                detail.push_str(" — ");
            }
            detail.push_str(reason);
        }
        _ => {}
    }
    let word = kind.map_or("-", DecisionKind::word);
    let cells = [
        fmt::clock(r.ts_ms),
        r.session_id
            .as_deref()
            .map(fmt::short)
            .unwrap_or("-")
            .into(),
        r.agent.clone(),
        r.event.clone(),
        r.tool_name.clone().unwrap_or_default(),
        word.into(),
        detail,
    ];
    fmt::row(&COLUMNS, &widths(), &cells)
}

/// One short line about an event's payload, for the table.
fn summary(payload: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let text = [
        "command",
        "prompt",
        "source",
        "reason",
        "error",
        "trigger",
        "agent_type",
    ]
    .iter()
    .find_map(|k| {
        v.get("tool_input")
            .and_then(|t| t.get(k))
            .or_else(|| v.get(k))
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
    })?;
    Some(agent_harness::text::fit(text, 60))
}
