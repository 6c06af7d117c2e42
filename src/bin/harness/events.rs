//! `harness events`: the recorded hook events, as a table or JSON lines, once or as a live feed.

use std::io::Write;
use std::time::Duration;

use agent_harness::hook::now_ms;
use agent_harness::store::query::{self, EventFilter, EventRow};
use rusqlite::Connection;

use crate::{CliError, CliResult, Exit, fmt, open_store};

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
    /// One JSON object per line, payload included.
    #[arg(long)]
    json: bool,
    /// Keep printing new events as they are recorded (Ctrl-C to stop).
    #[arg(short, long)]
    follow: bool,
}

/// Resolves a session id prefix to the sessions it names.
pub fn resolve_session(conn: &Connection, prefix: &str) -> CliResult<Vec<String>> {
    let ids = query::sessions_with_prefix(conn, prefix)?;
    if ids.is_empty() {
        return Err(CliError::Message(format!(
            "no session starts with {prefix:?} (see `harness sessions`)"
        )));
    }
    Ok(ids)
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
    };
    if let Some(prefix) = &args.session {
        filter.sessions = Some(resolve_session(conn, prefix)?);
    }
    let mut stdout = std::io::stdout().lock();
    let rows = query::events(conn, &filter, args.limit)?;
    if !args.json && !args.follow && rows.is_empty() {
        writeln!(
            stdout,
            "No events recorded yet. Run `harness install` in a project, then use claude there."
        )?;
        return Ok(Exit::Ok);
    }
    print(&mut stdout, &rows, args.json)?;
    if !args.follow {
        return Ok(Exit::Ok);
    }
    let mut last = rows.last().map_or(query::last_event_id(conn)?, |r| r.id);
    loop {
        stdout.flush()?;
        std::thread::sleep(Duration::from_millis(250));
        filter.after_id = Some(last);
        let rows = query::events(conn, &filter, 10_000)?;
        if let Some(r) = rows.last() {
            last = r.id;
        }
        print(&mut stdout, &rows, args.json)?;
    }
}

fn print(out: &mut impl Write, rows: &[EventRow], json: bool) -> CliResult<()> {
    for r in rows {
        if json {
            let payload: serde_json::Value =
                serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({
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
                "payload": payload,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", line(r))?;
        }
    }
    Ok(())
}

/// One event as a table row: time, session, agent, event, tool, and the file or a summary.
pub fn line(r: &EventRow) -> String {
    let detail = r
        .file_path
        .as_deref()
        .map(fmt::path)
        .or_else(|| summary(&r.payload))
        .unwrap_or_default();
    format!(
        "{:<14} {:<8} {:<6} {:<19} {:<12} {}{}",
        fmt::clock(r.ts_ms),
        r.session_id.as_deref().map(fmt::short).unwrap_or("-"),
        r.agent,
        r.event,
        r.tool_name.as_deref().unwrap_or(""),
        detail,
        if r.truncated { " [truncated]" } else { "" }
    )
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
    Some(agent_harness::text::clip(text, 60))
}
