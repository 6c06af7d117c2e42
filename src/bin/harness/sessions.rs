//! `harness sessions`: one line per agent session, newest activity first.

use agent_harness::hook::now_ms;
use agent_harness::store::query::{self, Liveness, SessionRow};

use crate::fmt::{self, Col, Table, col, num};
use crate::{CliError, CliResult, Exit, open_store, say};

#[derive(clap::Args)]
pub struct Args {
    /// How many sessions to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Only sessions whose agent is still at work.
    #[arg(long)]
    live: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

const COLUMNS: [Col; 7] = [
    col("SESSION", 8),
    col("AGENT", 6),
    col("STATE", 5),
    col("STARTED", 11),
    col("LAST SEEN", 10),
    num("EVENTS", 7),
    col("PROJECT", 100),
];

pub fn run(args: Args) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let now = now_ms();
    let mut rows = if args.live {
        query::open_sessions(conn)?
    } else {
        query::sessions(conn, args.limit)?
    };
    if args.live {
        rows.retain(|s| s.liveness(now) == Liveness::Live);
        rows.truncate(args.limit);
    }
    let mut out = fmt::out();
    if args.json {
        for s in &rows {
            out.json(&json(s, now))?;
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        if args.live && query::sessions(conn, 1)?.is_empty() {
            say!(out, "No live sessions: no sessions recorded yet.")?;
        } else if args.live {
            say!(
                out,
                "No live sessions (`harness sessions` lists the ended ones)."
            )?;
        } else {
            say!(out, "No sessions recorded yet.")?;
        }
        return Ok(Exit::Ok);
    }
    let mut table = Table::new(&COLUMNS);
    for s in &rows {
        table.row(cells(s, now));
    }
    table.print(&mut out)?;
    Ok(Exit::Ok)
}

/// The one session an id or a prefix of one names: the session with exactly that id, else the
/// only one whose id starts with it. Refuses, naming them, when it names none or several.
pub fn resolve_one(conn: &rusqlite::Connection, prefix: &str) -> CliResult<String> {
    let shown = agent_harness::text::one_line(prefix);
    if prefix.is_empty() {
        return Err(CliError::Message(
            "an empty session id names every session; give one (see `harness sessions`)".into(),
        ));
    }
    let mut ids = query::sessions_with_prefix(conn, prefix)?;
    if let Some(exact) = ids.iter().position(|id| id == prefix) {
        return Ok(ids.swap_remove(exact));
    }
    match ids.len() {
        0 => Err(CliError::Message(format!(
            "no session starts with {shown:?} (see `harness sessions`)"
        ))),
        1 => Ok(ids.remove(0)),
        n => {
            const NAMED: usize = 5;
            let mut named: Vec<String> = ids
                .iter()
                .take(NAMED)
                .map(|id| agent_harness::text::one_line(id))
                .collect();
            if n > NAMED {
                named.push(format!("and {} more", n - NAMED));
            }
            Err(CliError::Message(format!(
                "{shown:?} names {n} sessions ({}); give more of the id",
                named.join(", ")
            )))
        }
    }
}

fn cells(s: &SessionRow, now: i64) -> Vec<String> {
    let place = s
        .project_root
        .as_deref()
        .or(s.cwd.as_deref())
        .map(fmt::path)
        .unwrap_or_default();
    let model = s
        .model
        .as_deref()
        .map(|m| format!("  ({m})"))
        .unwrap_or_default();
    vec![
        fmt::short(&s.session_id).to_owned(),
        s.agent.clone(),
        s.liveness(now).as_str().to_owned(),
        fmt::clock(s.first_seen_ms),
        fmt::ago(now, s.last_seen_ms),
        s.event_count.to_string(),
        format!("{place}{model}"),
    ]
}

/// One session as a line in fixed columns (for `harness status`).
pub fn line(s: &SessionRow, now: i64) -> String {
    let widths: Vec<usize> = COLUMNS.iter().map(|c| c.max).collect();
    fmt::row(&COLUMNS, &widths, &cells(s, now))
}

pub fn json(s: &SessionRow, now: i64) -> serde_json::Value {
    serde_json::json!({
        "session_id": s.session_id,
        "agent": s.agent,
        "state": s.liveness(now).as_str(),
        "first_seen": fmt::rfc3339(s.first_seen_ms),
        "last_seen": fmt::rfc3339(s.last_seen_ms),
        "cwd": s.cwd,
        "project_root": s.project_root,
        "transcript_path": s.transcript_path,
        "model": s.model,
        "source": s.source,
        "client_pid": s.client.map(|c| c.pid),
        "ended": s.ended_ms.map(fmt::rfc3339),
        "end_reason": s.end_reason,
        "events": s.event_count,
    })
}
